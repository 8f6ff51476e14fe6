"""The three training-free baselines validate scores beside the model.

* ``bicubic``: the occluded LR upsampled with OpenCV ``INTER_CUBIC``;
* ``telea-lr+bicubic``: OpenCV Telea inpainting of the LR (inpaint, then upsample), then bicubic;
* ``bicubic+telea-hr``: bicubic, then Telea inpainting at HR (upsample, then inpaint).

An LR pixel is inpainted when more than ``threshold`` (default 0: any) of its resampling
weight (the build's ``resize_rule``) falls on missing HR pixels, i.e. when the hole's fill
leaked into it; at HR the inpainted region is those LR pixels' cells.
"""

from __future__ import annotations

import numpy as np

from ..faces import resize as resize_mod

BASELINES = ("bicubic", "telea-lr+bicubic", "bicubic+telea-hr")


def lr_hole_mask(mask: np.ndarray, lr_size: int = 16, rule: str = "bilinear-aa",
                 threshold: float = 0.0) -> np.ndarray:
    """(B, H, H) HR masks (1 = missing) -> (B, L, L) uint8 LR masks: 1 where more than
    ``threshold`` of the LR pixel's resampling weight lies on missing pixels."""
    m = np.asarray(mask, np.float64)
    w = resize_mod.weights(m.shape[-1], lr_size, rule)
    frac = w @ m @ w.T
    return (frac > threshold + 1e-12).astype(np.uint8)


def bicubic(lr: np.ndarray, size: int = 128) -> np.ndarray:
    """(B, L, L, 3) uint8 -> (B, size, size, 3) uint8, OpenCV INTER_CUBIC."""
    import cv2

    return np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_CUBIC) for x in lr])


def telea(images: np.ndarray, holes: np.ndarray, radius: float) -> np.ndarray:
    """OpenCV Telea inpainting of each (H, W, 3) uint8 image where ``holes`` is 1."""
    import cv2

    return np.stack([cv2.inpaint(np.ascontiguousarray(x), np.ascontiguousarray(h), radius,
                                 cv2.INPAINT_TELEA) if h.any() else x.copy()
                     for x, h in zip(images, holes)])


def baselines(lr: np.ndarray, mask: np.ndarray, *, rule: str = "bilinear-aa",
              threshold: float = 0.0, radius_lr: float = 1.0, radius_hr: float = 3.0,
              size: int = 128) -> dict[str, np.ndarray]:
    """The three training-free baselines for (B, L, L, 3) occluded LR and (B, H, H) masks."""
    lr_holes = lr_hole_mask(mask, lr.shape[1], rule, threshold)
    f = size // lr.shape[1]
    hr_holes = lr_holes.repeat(f, axis=1).repeat(f, axis=2)
    up = bicubic(lr, size)
    return {"bicubic": up,
            "telea-lr+bicubic": bicubic(telea(lr, lr_holes, radius_lr), size),
            "bicubic+telea-hr": telea(up, hr_holes, radius_hr)}
