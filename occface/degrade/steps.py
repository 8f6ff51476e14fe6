"""Degradation steps: a sampler and a pure applier per step, looked up in explicit tables.

* a *sampler* ``(step, u, seed, shape) -> (params or None, new shape)`` turns a fixed block of
  uniform doubles ``u`` (``u[0]`` decides whether the step runs) and one integer ``seed`` into
  the step's applied parameters, a JSON-able dict holding ``"op"``; ``None`` = skipped;
* an *applier* ``(image, params) -> image`` is a pure function of those parameters, uint8 in,
  uint8 out, built on albumentations' functional forms (the fixed-parameter half of each
  transform: ``convolve``, ``add_noise``, ``image_compression``, ``resize``,
  ``adjust_*_torchvision``, ``to_gray``); albumentations' own random state is never used.

Every step consumes the same number of draws whether it runs or not (:data:`DRAWS`), so a
step's parameters do not depend on what the steps before it happened to do.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import types
from collections.abc import Callable

import cv2
import numpy as np

from ..faces import resize as occ_resize
from .specs import Blur, ColorJitter, Gray, Jpeg, MotionBlur, Noise, Resize

CV2_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC,
                     "nearest": cv2.INTER_NEAREST}
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
JITTER_ORDERS = tuple(itertools.permutations(JITTER_OPS))
TWO_PI = 6.283185307179586

# uniform doubles each step consumes (u[0] = run?); every step also consumes one integer seed
DRAWS = {"blur": 5, "motion_blur": 4, "resize": 2, "noise": 3, "jpeg": 2, "color_jitter": 6, "gray": 1}


def _lerp(lo: float, hi: float, u: float) -> float:
    return lo + (hi - lo) * u


def _pick_int(lo: int, hi: int, u: float) -> int:
    """Uniform integer in [lo, hi] from one double (one IEEE multiply, as occface.masks does)."""
    return lo + min(int(math.floor(u * (hi - lo + 1))), hi - lo)


# ----------------------------------------------------------------------------- samplers


def _sample_blur(step: Blur, u, seed, shape):
    if u[0] >= step.p:
        return None, shape
    lo, hi = step.sigma
    aniso = u[1] < step.aniso_prob
    sx = _lerp(lo, hi, u[2])
    sy = _lerp(lo, hi, u[3]) if aniso else sx
    theta = (u[4] * TWO_PI - TWO_PI / 2) if aniso else 0.0
    return {"op": "blur", "kernel": "aniso" if aniso else "iso", "ksize": step.kernel_size,
            "sigma_x": sx, "sigma_y": sy, "theta": theta}, shape


def _sample_motion(step: MotionBlur, u, seed, shape):
    if u[0] >= step.p:
        return None, shape
    lo, hi = step.kernel_size
    k = lo + 2 * _pick_int(0, (hi - lo) // 2, u[1])
    return {"op": "motion_blur", "ksize": k, "angle": 360.0 * u[2], "direction": 2.0 * u[3] - 1.0}, shape


def _sample_resize(step: Resize, u, seed, shape):
    if u[0] >= step.p:
        return None, shape
    r = _lerp(*step.scale, u[1])
    h, w = shape[:2]
    new = (max(1, int(h // r)), max(1, int(w // r)))
    return {"op": "resize", "scale": r, "size": list(new), "interpolation": step.interpolation}, (*new, *shape[2:])


def _sample_noise(step: Noise, u, seed, shape):
    if u[0] >= step.p:
        return None, shape
    return {"op": "noise", "sigma": _lerp(*step.sigma, u[1]), "gray": bool(u[2] < step.gray_prob),
            "seed": int(seed)}, shape


def _sample_jpeg(step: Jpeg, u, seed, shape):
    if u[0] >= step.p:
        return None, shape
    return {"op": "jpeg", "quality": _pick_int(*step.quality, u[1])}, shape


def _sample_jitter(step: ColorJitter, u, seed, shape):
    if u[0] >= step.p:
        return None, shape
    order = JITTER_ORDERS[_pick_int(0, len(JITTER_ORDERS) - 1, u[5])]
    return {"op": "color_jitter",
            "brightness": _lerp(1 - step.brightness, 1 + step.brightness, u[1]),
            "contrast": _lerp(1 - step.contrast, 1 + step.contrast, u[2]),
            "saturation": _lerp(1 - step.saturation, 1 + step.saturation, u[3]),
            "hue": _lerp(-step.hue, step.hue, u[4]),
            "order": list(order)}, shape


def _sample_gray(step: Gray, u, seed, shape):
    return (None if u[0] >= step.p else {"op": "gray"}), shape


SAMPLERS: dict[type, Callable] = {
    Blur: _sample_blur,
    MotionBlur: _sample_motion,
    Resize: _sample_resize,
    Noise: _sample_noise,
    Jpeg: _sample_jpeg,
    ColorJitter: _sample_jitter,
    Gray: _sample_gray,
}


# ----------------------------------------------------------------------------- appliers (pure)


@functools.lru_cache(maxsize=1)
def albumentations_functional() -> types.SimpleNamespace:
    """albumentations' functional modules, imported on first use.

    Importing albumentations costs seconds (it imports torch and pydantic) and, unless
    ``NO_ALBUMENTATIONS_UPDATE`` is set, asks PyPI for its latest version over the network.
    occface imports it only when a chain with steps runs, after opting out of that check
    (a user's own setting of the variable is kept).
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from albumentations.augmentations.blur import functional as blur
    from albumentations.augmentations.geometric import functional as geo
    from albumentations.augmentations.pixel import functional as pix

    return types.SimpleNamespace(blur=blur, geo=geo, pix=pix)


_alb = albumentations_functional


def gaussian_kernel(params: dict) -> np.ndarray:
    """The (k, k) float32 kernel of a ``blur`` step: GFPGAN's bivariate Gaussian, normalised.

    ``iso``: exp(-(x^2 + y^2) / (2 sigma^2)); ``aniso``: exp(-x^T S^-1 x / 2) with
    S = R diag(sigma_x^2, sigma_y^2) R^T, R the rotation by ``theta``.
    """
    k = int(params["ksize"])
    ax = np.arange(k, dtype=np.float64) - (k // 2)
    if params["kernel"] == "iso":
        g = np.exp(-0.5 * (ax / params["sigma_x"]) ** 2)
        ker = np.outer(g, g)
    else:
        c, s = math.cos(params["theta"]), math.sin(params["theta"])
        rot = np.array([[c, -s], [s, c]])
        cov = rot @ np.diag([params["sigma_x"] ** 2, params["sigma_y"] ** 2]) @ rot.T
        inv = np.linalg.inv(cov)
        xx, yy = np.meshgrid(ax, ax)
        ker = np.exp(-0.5 * (inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy))
    return (ker / ker.sum()).astype(np.float32)


def _to_u8(x: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] -> uint8, rounded half to even."""
    return np.rint(x * 255.0).astype(np.uint8)


def _apply_blur(img, p):
    f = img.astype(np.float32) * np.float32(1 / 255)
    if p["kernel"] == "iso":  # separable: two 1-D passes instead of one k x k pass, same kernel
        k = int(p["ksize"])
        g = np.exp(-0.5 * ((np.arange(k, dtype=np.float64) - k // 2) / p["sigma_x"]) ** 2)
        out = _alb().pix.separable_convolve(f, (g / g.sum()).astype(np.float32))
    else:
        out = _alb().pix.convolve(f, gaussian_kernel(p))
    return _to_u8(out)


def _apply_motion(img, p):
    ker = _alb().blur.create_motion_kernel(int(p["ksize"]), p["angle"], p["direction"], False, None)
    ker = ker.astype(np.float32) / np.float32(ker.sum())
    return _to_u8(_alb().pix.convolve(img.astype(np.float32) * np.float32(1 / 255), ker))


def _apply_resize(img, p):
    h, w = p["size"]
    interp = p["interpolation"]
    if interp in occ_resize.RULES:  # occface's exact bilinear (the build's resize_rule)
        return occ_resize.resize(img, (h, w), interp)
    return _alb().geo.resize(np.ascontiguousarray(img), (h, w), CV2_INTERPOLATION[interp])


def _apply_noise(img, p):
    g = np.random.Generator(np.random.PCG64(p["seed"]))
    h, w = img.shape[:2]
    c = 1 if p["gray"] else img.shape[2]
    noise = np.rint(g.standard_normal((h, w, c), dtype=np.float32) * np.float32(p["sigma"]))
    if c != img.shape[2]:
        noise = np.repeat(noise, img.shape[2], axis=2)
    return _alb().pix.add_noise(img, noise)  # integer-valued noise: an exact saturating add


def _apply_jpeg(img, p):
    # OpenCV's encoder reads BGR; the faces are RGB, so swap around it (chroma is subsampled
    # on the true Cb / Cr planes, as for any JPEG of this face).
    bgr = np.ascontiguousarray(img[..., ::-1])
    return np.ascontiguousarray(_alb().pix.image_compression(bgr, int(p["quality"]), ".jpg")[..., ::-1])


def _apply_jitter(img, p):
    out = img
    for name in p["order"]:
        if name == "brightness":
            out = _alb().pix.adjust_brightness_torchvision(out, p["brightness"])
        elif name == "contrast":
            out = _alb().pix.adjust_contrast_torchvision(out, p["contrast"])
        elif name == "saturation":
            out = _alb().pix.adjust_saturation_torchvision(out, p["saturation"])
        else:
            out = _alb().pix.adjust_hue_torchvision(out, p["hue"])
    return np.ascontiguousarray(out, dtype=np.uint8)


def _apply_gray(img, p):
    return _alb().pix.to_gray(img, 3, "weighted_average")


APPLIERS: dict[str, Callable] = {
    "blur": _apply_blur,
    "motion_blur": _apply_motion,
    "resize": _apply_resize,
    "noise": _apply_noise,
    "jpeg": _apply_jpeg,
    "color_jitter": _apply_jitter,
    "gray": _apply_gray,
}
