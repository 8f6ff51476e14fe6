"""Degradation chains that form the LR: blur, motion blur, resize, noise, JPEG, colour jitter, grey.

A chain is a frozen :class:`DegradeSpec` of steps (:mod:`.specs`), sampled into the applied
parameters with an explicit generator and applied to the pixels by a pure function
(:mod:`.chain`), built on albumentations' functional (fixed-parameter) forms (:mod:`.steps`).
The build draws with ``occface.seeding.rng_for(seed, key, "degrade")`` and stores the applied
parameters per sample (``meta/degrade``), so ``apply(hr_occluded, params)`` rebuilds the LR.

=========  ===================================================================
preset     chain (on the 128 HR, then a resize to the 16-px LR)
=========  ===================================================================
``none``   nothing: the build's bilinear downsample (the Pro-UIGAN protocol; default)
``gfpgan`` GFPGAN v1: blur (41 taps, iso/aniso, sigma 0.1-10) -> shrink 0.8-8x ->
           noise sigma 0-20 -> JPEG 60-100 -> area resize to the LR
``light``  slight blur -> LR at 16 px -> noise sigma 0-4 -> JPEG 80-100
``heavy``  blur sigma 1-6 (+ motion blur, p 0.3) -> shrink 6-12x -> noise sigma 4-20 ->
           JPEG 30-75 -> colour jitter (p 0.5) -> bilinear resize to the LR
=========  ===================================================================

``docs/degrade.md`` has the step reference and the pictures.
"""

from __future__ import annotations

from .chain import apply, degrade_for, sample_params
from .specs import (GFPGAN, HEAVY, LIGHT, NONE, PRESETS, STEP_TYPES, Blur, ColorJitter, DegradeSpec, Gray, Jpeg,
                    MotionBlur, Noise, Resize, Step, from_text, spec_from_dict, spec_from_name, spec_to_dict)
from .steps import gaussian_kernel

__all__ = [
    "apply", "sample_params", "degrade_for", "gaussian_kernel",
    "DegradeSpec", "Step", "Blur", "MotionBlur", "Resize", "Noise", "Jpeg", "ColorJitter", "Gray", "STEP_TYPES",
    "NONE", "GFPGAN", "LIGHT", "HEAVY", "PRESETS", "from_text", "spec_from_dict", "spec_to_dict", "spec_from_name",
]
