"""Alignment: a similarity transform from 68 dlib landmarks to a named, versioned template.

Coordinates are (x, y) with pixel centres at integer positions (OpenCV's
convention), in both the source photo and the output crop.

Template ``occface-5pt-v1``: five anchors computed from the 68 points (the two
eye centres = means of 36-41 and 42-47, nose tip 30, mouth corners 48 and 54)
are fitted by weighted least squares (closed-form Umeyama similarity, no
reflection, no RANSAC so it is deterministic; eyes weigh 3, nose and mouth
corners 1, so the eyes land on the template even when the mouth moves -- a
smile otherwise drags the eyes ~3 px) to the five-point face template
used by ArcFace-style 112x112 crops, made left/right symmetric so that the eyes
sit on one row, then padded by ``margin``: a template coordinate t in [0, 1]
maps to ``(t + margin) / (1 + 2 margin) * size``.  With the default margin 0.2
on a 128 crop the eyes sit on row ~60, ~29 px apart, and the crop holds brows
to chin ("main facial area", Pro-UIGAN).

The warp is bilinear (paper).  When the face is shrunk by more than 2x the
photo is first reduced by an integer factor with area averaging, so the
bilinear step never aliases; the factor is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Unit-square anchor positions (x, y): right eye (subject's), left eye, nose tip,
# right mouth corner, left mouth corner.  Image-left first.
TEMPLATES = {
    "occface-5pt-v1": np.array(
        [
            [0.34190, 0.46070],
            [0.65810, 0.46070],
            [0.50000, 0.64050],
            [0.36975, 0.82395],
            [0.63025, 0.82395],
        ],
        dtype=np.float64,
    ),
}

# Per-anchor weights of the least-squares fit (same order as the template).
TEMPLATE_WEIGHTS = {"occface-5pt-v1": np.array([3.0, 3.0, 1.0, 1.0, 1.0])}

BORDER_MODES = {"reflect101": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


@dataclass(frozen=True)
class AlignConfig:
    template: str = "occface-5pt-v1"
    margin: float = 0.2
    size: int = 128
    border: str = "reflect101"

    def __post_init__(self):
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown template {self.template!r}; known: {sorted(TEMPLATES)}")
        if self.border not in BORDER_MODES:
            raise ValueError(f"border must be one of {sorted(BORDER_MODES)}")
        if not (0.0 <= self.margin < 2.0) or self.size < 8:
            raise ValueError("margin must be in [0, 2) and size >= 8")


# anchors = _ANCHOR_WEIGHTS @ landmarks: eye centres (means of 36-41, 42-47), nose tip 30, mouth corners 48, 54
_ANCHOR_WEIGHTS = np.zeros((5, 68))
_ANCHOR_WEIGHTS[0, 36:42] = 1 / 6
_ANCHOR_WEIGHTS[1, 42:48] = 1 / 6
_ANCHOR_WEIGHTS[2, 30] = _ANCHOR_WEIGHTS[3, 48] = _ANCHOR_WEIGHTS[4, 54] = 1.0


def anchors(landmarks68: np.ndarray) -> np.ndarray:
    """(5, 2) anchors from (68, 2) landmarks: eye centres, nose tip, mouth corners."""
    return _ANCHOR_WEIGHTS @ np.asarray(landmarks68, dtype=np.float64)


def template_points(cfg: AlignConfig) -> np.ndarray:
    """(5, 2) anchor targets in output pixel coordinates."""
    t = TEMPLATES[cfg.template]
    return ((t + cfg.margin) / (1.0 + 2.0 * cfg.margin)) * cfg.size - 0.5


def fit_similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares similarity (rotation, uniform scale, translation) mapping src -> dst.

    Returns the (2, 3) matrix ``[[a, -b, tx], [b, a, ty]]``.  In 2-D the Umeyama solution has a
    closed form: with centred points, a = sum w (s . d) / var and b = sum w (s x d) / var, so no SVD.
    ``weights`` (n,) default to equal.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s0, d0 = src - mu_s, dst - mu_d
    var = float(w @ (s0 * s0).sum(1))
    if var <= 1e-12:
        raise ValueError("degenerate landmarks: all anchors coincide")
    a = float(w @ (s0[:, 0] * d0[:, 0] + s0[:, 1] * d0[:, 1])) / var
    b = float(w @ (s0[:, 0] * d0[:, 1] - s0[:, 1] * d0[:, 0])) / var
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def transform_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def alignment_matrix(landmarks68: np.ndarray, cfg: AlignConfig) -> np.ndarray:
    """(2, 3) float64 matrix mapping source pixels to the aligned crop."""
    return fit_similarity(anchors(landmarks68), template_points(cfg), TEMPLATE_WEIGHTS[cfg.template])


def warp(rgb: np.ndarray, m: np.ndarray, cfg: AlignConfig) -> tuple[np.ndarray, int]:
    """Warp the photo into the ``cfg.size`` crop with bilinear interpolation.

    Returns ((size, size, 3) uint8, prefilter factor k).  When the transform
    shrinks by more than 2x, the photo is first area-reduced by the integer
    factor k = floor(0.5 / scale) so the final bilinear warp scales by >= 0.5.
    """
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    k = int(0.5 / scale) if scale < 0.5 else 1
    src = rgb
    if k > 1:
        h, w = rgb.shape[:2]
        src = cv2.resize(rgb, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
        # pixel-centre convention: x_small = (x + 0.5) / k - 0.5  =>  x = k x_small + (k - 1) / 2
        up = np.array([[k, 0, (k - 1) / 2.0], [0, k, (k - 1) / 2.0], [0, 0, 1]], np.float64)
        m = m @ up
    out = cv2.warpAffine(
        src, m, (cfg.size, cfg.size), flags=cv2.INTER_LINEAR, borderMode=BORDER_MODES[cfg.border], borderValue=0
    )
    return out, k
