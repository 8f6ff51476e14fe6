"""Dihedral augmentation of finished samples (Helen's x8 training set).

The eight variants are the symmetries of the square: ``none``, ``flip``,
``rot90``, ``rot90-flip``, ``rot180``, ``rot180-flip``, ``rot270``,
``rot270-flip``.  ``rotK`` turns the image K degrees counter-clockwise (as
displayed, ``numpy.rot90`` with k = K / 90); ``-flip`` then mirrors it
left-right.

They are applied to the *aligned* crop, after detection and alignment on
the photo as distributed: dlib finds no face in a photo turned by 90 or 180
degrees, and aligning a turned photo to the upright template would simply
undo the turn.  :func:`augment_sample` turns ``hr``, ``hr_occluded``,
``mask`` (and ``alpha``), maps ``landmarks`` and ``align_matrix`` with the same
transform, and recomputes ``lr``, ``lr_clean`` and the heatmaps from them exactly
as the build does (with a degradation chain: the sample's stored draw applied to
the turned occluded face).  On a flip the 68 landmark indices are mirrored (36 <-> 45, 48
<-> 54, ...), so index 36 stays the outer corner of the eye on the image's
left, as a landmark detector would label the mirrored face; rotations keep
the indices.  ``mask_params`` still describe the un-augmented mask:
``augment_image(masks.render(params), variant)`` rebuilds the stored mask.
"""

from __future__ import annotations

import json

import numpy as np

VARIANTS = ("none", "flip", "rot90", "rot90-flip", "rot180", "rot180-flip", "rot270", "rot270-flip")


def _mirror68() -> np.ndarray:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]  # mouth
    perm = np.arange(68)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


MIRROR68 = _mirror68()


def parse_variant(variant: str) -> tuple[int, bool]:
    """``"rot90-flip"`` -> (1, True): quarter turns counter-clockwise, then a horizontal flip."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown augmentation {variant!r}; known: {', '.join(VARIANTS)}")
    if variant == "none":
        return 0, False
    if variant == "flip":
        return 0, True
    rot, _, flip = variant.partition("-")
    return int(rot[3:]) // 90, flip == "flip"


def augment_image(img: np.ndarray, variant: str, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Apply a variant to an image whose rows/columns are ``axes``."""
    k, flip = parse_variant(variant)
    out = np.rot90(img, k, axes=axes)
    if flip:
        out = np.flip(out, axis=axes[1])
    return np.ascontiguousarray(out)


def point_matrix(variant: str, size: int) -> np.ndarray:
    """(3, 3) matrix mapping (x, y, 1) pixel coordinates of a ``size`` square through the variant."""
    k, flip = parse_variant(variant)
    s1 = size - 1.0
    quarter = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, s1], [0.0, 0.0, 1.0]])  # (x, y) -> (y, S-1-x)
    m = np.linalg.matrix_power(quarter, k)
    if flip:
        m = np.array([[-1.0, 0.0, s1], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ m
    return m


def augment_points(points: np.ndarray, variant: str, size: int) -> np.ndarray:
    """68 (x, y) points through the variant, indices mirrored on a flip."""
    m = point_matrix(variant, size)
    pts = np.asarray(points, np.float64) @ m[:2, :2].T + m[:2, 2]
    if parse_variant(variant)[1] and len(pts) == 68:
        pts = pts[MIRROR68]
    return pts


def augment_sample(sample: dict, variant: str, cfg) -> dict:
    """A finished sample (``occface.build.make_sample``) through the variant; ``none`` returns it as is."""
    if variant == "none":
        return sample
    from .. import degrade
    from ..faces import heatmaps, resize

    S = cfg.hr_size
    out = dict(sample)
    for name in ("hr", "hr_occluded", "mask", "alpha"):
        if name in sample:
            out[name] = augment_image(sample[name], variant)
    lm = augment_points(sample["landmarks"], variant, S).astype(np.float32)
    out["landmarks"] = lm
    if cfg.degrade.is_none:
        both = resize.resize(np.stack([out["hr_occluded"], out["hr"]]), cfg.lr_size, cfg.resize_rule)
        out["lr"], out["lr_clean"] = both[0], both[1]
    else:  # the sample's own degradation draw, applied to the variant's (undegraded) occluded face
        params = json.loads(sample["meta"]["degrade"])
        occ = augment_image(sample.get("_occluded_clean", sample["hr_occluded"]), variant)
        out["lr"] = degrade.apply(occ, params)
        out["lr_clean"] = resize.resize(out["hr"], cfg.lr_size, cfg.resize_rule)
        if cfg.degrade_hr:
            out["_occluded_clean"] = occ
            out["hr_occluded"] = degrade.apply(occ, params, size=S)
    out["heatmaps"] = {}
    for spec in sample["heatmaps"]:
        grouping, size = heatmaps.parse_spec(spec)
        out["heatmaps"][spec] = heatmaps.to_uint8(
            heatmaps.render(lm, grouping, size, cfg.heatmap_sigma, frame=S)
        )
    meta = dict(sample["meta"])
    m = np.vstack([np.asarray(meta["align_matrix"], np.float64), [0.0, 0.0, 1.0]])
    meta["align_matrix"] = (point_matrix(variant, S) @ m)[:2]
    out["meta"] = meta
    return out
