"""Running a generator on uint8 images: what validate, hallucinate and the trainer's periodic
validation share."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..data.convert import to_float
from ..runtime import autocast
from .landmarks import decodable_points, decode_heatmaps


class Outputs(NamedTuple):
    """One batch through a generator.  ``images``: each block's (B, s, s, 3) uint8 output
    (s = 32, 64, 128).  ``points``: each block's landmarks decoded (argmax) from its heatmaps,
    (B, C, 2) float64 in the 128 frame, or None when its grouping has grouped channels;
    ``points_subpixel``: the same with the quarter-cell read-out (``decode_heatmaps``).
    ``prior``: the learned prior estimator's landmarks (argmax of its 16x16 heatmaps, or a
    points prior's own points), or None."""

    images: list[np.ndarray]
    points: list[np.ndarray | None]
    prior: np.ndarray | None
    points_subpixel: list[np.ndarray | None] | None = None


def _forward(g, lr: np.ndarray, device, amp: str, channels_last: bool, heatmaps, blocks: int):
    import torch

    dev = torch.device(device)
    batch = {"lr": torch.from_numpy(np.ascontiguousarray(lr.transpose(0, 3, 1, 2))).to(dev)}
    if heatmaps is not None:
        batch["heatmaps"] = {"h": torch.as_tensor(heatmaps).to(dev)}
    batch = to_float(batch, "[-1,1]")
    x = batch["lr"]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    hm = batch["heatmaps"]["h"] if heatmaps is not None else None
    with torch.inference_mode(), autocast(dev, amp):
        return g(x, hm, blocks=blocks)


def _to_u8(images) -> list[np.ndarray]:
    import torch

    return [((im.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            .permute(0, 2, 3, 1).cpu().numpy() for im in images]


def run_generator(g, lr: np.ndarray, *, device="cpu", amp: str = "none",
                  channels_last: bool = False, heatmaps=None, blocks: int = 3,
                  ) -> list[np.ndarray]:
    """(B, 16, 16, 3) uint8 occluded LR -> each block's output as (B, s, s, 3) uint8.
    ``heatmaps``: block-1 ground truth (B, L1, 16, 16) uint8/float, for
    ``landmark_input="gt"`` models."""
    return _to_u8(_forward(g, lr, device, amp, channels_last, heatmaps, blocks).images)


def run_generator_with_prior(g, lr: np.ndarray, *, device="cpu", amp: str = "none",
                             channels_last: bool = False, heatmaps=None) -> Outputs:
    """:func:`run_generator` for all three blocks plus the landmarks decoded (argmax) from
    every block's predicted heatmaps and from the learned prior's (:class:`Outputs`; a
    ``prior_kind="points"`` prior gives its regressed points)."""
    out = _forward(g, lr, device, amp, channels_last, heatmaps, 3)
    groupings = g.config.heatmap_groupings
    points = [decode_heatmaps(h) if decodable_points(gr) is not None else None
              for h, gr in zip(out.heatmaps, groupings)]
    sub = [decode_heatmaps(h, subpixel=True) if decodable_points(gr) is not None else None
           for h, gr in zip(out.heatmaps, groupings)]
    if out.prior_points is not None:  # a points prior: its own landmarks, not its rendering's argmax
        prior = out.prior_points.detach().double().cpu().numpy()
    else:
        prior = (decode_heatmaps(out.prior) if out.prior is not None
                 and decodable_points(groupings[0]) is not None else None)
    return Outputs(_to_u8(out.images), points, prior, sub)
