"""The face frame occluders are placed in, from the 68 landmarks (iBUG order) in the mask frame.

* ``u``: unit vector from the right-eye centre (mean 36-41) to the left-eye centre (mean
  42-47); ``v``: ``u`` turned 90 degrees, pointing down the face; ``iod``: eye-centre distance.
  Every size of every occluder is a multiple of ``iod``, every direction a combination of
  ``u`` and ``v``, so occluders roll, scale and move with the face.
* ``yaw``: (r - l) / (r + l) with r, l the extents of the face on either side of the nose tip
  (30) along ``u``, to the jaw ends 0 and 16: 0 for a frontal face, towards +1 when the
  subject's left side is foreshortened (face turned to its left), -1 the other way.
* ``eye_scale``: each eye's width (corner to corner) over their mean: < 1 on the far side of
  a yawed face, so eyewear shrinks there as the eye does.

Sides are the subject's: ``r`` = subject's right = image left in a frontal face.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

# unit circle, 32 steps, counter-clockwise in image coordinates from +x
N_CIRCLE = 32
CIRCLE = np.array([[math.cos(2 * math.pi * k / N_CIRCLE), math.sin(2 * math.pi * k / N_CIRCLE)]
                   for k in range(N_CIRCLE)])


@dataclass(frozen=True)
class FaceFrame:
    lm: np.ndarray       # (68, 2) float64
    u: np.ndarray        # (2,)
    v: np.ndarray        # (2,)
    iod: float
    eye_r: np.ndarray    # subject's right eye centre
    eye_l: np.ndarray
    yaw: float
    eye_scale: tuple[float, float]  # (right, left)

    def at(self, origin, a, b) -> np.ndarray:
        """``origin + (a u + b v) iod``: a point ``a`` iod along the eye line, ``b`` iod down the face
        (arrays ``a``, ``b`` of one shape give points of that shape + (2,))."""
        a = np.asarray(a, np.float64)[..., None]
        b = np.asarray(b, np.float64)[..., None]
        return origin + (a * self.u + b * self.v) * self.iod

    @property
    def mouth(self) -> np.ndarray:
        return self.lm[48:60].sum(0) / 12

    @property
    def eye_mid(self) -> np.ndarray:
        return (self.eye_r + self.eye_l) / 2


def face_frame(landmarks) -> FaceFrame:
    """The frame of a face; ``ValueError`` for landmarks that cannot hold an occluder at all."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise ValueError("occluders need (68, 2) finite landmarks (x, y) in the mask frame")
    c_r, c_l = lm[36:42].sum(0) / 6, lm[42:48].sum(0) / 6
    d = c_l - c_r
    iod = float(math.sqrt(d @ d))
    if not iod > 1.0:
        raise ValueError("degenerate landmarks: the eye centres (nearly) coincide")
    u = d / iod
    v = np.array([-u[1], u[0]])
    r = float((lm[30] - lm[0]) @ u)
    left = float((lm[16] - lm[30]) @ u)
    yaw = (r - left) / (r + left) if r + left > 0 else 0.0
    yaw = max(-1.0, min(1.0, yaw))
    w_r = math.hypot(lm[39, 0] - lm[36, 0], lm[39, 1] - lm[36, 1])
    w_l = math.hypot(lm[45, 0] - lm[42, 0], lm[45, 1] - lm[42, 1])
    mean = (w_r + w_l) / 2 or 1.0
    return FaceFrame(lm, u, v, iod, c_r, c_l, yaw, (w_r / mean, w_l / mean))


# ----------------------------------------------------------------------------- shapes (float px)


def ellipse(centre, ax_u: float, ax_v: float, u, v, n: int = N_CIRCLE) -> np.ndarray:
    """(n, 2) vertices of an ellipse with half-axes ``ax_u`` along ``u`` and ``ax_v`` along ``v``."""
    step = N_CIRCLE // n
    cs = CIRCLE[::step]
    return np.asarray(centre) + cs[:, :1] * ax_u * np.asarray(u) + cs[:, 1:] * ax_v * np.asarray(v)


def superellipse(centre, ax_u: float, ax_v: float, u, v, power: float) -> np.ndarray:
    """Rounded rectangle-like |x|^p + |y|^p = 1 (p = 2: ellipse; larger: squarer)."""
    cs = CIRCLE
    e = 2.0 / power
    x = np.sign(cs[:, 0]) * np.abs(cs[:, 0]) ** e
    y = np.sign(cs[:, 1]) * np.abs(cs[:, 1]) ** e
    return np.asarray(centre) + x[:, None] * ax_u * np.asarray(u) + y[:, None] * ax_v * np.asarray(v)


@functools.lru_cache(maxsize=32)
def _bezier_basis(n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n + 1)
    return np.stack([(1 - t) ** 2, 2 * (1 - t) * t, t**2], 1)  # (n + 1, 3)


def bezier(p0, p1, p2, n: int = 8) -> np.ndarray:
    """Points of the quadratic Bezier p0 -> p2 with control p1: (n + 1, 2), or (k, n + 1, 2) for (k, 2) inputs."""
    ctrl = np.stack([np.asarray(p0, np.float64), np.asarray(p1, np.float64), np.asarray(p2, np.float64)], -2)
    return _bezier_basis(n) @ ctrl


def push_out(points, centre, dist: float) -> np.ndarray:
    """Each point moved ``dist`` px further from ``centre``."""
    pts = np.asarray(points, np.float64)
    rel = pts - np.asarray(centre)
    r = np.sqrt((rel**2).sum(1))
    r = np.where(r > 0, r, 1.0)
    return pts + rel * (dist / r)[:, None]
