"""A degradation chain: spec + generator -> applied parameters -> the degraded LR.

``params = sample_params(spec, rng)`` draws every random choice of a chain from ``rng``
(the build uses ``rng_for(seed, key, "degrade")``) and returns the *applied* steps only
(a step that did not run leaves no entry), closed by the resize to the LR size:

    {"name": "gfpgan", "steps": [{"op": "blur", ...}, {"op": "resize", ...}, ...,
                                 {"op": "resize", "size": [16, 16], "interpolation": "area", "final": true}]}

``apply(image, params)`` is pure: the same image and params give the same bytes, so the
stored ``meta/degrade`` rebuilds every stored LR exactly (tested).
"""

from __future__ import annotations

import json

import numpy as np

from ..seeding import rng_for
from .specs import DegradeSpec
from .steps import APPLIERS, DRAWS, SAMPLERS


def _final_step(spec: DegradeSpec, lr_size: int, resize_rule: str) -> dict:
    interp = resize_rule if spec.output == "build" else spec.output
    return {"op": "resize", "size": [lr_size, lr_size], "interpolation": interp, "final": True}


def sample_params(spec: DegradeSpec, rng: np.random.Generator | None, hr_size: int = 128, lr_size: int = 16,
                  resize_rule: str = "bilinear-aa") -> dict:
    """The applied parameters of one draw of ``spec`` on a (hr_size, hr_size, 3) image.

    ``rng`` is only drawn from when the chain has steps (``None`` is fine for ``none``).
    Each step consumes a fixed block of draws (``steps.DRAWS`` doubles, then one integer seed)
    whether or not it runs.
    """
    if not isinstance(spec, DegradeSpec):
        raise TypeError(f"not a degradation spec: {spec!r}")
    shape = (hr_size, hr_size, 3)
    applied = []
    for step in spec.steps:
        u = rng.random(DRAWS[step.op]).tolist()
        seed = int(rng.integers(0, 2**63 - 1))
        params, shape = SAMPLERS[type(step)](step, u, seed, shape)
        if params is not None:
            applied.append(params)
    applied.append(_final_step(spec, lr_size, resize_rule))
    return {"name": spec.name, "steps": applied}


def apply(image: np.ndarray, params, size: int | None = None) -> np.ndarray:
    """Degrade ``image`` (H, W, 3) uint8 RGB with applied ``params`` (dict or its JSON string).

    Returns uint8 RGB of the final step's size (the LR, (16, 16, 3) by default).  ``size``
    replaces the final size, e.g. the HR size for an HR-sized degraded copy (GFPGAN's
    "resize back"): the final step then enlarges with OpenCV bilinear, or is skipped when
    the image already has that size.  Pure.
    """
    if isinstance(params, str):
        params = json.loads(params)
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"degradations take (H, W, 3) uint8 images, got shape {img.shape}")
    steps = params["steps"]
    for p in steps:
        if p.get("final") and size is not None:
            if img.shape[:2] == (size, size):
                continue
            p = dict(p, size=[size, size])
            if size > img.shape[0]:
                p["interpolation"] = "linear"
        fn = APPLIERS.get(p["op"])
        if fn is None:
            raise ValueError(f"unknown degradation step {p['op']!r}")
        img = fn(img, p)
    return img


def degrade_for(spec: DegradeSpec, seed: int, key: str, image: np.ndarray, lr_size: int = 16,
                resize_rule: str = "bilinear-aa", stream: str = "degrade") -> tuple[dict, np.ndarray]:
    """``(params, lr)`` for one sample, regenerated exactly from ``(seed, key)`` as the build does."""
    rng = None if spec.is_none else rng_for(seed, key, stream)
    params = sample_params(spec, rng, image.shape[0], lr_size, resize_rule)
    return params, apply(image, params)
