"""What the trainer watches besides the losses: the EMA generator, the landmark prior's error
on the training batch, and a periodic validation on the test split.

* :func:`ema_update`: ``ema = d * ema + (1 - d) * w`` for every generator tensor (one fused
  ``lerp`` per list), after every optimiser step.
* :func:`batch_prior_scalars`: NME x100 of the landmarks decoded from each block's heatmaps
  (and the learned prior's) on the training batch, for TensorBoard beside L_h and its
  all-zero baseline.
* :class:`ValSet` / :func:`validation_scalars`: the first ``val_images`` faces of the test
  split, loaded once; every ``val_every`` steps the generator (the EMA one when on) is scored
  on them as ``occface validate`` scores a checkpoint - PSNR / SSIM of each block (bicubic to
  128), NME of each block's prior and of the mean training shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import LoaderConfig, ShardReader
from ..evaluate import blocks as blocks_mod
from ..evaluate.inference import run_generator_with_prior
from ..evaluate.landmarks import heatmap_nme, nme


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """Move every parameter and buffer of ``ema`` towards ``model``'s by ``1 - decay``."""
    e = [t for t in (*ema.parameters(), *ema.buffers()) if t.dtype.is_floating_point]
    m = [t for t in (*model.parameters(), *model.buffers()) if t.dtype.is_floating_point]
    torch._foreach_lerp_(e, m, 1.0 - decay)


@torch.no_grad()
def batch_prior_scalars(out, landmarks: torch.Tensor, groupings) -> dict[str, float]:
    """``prior/nme_block{k}`` (and ``prior/nme_estimator``) on one batch: the mean NME x100 of
    the argmax landmarks of each block's heatmaps against the batch's landmarks."""
    lm = landmarks.detach().float().cpu().numpy()
    out_scalars = {}
    for k, (hm, grouping) in enumerate(zip(out.heatmaps, groupings)):
        e = heatmap_nme(hm, grouping, lm)
        if e is not None:
            out_scalars[f"prior/nme_block{k + 1}"] = float(e.mean())
    if out.prior_points is not None:
        out_scalars["prior/nme_estimator"] = float(nme(out.prior_points, lm).mean())
    elif out.prior is not None:
        e = heatmap_nme(out.prior, groupings[0], lm)
        if e is not None:
            out_scalars["prior/nme_estimator"] = float(e.mean())
    return out_scalars


@dataclass
class ValSet:
    """Test faces for the periodic validation: (N, 16, 16, 3) / (N, 128, 128, 3) uint8 LR /
    HR, (N, 68, 2) landmarks, and the mean training shape's per-face NME."""

    lr: np.ndarray
    hr: np.ndarray
    landmarks: np.ndarray
    mean_shape_nme: float

    @classmethod
    def load(cls, data, n: int) -> "ValSet | None":
        """The first ``n`` faces of the test split of ``data`` (None when it has none)."""
        reader = ShardReader(data, LoaderConfig(split="test", heatmaps=(), dtype="uint8"))
        if not len(reader):
            return None
        b = reader.get_batch(list(range(min(n, len(reader)))))
        lm = np.asarray(b["landmarks"], np.float64)
        shape, _ = blocks_mod.reference_shape(data, "test")
        return cls(b["lr"].transpose(0, 2, 3, 1).copy(), b["hr"].transpose(0, 2, 3, 1).copy(), lm,
                   float(np.mean(blocks_mod.mean_shape_scores(shape, lm))))


def validation_scalars(g, val: ValSet, device, amp: str = "none", batch_size: int = 64) -> dict[str, float]:
    """``val/psnr_block{k}``, ``val/ssim_block{k}``, ``val/nme_block{k}``,
    ``val/nme_estimator`` and ``val/nme_mean_shape`` of generator ``g`` on ``val``."""
    was_training = g.training
    g.eval()
    sums: dict[str, list[float]] = {}
    try:
        for start in range(0, len(val.lr), batch_size):
            sl = slice(start, start + batch_size)
            o = run_generator_with_prior(g, val.lr[sl], device=device, amp=amp)
            for k, sc in enumerate(blocks_mod.image_scores(o.images, val.hr[sl])):
                sums.setdefault(f"val/psnr_block{k + 1}", []).extend(sc["psnr"])
                sums.setdefault(f"val/ssim_block{k + 1}", []).extend(sc["ssim"])
            for name, v in blocks_mod.prior_scores(o.points, g.config.heatmap_groupings,
                                                   val.landmarks[sl], o.prior, o.points_subpixel).items():
                if v is not None:
                    sums.setdefault(f"val/nme_{name}", []).extend(v)
    finally:
        g.train(was_training)
    scalars = {k: float(np.mean(v)) for k, v in sums.items()}
    scalars["val/nme_mean_shape"] = val.mean_shape_nme
    return scalars
