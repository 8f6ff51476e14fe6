"""Facial-part masks placed from the face's own 68 landmarks (iBUG order), so they follow pose.

Pure helpers behind :mod:`occface.masks` (use its ``PartMask`` spec).

Sides are the *subject's* (iBUG convention): ``left_eye`` covers points
42-47, which appear on the image's right in a frontal face; ``left_half`` is
the half of the image on the subject's left of the facial midline.

Geometry (all in the landmark frame, pixel centres at integer coordinates):

* face axes: ``u`` = unit vector from the right-eye centre (mean of 36-41) to
  the left-eye centre (mean of 42-47); ``v`` = ``u`` turned 90 degrees
  (pointing down the face); ``iod`` = distance between the eye centres.
* ``right_eye``, ``left_eye``, ``eyes`` (glasses band), ``mouth``: the box
  that bounds the part's landmarks in (u, v) coordinates, padded by
  ``pad`` x iod along u and across (v), i.e. a rectangle rotated with the face.
* ``nose``: the convex hull of points 27-35, each vertex pushed out from the
  hull's centre by ``pad[0]`` x iod (a box would reach the inner eye corners).
* ``lower_face`` (a face mask): the polygon jaw 1..15 closed through the
  middle of the nose bridge (point 29), pushed out radially by ``pad[0]`` x iod.
* ``left_half`` / ``right_half``: the half-plane on that side of the line
  through the eye midpoint and the mouth-corner midpoint (48, 54), clipped to
  the image.

Only IEEE-exact arithmetic (+, -, *, /, sqrt) is used; vertices are stored as
integers in 1/16 px and filled with ``cv2.fillPoly(..., shift=4)``.
"""

from __future__ import annotations

import cv2
import numpy as np

SHIFT = 4
ONE = 1 << SHIFT

PART_POINTS = {
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "eyes": tuple(range(36, 48)),
    "nose": tuple(range(27, 36)),
    "mouth": tuple(range(48, 68)),
    "lower_face": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 29),
    "left_half": (),
    "right_half": (),
}
PARTS = tuple(PART_POINTS)

# Default padding (along u, across u) in units of the inter-ocular distance.
DEFAULT_PAD = {
    "right_eye": (0.12, 0.15),
    "left_eye": (0.12, 0.15),
    "eyes": (0.25, 0.2),
    "nose": (0.08, 0.08),
    "mouth": (0.12, 0.05),
    "lower_face": (0.05, 0.05),
    "left_half": (0.0, 0.0),
    "right_half": (0.0, 0.0),
}


def _axes(lm: np.ndarray):
    c_r = lm[36:42].mean(0)
    c_l = lm[42:48].mean(0)
    d = c_l - c_r
    iod = float(np.sqrt(d @ d))
    if not iod > 0:
        raise ValueError("degenerate landmarks: the eye centres coincide")
    u = d / iod
    v = np.array([-u[1], u[0]])
    return c_r, c_l, u, v, iod


def part_polygon(part: str, landmarks: np.ndarray, size: int, pad: tuple[float, float], shift_uv=(0.0, 0.0), scale=1.0):
    """Polygon vertices (k, 2) float64 in pixels for ``part``.

    ``shift_uv`` (in iod units, along u and v) and ``scale`` (of the padded
    half-extents) are the jitter; (0, 0) and 1 give the fixed mask.
    """
    if part not in PART_POINTS:
        raise ValueError(f"unknown facial part {part!r}; known: {PARTS}")
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise ValueError("facial-part masks need (68, 2) finite landmarks (x, y) in the mask frame")
    c_r, c_l, u, v, iod = _axes(lm)
    offset = (shift_uv[0] * u + shift_uv[1] * v) * iod
    if part in ("left_half", "right_half"):
        top = (c_r + c_l) / 2
        axis = (lm[48] + lm[54]) / 2 - top
        norm = float(np.sqrt(axis @ axis))
        axis = axis / norm if norm > 0 else v
        n = np.array([axis[1], -axis[0]])
        side = c_l - top if part == "left_half" else c_r - top
        if n @ side < 0:
            n = -n
        far = 4.0 * size
        o = top + offset
        return np.array([o - far * axis, o + far * axis, o + far * axis + far * n, o - far * axis + far * n])
    pts = lm[list(PART_POINTS[part])]
    if part == "nose":
        pts = convex_hull(pts)
    if part in ("lower_face", "nose"):
        g = pts.mean(0)
        rel = pts - g
        r = np.sqrt((rel**2).sum(1))
        r = np.where(r > 0, r, 1.0)
        grow = 1.0 + pad[0] * iod / r
        return g + offset + rel * (scale * grow)[:, None]
    a = pts @ u
    b = pts @ v
    ca, cb = (a.min() + a.max()) / 2, (b.min() + b.max()) / 2
    ha = ((a.max() - a.min()) / 2 + pad[0] * iod) * scale
    hb = ((b.max() - b.min()) / 2 + pad[1] * iod) * scale
    centre = ca * u + cb * v + offset
    return np.array(
        [centre - ha * u - hb * v, centre + ha * u - hb * v, centre + ha * u + hb * v, centre - ha * u + hb * v]
    )


def convex_hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain, counter-clockwise in image coordinates' sense of cross > 0)."""
    p = sorted(map(tuple, np.asarray(pts, np.float64).tolist()))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    for q in reversed(p):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1], np.float64)


def to_fixed(poly: np.ndarray) -> list:
    """Float vertices -> [[x16, y16], ...] ints in 1/16 px."""
    return np.rint(np.asarray(poly, np.float64) * ONE).astype(np.int64).tolist()


def render_poly(params: dict, size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.asarray(params["poly"], np.int32)], 1, cv2.LINE_8, SHIFT)
    return mask
