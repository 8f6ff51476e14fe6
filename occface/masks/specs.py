"""Mask specs: one frozen dataclass per kind, named presets, and their text / dict forms.

A spec says *what kind* of mask to draw and within which ranges; it draws nothing.
:mod:`occface.masks.sample` turns a spec and a generator into parameters and
parameters into pixels.  ``spec_to_dict`` / ``spec_from_dict`` are the JSON form
stored in every build's config; :func:`from_text` reads the forms a user types
(a preset name, inline JSON, or ``@file.json``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from . import occluders, parts, strokes
from .bundled import bundled_names

SQUARE_SIZES = {"m1": 16, "m2": 24, "m3": 32, "m4": 48, "m5": 64}
QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")
PARTS = parts.PARTS
# FCSR-GAN's six fixed occlusions O1-O6, in the order of its Fig. 7 caption.
# The paper does not say whether "left" is the subject's or the viewer's; here
# it is the subject's (see occface.masks.parts).
FCSR_GAN_OCCLUSIONS = {
    "O1": "left_half",
    "O2": "right_half",
    "O3": "eyes",
    "O4": "left_eye",
    "O5": "right_eye",
    "O6": "mouth",
}


class MaskSpec:
    """Base of every mask spec: a frozen dataclass whose ``kind`` field names it."""

    def __post_init__(self):
        default = type(self).__dataclass_fields__["kind"].default
        if self.kind != default:
            raise ValueError(f"{type(self).__name__}.kind must be {default!r}, got {self.kind!r}")


@dataclass(frozen=True)
class SquareMask(MaskSpec):
    """Axis-aligned square, side uniform in [min_side, max_side].

    placement ``"uniform"``: uniform position fully inside the image (Pro-UIGAN);
    ``"center"``: centred (OFHNet's central squares).  ``SquareMask.named("m3")``
    gives the fixed sizes m1..m5 = 16, 24, 32, 48, 64 px.
    """

    min_side: int = 16
    max_side: int = 64
    kind: str = "square"
    placement: str = "uniform"

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.min_side <= self.max_side:
            raise ValueError("need 1 <= min_side <= max_side")
        if self.placement not in ("uniform", "center"):
            raise ValueError("placement must be 'uniform' or 'center'")

    @classmethod
    def named(cls, name: str, placement: str = "uniform") -> "SquareMask":
        side = SQUARE_SIZES[name]
        return cls(side, side, placement=placement)


@dataclass(frozen=True)
class PConvMask(MaskSpec):
    """PConv-Keras-style irregular mask (no ratio control); ``border`` keeps the frame free."""

    border: bool = False
    kind: str = "pconv"


@dataclass(frozen=True)
class BucketMask(MaskSpec):
    """PConv-style irregular mask whose hole ratio is inside PConv bucket ``bucket`` (1..6), exactly."""

    bucket: int = 1
    border: bool = False
    kind: str = "pconv_bucket"

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.bucket, int) and 1 <= self.bucket <= strokes.N_BUCKETS):
            raise ValueError(f"bucket must be an int in 1..{strokes.N_BUCKETS}")


@dataclass(frozen=True)
class LamaMask(MaskSpec):
    """LaMa-style irregular strokes; ``preset`` is ``thin``, ``medium`` or ``thick`` (scaled from 256 px)."""

    preset: str = "medium"
    kind: str = "lama"

    def __post_init__(self):
        super().__post_init__()
        if self.preset not in strokes.LAMA_PRESETS:
            raise ValueError(f"preset must be one of {sorted(strokes.LAMA_PRESETS)}")


@dataclass(frozen=True)
class PartMask(MaskSpec):
    """Facial part placed from the landmarks: one of :data:`PARTS`.

    ``pad``: (along the eye line, across) padding in inter-ocular distances;
    None = the part's default (``occface.masks.parts.DEFAULT_PAD``).
    ``jitter`` j >= 0: the part is shifted by U(-j, j) iod along each face axis
    and its half-extents scaled by U(1 - j, 1 + j); 0 = the fixed mask.
    """

    part: str = "mouth"
    pad: tuple[float, float] | None = None
    jitter: float = 0.0
    kind: str = "part"

    def __post_init__(self):
        super().__post_init__()
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {self.part!r}")
        if self.pad is not None:
            object.__setattr__(self, "pad", tuple(float(p) for p in self.pad))
            if len(self.pad) != 2:
                raise ValueError("pad must be (along, across)")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")


@dataclass(frozen=True)
class QuadrantMask(MaskSpec):
    """One quadrant of the image (each 1/4 of it, OFHNet); ``"any"`` draws one uniformly."""

    quadrant: str = "any"
    kind: str = "quadrant"

    def __post_init__(self):
        super().__post_init__()
        if self.quadrant != "any" and self.quadrant not in QUADRANTS:
            raise ValueError(f"quadrant must be 'any' or one of {QUADRANTS}")


@dataclass(frozen=True)
class OccluderMask(MaskSpec):
    """An object drawn over the face from its landmarks (``occface.masks.occluders``), not a hole.

    ``object``: one of ``occluders.OBJECTS`` (sunglasses, eyeglasses, face_mask, scarf, hand,
    hair, object); ``style``: one of ``occluders.STYLES[object]`` or ``"any"`` (drawn per sample).
    The build composites it onto the HR face; the mask is where its alpha exceeds 0.5.
    """

    object: str = "sunglasses"
    style: str = "any"
    kind: str = "occluder"

    def __post_init__(self):
        super().__post_init__()
        if self.object not in occluders.OBJECTS:
            raise ValueError(f"object must be one of {occluders.OBJECTS}, got {self.object!r}")
        if self.style != "any" and self.style not in occluders.STYLES[self.object]:
            raise ValueError(f"style of {self.object} must be 'any' or one of {occluders.STYLES[self.object]}, "
                             f"got {self.style!r}")


@dataclass(frozen=True)
class MixtureMask(MaskSpec):
    """Weighted mixture: ``components`` is a tuple of (weight, spec) pairs; weights need not sum to 1.

    The params are those of the chosen component, plus ``"component"`` (its index).
    """

    components: tuple = ()
    kind: str = "mixture"

    def __post_init__(self):
        super().__post_init__()
        comps = tuple((float(w), s) for w, s in self.components)
        if not comps:
            raise ValueError("a mixture needs at least one (weight, spec) component")
        for w, s in comps:
            if not (math.isfinite(w) and w > 0):
                raise ValueError("mixture weights must be positive and finite")
            if not isinstance(s, MaskSpec):
                raise TypeError(f"not a mask spec: {s!r}")
        object.__setattr__(self, "components", comps)


@dataclass(frozen=True)
class BundledSet(MaskSpec):
    """A mask drawn uniformly from a bundled evaluation set (``masks/<name>``), optionally from some groups.

    ``name`` is a bundled set name (see ``occface.masks.sets.bundled_names()``) or
    the directory of a set made with ``occface masks make``.
    """

    name: str = "pconv128-v1"
    groups: tuple[str, ...] = ()
    kind: str = "bundled"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "groups", tuple(self.groups))


SPEC_TYPES = {
    cls.__dataclass_fields__["kind"].default: cls
    for cls in (SquareMask, PConvMask, BucketMask, LamaMask, PartMask, QuadrantMask, MixtureMask, BundledSet,
                OccluderMask)
}

# The `occluders` mixture: every object, face masks and hands a little more often (docs/masks.md).
OCCLUDER_WEIGHTS = {"sunglasses": 1.0, "eyeglasses": 1.0, "face_mask": 1.5, "scarf": 1.0, "hand": 1.5, "hair": 1.0,
                    "object": 1.0}

# Named specs for command lines and configs.
PRESETS = {
    "square": SquareMask(),
    **{m: SquareMask.named(m) for m in SQUARE_SIZES},
    "pconv": PConvMask(),
    "pconv-border": PConvMask(border=True),
    **{f"bucket{b}": BucketMask(b) for b in range(1, 7)},
    **{f"bucket{b}-border": BucketMask(b, border=True) for b in range(1, 7)},
    **{f"lama-{p}": LamaMask(p) for p in strokes.LAMA_PRESETS},
    **{p.replace("_", "-"): PartMask(p) for p in PARTS},
    **{f"fcsr-{o}": PartMask(p) for o, p in FCSR_GAN_OCCLUSIONS.items()},
    "quadrant": QuadrantMask(),
    **{q.replace("_", "-"): QuadrantMask(q) for q in QUADRANTS},
    "ofhnet-random": SquareMask(32, 64),  # 1/16 .. 1/4 of the image
    **{f"ofhnet-center{k}": SquareMask(8 * k, 8 * k, placement="center") for k in range(4, 9)},  # 4x4..8x8 at 16 px
    "pconv128-v1": BundledSet("pconv128-v1"),
    **{o.replace("_", "-"): OccluderMask(o) for o in occluders.OBJECTS},
    **{f"face-mask-{s}": OccluderMask("face_mask", s) for s in occluders.STYLES["face_mask"]},
    **{s: OccluderMask("object", s) for s in occluders.STYLES["object"]},
    "occluders": MixtureMask(tuple((w, OccluderMask(o)) for o, w in OCCLUDER_WEIGHTS.items())),
}


def spec_from_name(name: str):
    """A named spec: a preset from :data:`PRESETS` (e.g. ``"bucket3-border"``, ``"lama-thick"``,
    ``"m2"``, ``"mouth"``) or the name of any bundled evaluation set (``"pconv128-v1"``,
    ``"square128-v1"``: :class:`BundledSet` of that set)."""
    if name in PRESETS:
        return PRESETS[name]
    bundled = bundled_names()
    if name in bundled:
        return BundledSet(name)
    raise ValueError(f"unknown mask preset {name!r}; known: {sorted(set(PRESETS) | set(bundled))}")


def known_names() -> list[str]:
    """Every name :func:`spec_from_name` accepts: the presets and the bundled sets."""
    return sorted(set(PRESETS) | set(bundled_names()))


# ----------------------------------------------------------------------------- spec <-> dict


def spec_to_dict(spec) -> dict:
    """Plain JSON-able dict of a spec (``kind`` first); inverse of :func:`spec_from_dict`."""
    if not isinstance(spec, MaskSpec):
        raise TypeError(f"not a mask spec: {spec!r}")
    out = {"kind": spec.kind}
    for f in dataclasses.fields(spec):
        if f.name == "kind":
            continue
        val = getattr(spec, f.name)
        if isinstance(spec, MixtureMask) and f.name == "components":
            val = [[w, spec_to_dict(s)] for w, s in val]
        elif isinstance(val, tuple):
            val = list(val)
        out[f.name] = val
    return out


def spec_from_dict(d: dict):
    """Spec from :func:`spec_to_dict`'s output (e.g. read back from JSON)."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in SPEC_TYPES:
        raise ValueError(f"unknown mask kind {kind!r}; known: {sorted(SPEC_TYPES)}")
    cls = SPEC_TYPES[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown fields for {cls.__name__}: {sorted(unknown)}")
    if cls is MixtureMask:
        d["components"] = tuple((float(w), spec_from_dict(s)) for w, s in d.get("components", ()))
    for k, v in d.items():
        if isinstance(v, list):
            d[k] = tuple(v)
    return cls(**d)


def from_text(text: str):
    """A spec from what a user types: a preset name (:data:`PRESETS`), inline JSON
    (``{"kind": "square", ...}``) or ``@path`` to a JSON file.  Raises ``ValueError``
    with a one-line reason."""
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"cannot read mask spec {text[1:]!r}: {exc.strerror}") from None
    try:
        if text.lstrip().startswith("{"):
            return spec_from_dict(json.loads(text))
        return spec_from_name(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"mask spec is not valid JSON: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise ValueError(f"bad mask spec: {exc}") from None
