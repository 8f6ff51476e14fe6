"""Per-block scores of a generator: each UI-block's image and each block's landmark prior.

* Images: block k's output (32, 64 or 128 px) is upsampled to 128 with the bicubic baseline's
  interpolation (OpenCV ``INTER_CUBIC``) and scored against the clean HR with the report's
  PSNR / SSIM conventions, so block 3 can be compared with blocks 1 and 2 and with bicubic.
* Prior: the landmarks decoded from each block's predicted heatmaps
  (:func:`occface.evaluate.landmarks.decode_heatmaps`) against the build's landmarks, as NME
  x100 (outer-eye-corner normalised), beside the mean training shape's NME.
* :func:`trained_blocks`: which UI-blocks a checkpoint's schedule has trained, so a report can
  warn about a checkpoint written before block 3 was trained.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from .baselines import bicubic
from .landmarks import decodable_points, mean_shape, nme


def upsample(images: np.ndarray, size: int = 128) -> np.ndarray:
    """(B, s, s, 3) uint8 -> (B, size, size, 3) uint8 (bicubic; unchanged when s == size)."""
    return images if images.shape[1] == size else bicubic(images, size)


def image_scores(images: list[np.ndarray], hr: np.ndarray, *, y_channel: bool = False,
                 crop: int = 0) -> list[dict[str, list[float]]]:
    """Per block ``{"psnr": [...], "ssim": [...]}`` (one value per image) for each block's
    (B, s, s, 3) uint8 output against the (B, 128, 128, 3) uint8 ground truth."""
    import torch

    gt = torch.from_numpy(np.ascontiguousarray(hr.transpose(0, 3, 1, 2)))
    out = []
    for im in images:
        x = torch.from_numpy(np.ascontiguousarray(upsample(im, hr.shape[1]).transpose(0, 3, 1, 2)))
        out.append({"psnr": metrics.psnr(x, gt, y_channel=y_channel, crop=crop).tolist(),
                    "ssim": metrics.ssim(x, gt, y_channel=y_channel, crop=crop).tolist()})
    return out


def prior_scores(points: list[np.ndarray | None], groupings, landmarks: np.ndarray,
                 prior: np.ndarray | None = None,
                 points_subpixel: list[np.ndarray | None] | None = None) -> dict[str, list[float] | None]:
    """Per-image NME x100 of each block's decoded landmarks (``"block1"`` ... ; None for a
    block whose grouping is not single points), of the same with the quarter-cell read-out
    (``"block1_subpixel"`` ..., when ``points_subpixel`` is given) and of the learned prior
    estimator's (``"estimator"``, block 1's grouping)."""
    out: dict[str, list[float] | None] = {}
    for k, (pts, grouping) in enumerate(zip(points, groupings)):
        idx = decodable_points(grouping)
        out[f"block{k + 1}"] = None if pts is None or idx is None else nme(pts, landmarks, idx).tolist()
        if points_subpixel is not None:
            sp = points_subpixel[k]
            out[f"block{k + 1}_subpixel"] = None if sp is None or idx is None else nme(sp, landmarks, idx).tolist()
    if prior is not None and decodable_points(groupings[0]) is not None:
        out["estimator"] = nme(prior, landmarks, decodable_points(groupings[0])).tolist()
    return out


def mean_shape_scores(shape: np.ndarray, landmarks: np.ndarray) -> list[float]:
    """Per-image NME x100 of the (68, 2) ``shape`` taken as every face's prediction."""
    return nme(np.broadcast_to(shape, landmarks.shape), landmarks).tolist()


def split_landmarks(data, split: str = "train") -> np.ndarray:
    """(N, 68, 2) float32 landmarks of every sample of ``split`` in the build(s) ``data``,
    read from the shards' ``landmarks`` datasets (no images are read)."""
    import h5py

    from ..data import LoaderConfig, ShardReader

    reader = ShardReader(data, LoaderConfig(split=split, heatmaps=(), dtype="uint8"))
    parts = []
    for sh in reader.shards:
        with h5py.File(sh.path, "r") as f:
            parts.append(np.asarray(f["landmarks"][...])[sh.rows])
    return np.concatenate(parts) if parts else np.zeros((0, 68, 2), np.float32)


def reference_shape(data, split: str) -> tuple[np.ndarray, str]:
    """The mean shape a report compares against: the build's train split's mean, or (for a
    build without one) the scored split's own mean; and which it is."""
    train = split_landmarks(data, "train")
    if len(train):
        return mean_shape(train), "train"
    return mean_shape(split_landmarks(data, split)), split


def trained_blocks(step: int | None, stage_steps) -> tuple[bool, bool, bool]:
    """Which UI-blocks a run has trained by global ``step``: block k is trained in its own
    stage k, and every block in stage 3.  Unknown schedules count as trained."""
    if step is None or stage_steps is None:
        return True, True, True
    s1, s2, s3 = (int(v) for v in stage_steps)
    stage3 = s3 > 0 and step > s1 + s2
    return (stage3 or (s1 > 0 and step > 0), stage3 or (s2 > 0 and step > s1), stage3)
