"""Occluders: objects drawn over the face from its 68 landmarks, not holes.

An occluder is composited onto the HR face: its pixels are visible in ``hr_occluded``, and the
mask (1 = missing) is where its alpha exceeds 0.5 (alpha u8 >= 128).  Sampling and painting
are kept apart:

* :func:`sample` draws every random choice from the explicit generator (placement from the
  landmarks, sizes, style, colours from :mod:`.palettes`, texture seeds) into JSON-able params:
  ``{"kind": "occluder", "object", "style", "seed", "yaw", "fallback", "layers": [...]}``;
* :func:`render` paints those params (pure): ``(rgb, alpha)`` uint8; :func:`render_alpha` /
  :func:`mask_of` give the mask without painting colours; :func:`composite` lays them on a face.

=============  ==============================================  ============================
object         styles                                          module
=============  ==============================================  ============================
sunglasses     round, wayfarer, aviator                        :mod:`.eyewear`
eyeglasses     round, wayfarer, aviator, cat_eye               :mod:`.eyewear`
face_mask      surgical, cloth, n95                            :mod:`.facewear`
scarf          knit, plaid, stripes, solid                     :mod:`.facewear`
hand           mouth, right_eye, left_eye, right/left_cheek,   :mod:`.hands`
               chin (what it covers)
hair           fringe, side, strands                           :mod:`.hair`
object         cup, phone, microphone                          :mod:`.props`
=============  ==============================================  ============================

Geometry is computed once, in the sampler (libm's sin / cos included), and stored as
integer vertices in 1/16 px, so painting is exact wherever the OpenCV drawing and NumPy
arithmetic are the same.
"""

from __future__ import annotations

import numpy as np

from . import eyewear, facewear, hair, hands, props
from .draw import Draw
from .frame import face_frame
from .paint import alpha_u8, composite, render, render_alpha

OBJECTS = ("sunglasses", "eyeglasses", "face_mask", "scarf", "hand", "hair", "object")
STYLES = {
    "sunglasses": eyewear.STYLES["sunglasses"],
    "eyeglasses": eyewear.STYLES["eyeglasses"],
    "face_mask": facewear.MASK_STYLES,
    "scarf": facewear.SCARF_STYLES,
    "hand": hands.TARGETS,
    "hair": hair.STYLES,
    "object": props.STYLES,
}
SAMPLERS = {
    "sunglasses": lambda style, d, f, size: eyewear.sample("sunglasses", style, d, f, size),
    "eyeglasses": lambda style, d, f, size: eyewear.sample("eyeglasses", style, d, f, size),
    "face_mask": facewear.sample_face_mask,
    "scarf": facewear.sample_scarf,
    "hand": hands.sample,
    "hair": hair.sample,
    "object": props.sample,
}


def sample(obj: str, style: str, rng: np.random.Generator, landmarks, size: int = 128) -> dict:
    """Params of one ``obj`` occluder (``style``: one of :data:`STYLES` [obj] or ``"any"``) on a face.

    ``landmarks``: (68, 2) float (x, y) in the ``size`` frame.  Raises ``ValueError`` when they
    are missing or degenerate.
    """
    if obj not in SAMPLERS:
        raise ValueError(f"unknown occluder {obj!r}; known: {OBJECTS}")
    if landmarks is None:
        raise ValueError("occluders need the face's (68, 2) landmarks")
    f = face_frame(landmarks)
    d = Draw(rng)
    seed = d.seed()
    params = SAMPLERS[obj](style, d, f, size)
    return {"kind": "occluder", "object": params.pop("object"), "style": params.pop("style"), "seed": seed,
            "yaw": round(f.yaw, 6), "fallback": params.pop("fallback"), **params}


def mask_of(alpha_u8_img: np.ndarray) -> np.ndarray:
    """1 where the occluder's alpha exceeds 0.5 (uint8 alpha >= 128), else 0."""
    return (alpha_u8_img >= 128).astype(np.uint8)


def render_mask(params: dict, size: int = 128) -> np.ndarray:
    """The (size, size) uint8 {0, 1} mask of an occluder without painting it.  Pure."""
    return mask_of(alpha_u8(render_alpha(params, size)))


__all__ = ["OBJECTS", "STYLES", "sample", "render", "render_alpha", "render_mask", "mask_of", "composite",
           "face_frame"]
