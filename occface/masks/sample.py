"""Sampling and rendering masks: spec + generator -> params -> pixels.  Convention: 1 = missing.

Two functions per kind, kept apart (albumentations' ``get_params`` vs ``functional``):

* a *sampler* draws every random choice from the explicit generator ``rng`` and returns a
  JSON-serialisable dict (plain ints / floats / strings / lists) that always holds
  ``"kind"``;
* a *renderer* is a pure function of those params, returning a ``(size, size)`` uint8
  array with values in {0, 1}.

Both are looked up in explicit tables (:data:`SAMPLERS` by spec type, :data:`RENDERERS`
by params kind).  Kinds that must rasterise while sampling (ratio targeting, LaMa's area
rejection) hand that raster back with their params, so :func:`sample_mask` does not draw
it twice; :func:`render` always draws from the params, and gives the same pixels.

The build stores the params (and :func:`hole_ratio`) with each sample, so every mask can
be rebuilt exactly from them, or from ``(seed, key)`` via :func:`mask_for`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..seeding import rng_for
from . import occluders, parts, sets, strokes
from .specs import (QUADRANTS, BucketMask, BundledSet, LamaMask, MixtureMask, OccluderMask, PartMask, PConvMask,
                    QuadrantMask, SquareMask)

# ----------------------------------------------------------------------------- samplers
# Each: (spec, rng, landmarks, size) -> (params, raster or None).


def _sample_square(spec: SquareMask, rng, landmarks, size):
    if spec.max_side > size:
        raise ValueError(f"square sides up to {spec.max_side} do not fit a {size}px mask")
    side = int(rng.integers(spec.min_side, spec.max_side + 1))
    if spec.placement == "center":
        x0 = y0 = (size - side) // 2
    else:
        x0 = int(rng.integers(0, size - side + 1))
        y0 = int(rng.integers(0, size - side + 1))
    return {"kind": "square", "x0": x0, "y0": y0, "side": side}, None


def _sample_pconv(spec: PConvMask, rng, landmarks, size):
    return strokes.sample_pconv(rng, size, spec.border), None


def _sample_bucket(spec: BucketMask, rng, landmarks, size):
    return strokes.sample_pconv_bucket(rng, size, spec.bucket, spec.border)


def _sample_lama(spec: LamaMask, rng, landmarks, size):
    return strokes.sample_lama(rng, size, spec.preset)


def _sample_quadrant(spec: QuadrantMask, rng, landmarks, size):
    q = spec.quadrant if spec.quadrant != "any" else QUADRANTS[int(rng.integers(0, 4))]
    return {"kind": "quadrant", "quadrant": q}, None


def _sample_part(spec: PartMask, rng, landmarks, size):
    if landmarks is None:
        raise ValueError("PartMask needs the face's (68, 2) landmarks")
    pad = spec.pad if spec.pad is not None else parts.DEFAULT_PAD[spec.part]
    shift, scale = (0.0, 0.0), 1.0
    if spec.jitter > 0:
        u = rng.random(3).tolist()
        j = spec.jitter
        shift, scale = ((2 * u[0] - 1) * j, (2 * u[1] - 1) * j), 1.0 + (2 * u[2] - 1) * j
    poly = parts.part_polygon(spec.part, landmarks, size, pad, shift, scale)
    return {"kind": "part", "part": spec.part, "poly": parts.to_fixed(poly)}, None


def _sample_mixture(spec: MixtureMask, rng, landmarks, size):
    total = sum(w for w, _ in spec.components)
    u = float(rng.random()) * total
    acc = 0.0
    idx = len(spec.components) - 1
    for i, (w, _) in enumerate(spec.components):
        acc += w
        if u < acc:
            idx = i
            break
    params, raster = _sample(spec.components[idx][1], rng, landmarks, size)
    params["component"] = idx
    return params, raster


def _sample_bundled(spec: BundledSet, rng, landmarks, size):
    ms = sets.load_set(spec.name)
    if ms.size != size:
        raise ValueError(f"bundled set {spec.name!r} holds {ms.size}px masks, not {size}px")
    pool = ms.indices(spec.groups)
    i = int(pool[int(rng.integers(0, len(pool)))])
    return {"kind": "bundled", "set": spec.name, "index": i, "group": ms.labels[int(ms.group[i])]}, None


def _sample_occluder(spec: OccluderMask, rng, landmarks, size):
    return occluders.sample(spec.object, spec.style, rng, landmarks, size), None


SAMPLERS: dict[type, Callable] = {
    SquareMask: _sample_square,
    PConvMask: _sample_pconv,
    BucketMask: _sample_bucket,
    LamaMask: _sample_lama,
    QuadrantMask: _sample_quadrant,
    PartMask: _sample_part,
    MixtureMask: _sample_mixture,
    BundledSet: _sample_bundled,
    OccluderMask: _sample_occluder,
}


def _sample(spec, rng, landmarks, size):
    fn = SAMPLERS.get(type(spec))
    if fn is None:
        raise TypeError(f"unknown mask spec {spec!r}")
    return fn(spec, rng, landmarks, size)


# ----------------------------------------------------------------------------- renderers
# Each: (params, size) -> (size, size) uint8 in {0, 1}.  Pure.


def _render_square(params, size):
    mask = np.zeros((size, size), np.uint8)
    x0, y0, s = params["x0"], params["y0"], params["side"]
    mask[y0 : y0 + s, x0 : x0 + s] = 1
    return mask


def _render_quadrant(params, size):
    mask = np.zeros((size, size), np.uint8)
    h = size // 2
    q = params["quadrant"]
    if q not in QUADRANTS:
        raise ValueError(f"unknown quadrant {q!r}")
    rows = slice(0, h) if q.startswith("top") else slice(size - h, size)
    cols = slice(0, h) if q.endswith("left") else slice(size - h, size)
    mask[rows, cols] = 1
    return mask


def _render_bundled(params, size):
    return sets.load_set(params["set"]).mask(params["index"], size)


RENDERERS: dict[str, Callable] = {
    "square": _render_square,
    "pconv": strokes.render_strokes,
    "pconv_bucket": strokes.render_strokes,
    "lama": strokes.render_strokes,
    "quadrant": _render_quadrant,
    "part": parts.render_poly,
    "bundled": _render_bundled,
    "occluder": occluders.render_mask,
}


# ----------------------------------------------------------------------------- public API


def sample_params(spec, rng: np.random.Generator, landmarks: np.ndarray | None = None, size: int = 128) -> dict:
    """Draw the random parameters of one mask of kind ``spec``.

    ``landmarks``: (68, 2) float (x, y) in the ``size`` frame, for kinds that
    follow the face (``PartMask``); ignored by the others.
    """
    return _sample(spec, rng, landmarks, size)[0]


def render(params: dict, size: int = 128) -> np.ndarray:
    """Render sampled params to a (size, size) uint8 mask, 1 = missing.  Pure."""
    fn = RENDERERS.get(params["kind"])
    if fn is None:
        raise ValueError(f"unknown mask kind {params['kind']!r}")
    return fn(params, size)


def sample_mask(spec, rng: np.random.Generator, landmarks: np.ndarray | None = None,
                size: int = 128) -> tuple[dict, np.ndarray]:
    """``(params, mask)``: :func:`sample_params` then :func:`render`, drawing the mask once."""
    params, raster = _sample(spec, rng, landmarks, size)
    return params, (raster if raster is not None else render(params, size))


def is_occluder(params: dict) -> bool:
    """True for params of an object drawn over the face (composited), False for a hole (filled)."""
    return params["kind"] == "occluder"


def sample_occlusion(spec, rng: np.random.Generator, landmarks: np.ndarray | None = None,
                     size: int = 128) -> tuple[dict, np.ndarray, tuple | None]:
    """``(params, mask, layer)``: as :func:`sample_mask`, plus the occluder's painted
    ``(rgb, alpha)`` uint8 when the params are an occluder's (``None`` for a hole), painted once."""
    params, raster = _sample(spec, rng, landmarks, size)
    if is_occluder(params):
        rgb, alpha = occluders.render(params, size)
        return params, occluders.mask_of(alpha), (rgb, alpha)
    return params, (raster if raster is not None else render(params, size)), None


def mask_for(spec, seed: int, key: str, landmarks: np.ndarray | None = None, size: int = 128, stream: str = "mask"):
    """``(params, mask)`` for one sample, regenerated exactly from ``(seed, key)`` as the build does."""
    return sample_mask(spec, rng_for(seed, key, stream), landmarks, size)


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of missing pixels."""
    return float(np.count_nonzero(mask)) / mask.size


def bucket_of(mask: np.ndarray) -> int:
    """PConv bucket 1..6 of a mask (0: ratio <= 0.01, 7: ratio > 0.6)."""
    return strokes.bucket_of_count(int(np.count_nonzero(mask)), mask.size)
