"""Occlusion masks on the 128x128 HR face.  Convention: 1 = missing.

Every mask kind is a frozen dataclass *spec* (with a ``kind`` field) plus two functions:

* ``sample_params(spec, rng, landmarks=None, size=128) -> dict``: draws every
  random choice from the explicit generator ``rng`` and returns a
  JSON-serialisable dict (plain ints / floats / strings / lists) that always
  holds ``"kind"``;
* ``render(params, size=128) -> np.ndarray``: a pure function of the params,
  returning a ``(size, size)`` uint8 array with values in {0, 1}.

The build stores the params (and :func:`hole_ratio`) with each sample, so
every mask can be rebuilt exactly from them, or from ``(seed, key)`` via
:func:`mask_for` / ``occface.seeding.rng_for(seed, key, "mask")``.

Kinds (``docs/masks.md`` has the details and the ranges the tests enforce):

=================  ==============  ============================================
spec               params kind     what
=================  ==============  ============================================
``PConvMask``      ``pconv``       PConv-style lines, filled circles, arcs
``BucketMask``     ``pconv_bucket`` same strokes, hole ratio inside a PConv bucket
``LamaMask``       ``lama``        LaMa-style strokes, thin / medium / thick
``SquareMask``     ``square``      square, side in [min, max] (m1..m5 presets)
``PartMask``       ``part``        facial part from the face's own landmarks
``QuadrantMask``   ``quadrant``    one image quadrant (OFHNet)
``MixtureMask``    (component's)   weighted mixture of the above
``BundledSet``     ``bundled``     a mask from a bundled evaluation set
=================  ==============  ============================================

PConv buckets are numbered 1..6: (0.01, 0.1], (0.1, 0.2], ... (0.5, 0.6].
Border-constrained masks leave a ``size // 16`` px frame (8 px at 128) free.

Kinds that must rasterise while sampling (ratio targeting, LaMa's area
rejection) keep the last raster in a one-entry cache, so the ``render`` that
follows is a copy; ``render`` still redraws whenever the params differ.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import mask_parts, mask_strokes
from .mask_strokes import BUCKET_EDGES, border_margin, bucket_counts, bucket_of_count  # noqa: F401  (re-exported)

SQUARE_SIZES = {"m1": 16, "m2": 24, "m3": 32, "m4": 48, "m5": 64}
QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")
PARTS = mask_parts.PARTS
# FCSR-GAN's six fixed occlusions O1-O6, in the order of its Fig. 7 caption.
# The paper does not say whether "left" is the subject's or the viewer's; here
# it is the subject's (see occface.mask_parts).
FCSR_GAN_OCCLUSIONS = {
    "O1": "left_half",
    "O2": "right_half",
    "O3": "eyes",
    "O4": "left_eye",
    "O5": "right_eye",
    "O6": "mouth",
}


class _Spec:
    def __post_init__(self):
        default = type(self).__dataclass_fields__["kind"].default
        if self.kind != default:
            raise ValueError(f"{type(self).__name__}.kind must be {default!r}, got {self.kind!r}")


@dataclass(frozen=True)
class SquareMask(_Spec):
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
class PConvMask(_Spec):
    """PConv-Keras-style irregular mask (no ratio control); ``border`` keeps the frame free."""

    border: bool = False
    kind: str = "pconv"


@dataclass(frozen=True)
class BucketMask(_Spec):
    """PConv-style irregular mask whose hole ratio is inside PConv bucket ``bucket`` (1..6), exactly."""

    bucket: int = 1
    border: bool = False
    kind: str = "pconv_bucket"

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.bucket, int) and 1 <= self.bucket <= mask_strokes.N_BUCKETS):
            raise ValueError(f"bucket must be an int in 1..{mask_strokes.N_BUCKETS}")


@dataclass(frozen=True)
class LamaMask(_Spec):
    """LaMa-style irregular strokes; ``preset`` is ``thin``, ``medium`` or ``thick`` (scaled from 256 px)."""

    preset: str = "medium"
    kind: str = "lama"

    def __post_init__(self):
        super().__post_init__()
        if self.preset not in mask_strokes.LAMA_PRESETS:
            raise ValueError(f"preset must be one of {sorted(mask_strokes.LAMA_PRESETS)}")


@dataclass(frozen=True)
class PartMask(_Spec):
    """Facial part placed from the landmarks: one of :data:`PARTS`.

    ``pad``: (along the eye line, across) padding in inter-ocular distances;
    None = the part's default (``occface.mask_parts.DEFAULT_PAD``).
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
class QuadrantMask(_Spec):
    """One quadrant of the image (each 1/4 of it, OFHNet); ``"any"`` draws one uniformly."""

    quadrant: str = "any"
    kind: str = "quadrant"

    def __post_init__(self):
        super().__post_init__()
        if self.quadrant != "any" and self.quadrant not in QUADRANTS:
            raise ValueError(f"quadrant must be 'any' or one of {QUADRANTS}")


@dataclass(frozen=True)
class MixtureMask(_Spec):
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
            if not isinstance(s, _Spec):
                raise TypeError(f"not a mask spec: {s!r}")
        object.__setattr__(self, "components", comps)


@dataclass(frozen=True)
class BundledSet(_Spec):
    """A mask drawn uniformly from a bundled evaluation set (``masks/<name>``), optionally from some groups.

    ``name`` is a bundled set name (see ``occface.masksets.bundled_names()``) or
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
    for cls in (SquareMask, PConvMask, BucketMask, LamaMask, PartMask, QuadrantMask, MixtureMask, BundledSet)
}

# Named specs for command lines and configs.
PRESETS = {
    "square": SquareMask(),
    **{m: SquareMask.named(m) for m in SQUARE_SIZES},
    "pconv": PConvMask(),
    "pconv-border": PConvMask(border=True),
    **{f"bucket{b}": BucketMask(b) for b in range(1, 7)},
    **{f"bucket{b}-border": BucketMask(b, border=True) for b in range(1, 7)},
    **{f"lama-{p}": LamaMask(p) for p in mask_strokes.LAMA_PRESETS},
    **{p.replace("_", "-"): PartMask(p) for p in PARTS},
    **{f"fcsr-{o}": PartMask(p) for o, p in FCSR_GAN_OCCLUSIONS.items()},
    "quadrant": QuadrantMask(),
    **{q.replace("_", "-"): QuadrantMask(q) for q in QUADRANTS},
    "ofhnet-random": SquareMask(32, 64),  # 1/16 .. 1/4 of the image
    **{f"ofhnet-center{k}": SquareMask(8 * k, 8 * k, placement="center") for k in range(4, 9)},  # 4x4..8x8 at 16 px
    "pconv128-v1": BundledSet("pconv128-v1"),
}


def spec_from_name(name: str):
    """A named spec from :data:`PRESETS` (e.g. ``"bucket3-border"``, ``"lama-thick"``, ``"m2"``, ``"mouth"``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown mask preset {name!r}; known: {sorted(PRESETS)}") from None


# ----------------------------------------------------------------------------- spec <-> dict


def spec_to_dict(spec) -> dict:
    """Plain JSON-able dict of a spec (``kind`` first); inverse of :func:`spec_from_dict`."""
    if not isinstance(spec, _Spec):
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


# ----------------------------------------------------------------------------- sampling

_LAST = None  # (size, params snapshot, mask): the raster made while sampling, see render()


def _remember(params: dict, mask: np.ndarray, size: int) -> None:
    global _LAST
    snap = {k: ([list(r) for r in v] if isinstance(v, list) else v) for k, v in params.items()}
    _LAST = (size, snap, mask)


def sample_params(spec, rng: np.random.Generator, landmarks: np.ndarray | None = None, size: int = 128) -> dict:
    """Draw the random parameters of one mask of kind ``spec``.

    ``landmarks``: (68, 2) float (x, y) in the ``size`` frame, for kinds that
    follow the face (``PartMask``); ignored by the others.
    """
    if isinstance(spec, SquareMask):
        if spec.max_side > size:
            raise ValueError(f"square sides up to {spec.max_side} do not fit a {size}px mask")
        side = int(rng.integers(spec.min_side, spec.max_side + 1))
        if spec.placement == "center":
            x0 = y0 = (size - side) // 2
        else:
            x0 = int(rng.integers(0, size - side + 1))
            y0 = int(rng.integers(0, size - side + 1))
        return {"kind": "square", "x0": x0, "y0": y0, "side": side}
    if isinstance(spec, PConvMask):
        return mask_strokes.sample_pconv(rng, size, spec.border)
    if isinstance(spec, BucketMask):
        params, mask = mask_strokes.sample_pconv_bucket(rng, size, spec.bucket, spec.border)
        _remember(params, mask, size)
        return params
    if isinstance(spec, LamaMask):
        params, mask = mask_strokes.sample_lama(rng, size, spec.preset)
        _remember(params, mask, size)
        return params
    if isinstance(spec, QuadrantMask):
        q = spec.quadrant if spec.quadrant != "any" else QUADRANTS[int(rng.integers(0, 4))]
        return {"kind": "quadrant", "quadrant": q}
    if isinstance(spec, PartMask):
        if landmarks is None:
            raise ValueError("PartMask needs the face's (68, 2) landmarks")
        pad = spec.pad if spec.pad is not None else mask_parts.DEFAULT_PAD[spec.part]
        shift, scale = (0.0, 0.0), 1.0
        if spec.jitter > 0:
            u = rng.random(3).tolist()
            j = spec.jitter
            shift, scale = ((2 * u[0] - 1) * j, (2 * u[1] - 1) * j), 1.0 + (2 * u[2] - 1) * j
        poly = mask_parts.part_polygon(spec.part, landmarks, size, pad, shift, scale)
        return {"kind": "part", "part": spec.part, "poly": mask_parts.to_fixed(poly)}
    if isinstance(spec, MixtureMask):
        total = sum(w for w, _ in spec.components)
        u = float(rng.random()) * total
        acc = 0.0
        idx = len(spec.components) - 1
        for i, (w, _) in enumerate(spec.components):
            acc += w
            if u < acc:
                idx = i
                break
        params = sample_params(spec.components[idx][1], rng, landmarks, size)
        params["component"] = idx
        return params
    if isinstance(spec, BundledSet):
        from . import masksets

        ms = masksets.load_set(spec.name)
        if ms.size != size:
            raise ValueError(f"bundled set {spec.name!r} holds {ms.size}px masks, not {size}px")
        pool = ms.indices(spec.groups)
        i = int(pool[int(rng.integers(0, len(pool)))])
        return {"kind": "bundled", "set": spec.name, "index": i, "group": ms.labels[int(ms.group[i])]}
    raise TypeError(f"unknown mask spec {spec!r}")


# ----------------------------------------------------------------------------- rendering


def render(params: dict, size: int = 128) -> np.ndarray:
    """Render sampled params to a (size, size) uint8 mask, 1 = missing.  Pure."""
    kind = params["kind"]
    if kind == "square":
        mask = np.zeros((size, size), np.uint8)
        x0, y0, s = params["x0"], params["y0"], params["side"]
        mask[y0 : y0 + s, x0 : x0 + s] = 1
        return mask
    if kind in ("pconv", "pconv_bucket", "lama"):
        last = _LAST
        if last is not None and last[0] == size and all(params.get(k) == v for k, v in last[1].items()):
            return last[2].copy()
        return mask_strokes.render_strokes(params, size)
    if kind == "quadrant":
        mask = np.zeros((size, size), np.uint8)
        h = size // 2
        q = params["quadrant"]
        if q not in QUADRANTS:
            raise ValueError(f"unknown quadrant {q!r}")
        rows = slice(0, h) if q.startswith("top") else slice(size - h, size)
        cols = slice(0, h) if q.endswith("left") else slice(size - h, size)
        mask[rows, cols] = 1
        return mask
    if kind == "part":
        return mask_parts.render_poly(params, size)
    if kind == "bundled":
        from . import masksets

        return masksets.load_set(params["set"]).mask(params["index"], size)
    raise ValueError(f"unknown mask kind {kind!r}")


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of missing pixels."""
    return float(np.count_nonzero(mask)) / mask.size


def sample_mask(spec, rng: np.random.Generator, landmarks: np.ndarray | None = None, size: int = 128):
    """``(params, mask)``: :func:`sample_params` then :func:`render`."""
    params = sample_params(spec, rng, landmarks, size)
    return params, render(params, size)


def mask_for(spec, seed: int, key: str, landmarks: np.ndarray | None = None, size: int = 128, stream: str = "mask"):
    """``(params, mask)`` for one sample, regenerated exactly from ``(seed, key)`` as the build does."""
    from .seeding import rng_for

    return sample_mask(spec, rng_for(seed, key, stream), landmarks, size)


def bucket_of(mask: np.ndarray) -> int:
    """PConv bucket 1..6 of a mask (0: ratio <= 0.01, 7: ratio > 0.6)."""
    return bucket_of_count(int(np.count_nonzero(mask)), mask.size)
