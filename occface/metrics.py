"""Image-quality metrics with pinned conventions (docs/training.md lists them).

Inputs are (B, C, H, W) tensors or arrays (C = 3 for RGB, 1 for a single channel) on the
``[0, data_range]`` scale (0..255 by default; uint8 is fine).  Every function returns one
value per image, a float64 tensor of shape (B,); the validator reports the mean of the
per-image values (not PSNR of the pooled MSE).

* **PSNR** = 10·log10(data_range² / MSE), MSE over every pixel and channel of the image;
  ``inf`` for identical images.
* **SSIM** (Wang et al. 2004): 11×11 Gaussian window, σ = 1.5 (truncated at 5 px, normalised
  to sum 1), K1 = 0.01, K2 = 0.03, population (1/N) statistics, computed only where the
  window fits inside the image ("valid" filtering, no padding) and averaged over the map,
  then over channels.  This equals MATLAB's ``ssim_index.m`` and scikit-image's
  ``structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, channel_axis=...)`` (tested against the latter).
* **Y channel** (``y_channel=True``): ITU-R BT.601 luma of RGB on [0, 255],
  Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, scored with the same peak 255
  (the usual SR convention, e.g. MATLAB ``rgb2ycbcr``); Y is not rounded.
* **Border crop** (``crop=c``): ``c`` pixels are removed from every side before scoring.

Everything is computed in float64 (``dtype``) on the inputs' device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: BT.601 luma weights for RGB on [0, 1] (offset 16 on the 0..255 scale).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


def as_tensor(x, dtype=torch.float64) -> torch.Tensor:
    """(B, C, H, W) array or tensor -> float tensor (device kept)."""
    t = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if t.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(t.shape)}")
    return t.to(dtype)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB on [0, 255] -> (B, 1, H, W) BT.601 luma on [16, 235]."""
    if x.shape[1] != 3:
        raise ValueError(f"Y channel needs RGB input, got {x.shape[1]} channels")
    w = x.new_tensor(Y_WEIGHTS).view(1, 3, 1, 1)
    return Y_OFFSET + (x * w).sum(dim=1, keepdim=True) / 255.0


def _prepare(x, y, y_channel: bool, crop: int, dtype):
    x, y = as_tensor(x, dtype), as_tensor(y, dtype)
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if y_channel:
        x, y = rgb_to_y(x), rgb_to_y(y)
    if crop:
        if 2 * crop >= min(x.shape[-2:]):
            raise ValueError(f"crop {crop} leaves nothing of a {tuple(x.shape[-2:])} image")
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    return x, y


def mse(x, y, *, y_channel: bool = False, crop: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Per-image mean squared error, (B,)."""
    x, y = _prepare(x, y, y_channel, crop, dtype)
    return (x - y).square().flatten(1).mean(1)


def psnr(x, y, *, data_range: float = 255.0, y_channel: bool = False, crop: int = 0,
         dtype=torch.float64) -> torch.Tensor:
    """Per-image PSNR in dB, (B,); ``inf`` where the images are identical."""
    err = mse(x, y, y_channel=y_channel, crop=crop, dtype=dtype)
    out = 10.0 * torch.log10(data_range ** 2 / err)  # err == 0 -> inf
    return out


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype=torch.float64,
                    device=None) -> torch.Tensor:
    """1-D Gaussian taps exp(-d²/2σ²), d = -(size//2)..size//2, normalised to sum 1."""
    d = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(d * d) / (2 * sigma * sigma))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of every channel of (B, C, H, W)."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim(x, y, *, data_range: float = 255.0, y_channel: bool = False, crop: int = 0,
         dtype=torch.float64) -> torch.Tensor:
    """Per-image SSIM, (B,): mean of the SSIM map over positions, then over channels."""
    x, y = _prepare(x, y, y_channel, crop, dtype)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    g = gaussian_window(dtype=x.dtype, device=x.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mx, my = _filter(x, g), _filter(y, g)
    vx = _filter(x * x, g) - mx * mx
    vy = _filter(y * y, g) - my * my
    cxy = _filter(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(2, 3)).mean(dim=1)


def expected_psnr(sigma: float, data_range: float = 255.0) -> float:
    """PSNR of additive zero-mean noise of standard deviation ``sigma``: 10·log10(peak²/σ²)."""
    return 10.0 * math.log10(data_range ** 2 / sigma ** 2)

