"""The one bilinear rule used everywhere an image is downsampled (HR 128 -> LR 16, and re-masking).

Two named rules:

* ``bilinear-aa`` (default): a triangle (tent) filter whose support is widened
  by the scale factor, i.e. bilinear interpolation with antialiasing.  This
  is what Pillow's ``Image.resize(..., BILINEAR)``, MATLAB's ``imresize(...,
  'bilinear')`` and ``torch.nn.functional.interpolate(..., mode='bilinear',
  antialias=True)`` compute.  At 8x every LR pixel averages a 16x16
  neighbourhood with tent weights.
* ``bilinear``: plain two-tap bilinear sampling at the output pixel centres
  (OpenCV ``INTER_LINEAR``, torch ``antialias=False``).  At exactly 8x each LR
  pixel is the mean of the 2x2 HR pixels at its centre, which aliases badly;
  offered because some public code does it.

Both are separable linear maps, so they are computed as ``Wy @ img @ Wx.T``
with float64 weight matrices and rounded half-to-even to uint8.  For the
default 128 -> 16 every weight is a multiple of 1/128, so every product and
partial sum is exact in float64: the result cannot depend on summation order
(BLAS kernel, thread count), which keeps builds byte-identical.
"""

from __future__ import annotations

import functools

import numpy as np

RULES = ("bilinear-aa", "bilinear")


@functools.lru_cache(maxsize=64)
def weights(n_in: int, n_out: int, rule: str = "bilinear-aa") -> np.ndarray:
    """(n_out, n_in) float64 resampling matrix; rows sum to 1."""
    if rule not in RULES:
        raise ValueError(f"resize rule must be one of {RULES}, got {rule!r}")
    scale = n_in / n_out
    w = np.zeros((n_out, n_in), np.float64)
    centres = (np.arange(n_out) + 0.5) * scale  # in input coordinates where pixel j spans [j, j+1)
    if rule == "bilinear-aa" and scale > 1.0:
        support = scale
        j = np.arange(n_in) + 0.5
        w = np.maximum(0.0, 1.0 - np.abs(j[None, :] - centres[:, None]) / support)
    else:
        x = np.clip(centres - 0.5, 0, n_in - 1)
        x0 = np.floor(x).astype(int)
        x1 = np.minimum(x0 + 1, n_in - 1)
        f = x - x0
        rows = np.arange(n_out)
        np.add.at(w, (rows, x0), 1.0 - f)
        np.add.at(w, (rows, x1), f)
    w /= w.sum(axis=1, keepdims=True)
    w.setflags(write=False)
    return w


def resize(img: np.ndarray, size: int | tuple[int, int], rule: str = "bilinear-aa") -> np.ndarray:
    """Resize (H, W) or (H, W, C) or batched (N, H, W, C) uint8 images to ``size`` (square int or (h, w)).

    Returns uint8 of the same layout.  Values 0..255, rounded half-to-even.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    arr = np.asarray(img)
    batched = arr.ndim == 4
    if arr.ndim == 2:
        arr = arr[..., None]
    if not batched:
        arr = arr[None]
    wy = weights(arr.shape[1], out_h, rule)
    wx = weights(arr.shape[2], out_w, rule)
    n, h, w, c = arr.shape
    # float32 is exact (hence as good as float64, and twice as fast) when both scales are 2, 4 or 8
    # with antialiasing: weights are multiples of 1/(2 s^2) and every partial sum fits in 24 bits.
    exact32 = rule == "bilinear-aa" and all(a == 2 * b or a == 4 * b or a == 8 * b for a, b in ((h, out_h), (w, out_w)))
    dt = np.float32 if exact32 else np.float64
    wy, wx = wy.astype(dt, copy=False), wx.astype(dt, copy=False)
    tmp = np.matmul(wy, arr.reshape(n, h, w * c).astype(dt)).reshape(n, out_h, w, c)
    res = np.matmul(wx, tmp)  # (out_w, w) @ (n, out_h, w, c) -> (n, out_h, out_w, c)
    res = np.clip(np.rint(res), 0, 255).astype(np.uint8)
    if not batched:
        res = res[0]
    if np.asarray(img).ndim == 2:
        res = res[..., 0]
    return res
