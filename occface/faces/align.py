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

Padding (``AlignConfig.padding``): where the crop reaches past the photo (a
tight crop, a face near the edge), the missing pixels are filled by

* ``reflect`` (default): mirror copies (OpenCV ``BORDER_REFLECT_101``);
* ``reflect-blur``: the mirror copies blurred and faded to the photo's median
  colour, after FFHQ's alignment, so the padding holds no sharp ghost faces;
* ``edge``: the photo's edge pixels repeated (``BORDER_REPLICATE``);
* ``constant``: black (0).

A crop pixel is *padding* when its bilinear footprint reaches outside the
photo: its source point ``(u, v)`` (the warp's inverse map of the pixel
centre, in the pixels the bilinear step reads) lies outside
``[0, W - 1] x [0, H - 1]``.  Only padding pixels differ between the modes
(:func:`padding_mask`; ``meta/pad_fraction`` records their share of the crop):
every mode starts from the ``reflect`` warp and rewrites only its padding pixels.

``reflect-blur`` recipe, in crop pixels (S = crop side, d = the source point's
distance outside the photo rectangle times the warp's scale, i.e. in crop
pixels): starting from the ``reflect`` crop R, its Gaussian blur B (sigma
``0.02 S``, 2.56 px at 128, OpenCV ``GaussianBlur``, reflect-101 at the crop's
own edges) and the per-channel median colour M of the crop's non-padding
pixels, each padding pixel becomes
``P = R + (B - R) * clip(d / sigma, 0, 1)`` and then
``P + (M - P) * clip(d / (0.3 S), 0, 1)``, rounded to uint8: sharp at the
photo's edge, fully blurred one sigma out, the flat median colour from
``0.3 S`` (38 px at 128) out.  Non-padding pixels are left as ``reflect``
made them, byte for byte.
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

#: padding mode -> the OpenCV border mode of the warp (reflect-blur starts from the reflect warp)
PADDING_MODES = {"reflect": cv2.BORDER_REFLECT_101, "reflect-blur": cv2.BORDER_REFLECT_101,
                 "edge": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
BLUR_SIGMA = 0.02  # reflect-blur: Gaussian sigma, fraction of the crop side
FADE_DISTANCE = 0.3  # reflect-blur: distance outside the photo (fraction of the crop side) at which the fill is flat


@dataclass(frozen=True)
class AlignConfig:
    template: str = "occface-5pt-v1"
    margin: float = 0.2
    size: int = 128
    padding: str = "reflect"

    def __post_init__(self):
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown template {self.template!r}; known: {sorted(TEMPLATES)}")
        if self.padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {', '.join(PADDING_MODES)}, got {self.padding!r}")
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


def _prefilter(m: np.ndarray, shape: tuple[int, ...]) -> tuple[int, np.ndarray, tuple[int, int]]:
    """(prefilter factor k, the matrix of the bilinear step, (h, w) of the image it reads)."""
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    k = int(0.5 / scale) if scale < 0.5 else 1
    h, w = shape[:2]
    if k == 1:
        return 1, m, (h, w)
    # pixel-centre convention: x_small = (x + 0.5) / k - 0.5  =>  x = k x_small + (k - 1) / 2
    up = np.array([[k, 0, (k - 1) / 2.0], [0, k, (k - 1) / 2.0], [0, 0, 1]], np.float64)
    return k, m @ up, (max(1, h // k), max(1, w // k))


def _crop_sources(m: np.ndarray, src_shape: tuple[int, ...], size: int):
    """``(u, v)``, each (size, size) float64: the source point of every crop pixel under the warp ``m``
    (source -> crop); None when the whole crop lies inside ``[0, W - 1] x [0, H - 1]`` (the common case,
    decided from its four corners: the crop maps to a parallelogram, inside the rectangle exactly when
    its corners are)."""
    inv = cv2.invertAffineTransform(m)
    h, w = src_shape[:2]
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    cu = corners @ inv[:, :2].T + inv[:, 2]
    if (cu[:, 0] >= 0).all() and (cu[:, 0] <= w - 1).all() and (cu[:, 1] >= 0).all() and (cu[:, 1] <= h - 1).all():
        return None
    xs = np.arange(size, dtype=np.float64)
    u = inv[0, 0] * xs[None, :] + (inv[0, 1] * xs[:, None] + inv[0, 2])
    v = inv[1, 0] * xs[None, :] + (inv[1, 1] * xs[:, None] + inv[1, 2])
    return u, v


def outside_distance(m: np.ndarray, src_shape: tuple[int, ...], size: int) -> np.ndarray | None:
    """(size, size) float64: how far outside ``[0, W - 1] x [0, H - 1]`` each crop pixel's source point lies,
    in source pixels (0 inside), for the warp ``m`` (source -> crop) of an image of ``src_shape``; None when
    the whole crop lies inside."""
    uv = _crop_sources(m, src_shape, size)
    if uv is None:
        return None
    u, v = uv
    h, w = src_shape[:2]
    du = np.maximum(np.maximum(-u, u - (w - 1)), 0.0)
    dv = np.maximum(np.maximum(-v, v - (h - 1)), 0.0)
    return np.hypot(du, dv)


def outside_mask(m: np.ndarray, src_shape: tuple[int, ...], size: int) -> np.ndarray | None:
    """(size, size) bool: ``outside_distance(...) > 0``, without the distances (a fifth of the cost);
    None when the whole crop lies inside."""
    uv = _crop_sources(m, src_shape, size)
    if uv is None:
        return None
    u, v = uv
    h, w = src_shape[:2]
    return (u < 0) | (u > w - 1) | (v < 0) | (v > h - 1)


def padding_mask(rgb_shape: tuple[int, ...], m: np.ndarray, cfg: AlignConfig) -> np.ndarray:
    """(size, size) bool: the crop pixels whose bilinear footprint reaches outside the photo (see the module
    doc), for the photo shape ``rgb_shape`` and alignment matrix ``m`` (as passed to :func:`warp`)."""
    _, m_eff, shape = _prefilter(m, rgb_shape)
    pad = outside_mask(m_eff, shape, cfg.size)
    return np.zeros((cfg.size, cfg.size), bool) if pad is None else pad


def percentiles_of_ints(values: np.ndarray, qs, div: float) -> list[float]:
    """``np.percentile(values / div, qs)`` (method "linear"), bit for bit, for non-negative integer
    ``values`` (1-D), read from their histogram: ~10x faster than sorting a crop's pixels."""
    n = values.size
    cum = np.cumsum(np.bincount(values))
    out = []
    for q in qs:
        idx = (np.float64(q) / 100.0) * (n - 1)  # numpy's virtual index, gamma and lerp, term for term
        below = np.floor(idx)
        gamma = idx - below
        k = int(below)
        a = np.searchsorted(cum, k, side="right") / div  # the k-th smallest value (0-based)
        b = np.searchsorted(cum, min(k + 1, n - 1), side="right") / div
        d = b - a
        out.append(float(b - d * (1 - gamma)) if gamma >= 0.5 else float(a + d * gamma))
    return out


def median_u8(values: np.ndarray) -> np.ndarray:
    """Per-channel median of (n, C) uint8 values, equal to ``np.median(values, axis=0)`` (the mean of the
    two middle values when n is even), from histograms (:func:`percentiles_of_ints`)."""
    return np.array([percentiles_of_ints(values[:, c], (50.0,), 1.0)[0] for c in range(values.shape[1])],
                    np.float64)


def _blur_padding(out: np.ndarray, d_crop: np.ndarray, pad: np.ndarray, size: int) -> None:
    """The reflect-blur recipe (module doc), in place on the padding pixels of the reflect crop ``out``."""
    sigma = BLUR_SIGMA * size
    base = out.astype(np.float32)
    blur = cv2.GaussianBlur(base, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    inside = ~pad
    median = median_u8(out[inside] if inside.any() else out.reshape(-1, out.shape[2])).astype(np.float32)
    dp = d_crop[pad].astype(np.float32)[:, None]
    p = base[pad]
    p = p + (blur[pad] - p) * np.clip(dp / sigma, 0.0, 1.0)
    p = p + (median[None, :] - p) * np.clip(dp / (FADE_DISTANCE * size), 0.0, 1.0)
    out[pad] = np.clip(np.rint(p), 0, 255).astype(np.uint8)


def align_crop(rgb: np.ndarray, m: np.ndarray, cfg: AlignConfig) -> tuple[np.ndarray, int, float]:
    """Warp the photo into the ``cfg.size`` crop with the configured padding.

    Returns ((size, size, 3) uint8, prefilter factor k, padding fraction of the crop in [0, 1]).
    """
    k, m_eff, (h, w) = _prefilter(m, rgb.shape)
    src = rgb if k == 1 else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    out = cv2.warpAffine(src, m_eff, (cfg.size, cfg.size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    if cfg.padding != "reflect-blur":
        pad = outside_mask(m_eff, src.shape, cfg.size)
        if pad is None:
            return out, k, 0.0
        if cfg.padding != "reflect" and pad.any():
            # The fill is taken from a second warp but only where the padding is: OpenCV reads the source
            # at 1/32-pixel fixed-point positions, so a pixel whose exact source point lies just inside the
            # photo may still weigh a border pixel by 1/32; copying only the padding keeps every other pixel
            # the reflect warp's, byte for byte, in every mode.
            fill = cv2.warpAffine(src, m_eff, (cfg.size, cfg.size), flags=cv2.INTER_LINEAR,
                                  borderMode=PADDING_MODES[cfg.padding], borderValue=0)
            out[pad] = fill[pad]
        return out, k, float(pad.mean())
    d = outside_distance(m_eff, src.shape, cfg.size)
    if d is None:
        return out, k, 0.0
    pad = d > 0
    if pad.any():
        scale = float(np.sqrt(abs(np.linalg.det(m_eff[:, :2]))))  # crop pixels per source pixel read
        _blur_padding(out, d * scale, pad, cfg.size)
    return out, k, float(pad.mean())


def warp(rgb: np.ndarray, m: np.ndarray, cfg: AlignConfig) -> tuple[np.ndarray, int]:
    """Warp the photo into the ``cfg.size`` crop with bilinear interpolation.

    Returns ((size, size, 3) uint8, prefilter factor k).  When the transform
    shrinks by more than 2x, the photo is first area-reduced by the integer
    factor k = floor(0.5 / scale) so the final bilinear warp scales by >= 0.5.
    """
    out, k, _ = align_crop(rgb, m, cfg)
    return out, k
