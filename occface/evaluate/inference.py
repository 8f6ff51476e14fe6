"""Running a generator on uint8 images: what validate and hallucinate share."""

from __future__ import annotations

import numpy as np

from ..data.convert import to_float
from ..runtime import autocast


def run_generator(g, lr: np.ndarray, *, device="cpu", amp: str = "none",
                  channels_last: bool = False, heatmaps=None, blocks: int = 3,
                  ) -> list[np.ndarray]:
    """(B, 16, 16, 3) uint8 occluded LR -> each block's output as (B, s, s, 3) uint8.
    ``heatmaps``: block-1 ground truth (B, L1, 16, 16) uint8/float, for
    ``landmark_input="gt"`` models."""
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
        out = g(x, hm, blocks=blocks)
    return [((im.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            .permute(0, 2, 3, 1).cpu().numpy() for im in out.images]
