"""Painting an occluder from its parameters: layers of shapes, generated textures and shading.

An occluder's params hold ``"layers"``, drawn in order with the *over* operator, and one
integer ``"seed"`` for the textures' noise.  :func:`render` is pure: params -> ``(rgb, alpha)``.

A layer::

    {"shapes": [{"poly": [x16, y16, x16, y16, ...]},            # filled polygon
                {"line": [x16, y16, ...], "w": 3, "closed": false}],   # stroke, round caps, w px
     "tex": {"type": "solid", "c": [r, g, b]},                   # see TEXTURES
     "shade": [{"type": "bulge", "k": 0.3, "sigma": 2.0}, ...],  # optional, multiplicative
     "opacity": 0.9, "soft": 0.8}          # soft: Gaussian sigma (px) of the edge; <= 0.5: the anti-aliased edge

Vertices are flat lists of integers in 1/16 px (x, y, x, y, ...; pixel centres at integer
coordinates), drawn anti-aliased
with OpenCV (``shift=4``); colours are 0-255 RGB.  Textures (all generated, nothing is read
from an image set):

=============  ================================================================
``solid``      ``c``
``gradient``   ``c0`` at ``p0`` -> ``c1`` at ``p1`` (pixels), clamped
``fbm``        fractal value noise mixing ``c0`` / ``c1``: ``cell`` [cx, cy] px of the first
               octave, ``octaves``, each half the cell and ``gain`` times the amplitude;
               ``contrast`` stretches it around 0.5
``stripes``    bands of ``c1`` on ``c0``: unit ``dir`` across the bands, ``period`` px,
               ``duty`` (band fraction), ``phase``
``plaid``      ``c0`` crossed by bands of ``c1`` along ``dir`` and of ``c2`` across it
``dots``       discs of ``c1`` (``radius`` px) on ``c0`` on a ``period`` lattice along ``dir``
=============  ================================================================

Any texture may carry ``"grain": a``: fine value noise (2 px cells) multiplying it by 1 +/- a.  Shading:
``light`` (1 + k clamp((p - o) . dir / extent)), ``bulge`` (1 - k (1 - blur(alpha, sigma)),
darkening towards the edges: round things), ``folds`` (1 - k tri((p . dir) / period)).

Only the alpha is computed when no colour is asked for (:func:`render_alpha`, what a mask needs).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SHIFT = 4
ONE = 1 << SHIFT


def to_fixed(points) -> list:
    """Float (x, y) vertices -> the flat list [x16, y16, x16, y16, ...] of integers in 1/16 px."""
    return np.rint(np.asarray(points, np.float64).reshape(-1) * ONE).astype(np.int64).tolist()


def to_fixed_many(points) -> list:
    """(k, n, 2) float vertices -> k flat lists [x16, y16, ...]."""
    pts = np.asarray(points, np.float64)
    return np.rint(pts.reshape(len(pts), -1) * ONE).astype(np.int64).tolist()


# ----------------------------------------------------------------------------- geometry


def _geometry(layer: dict, size: int):
    """A layer's shapes as int32 arrays shifted into their box: (box, polygons, {(width, closed): lines}),
    or None when nothing of it lies inside the image.  One array conversion per layer."""
    shapes = layer["shapes"]
    if not shapes:
        return None
    flat, counts, wmax = [], [], 0
    for sh in shapes:
        pts = sh["poly"] if "poly" in sh else sh["line"]
        flat.extend(pts)
        counts.append(len(pts) // 2)
        if "line" in sh:
            wmax = max(wmax, int(sh["w"]))
    pts = np.array(flat, np.int32).reshape(-1, 2)
    pad = int(math.ceil(3 * float(layer.get("soft", 0.0)))) + 2 + (wmax + 1) // 2
    lo, hi = pts.min(0), pts.max(0)
    x0, y0 = max(0, (int(lo[0]) >> SHIFT) - pad), max(0, (int(lo[1]) >> SHIFT) - pad)
    x1, y1 = min(size, (int(hi[0]) >> SHIFT) + pad + 2), min(size, (int(hi[1]) >> SHIFT) + pad + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    pts -= np.array([x0 * ONE, y0 * ONE], np.int32)
    polys, lines, k = [], {}, 0
    for sh, n in zip(shapes, counts):
        a = pts[k : k + n]
        k += n
        if "poly" in sh:
            polys.append(a)
        else:
            lines.setdefault((max(1, int(sh["w"])), bool(sh.get("closed"))), []).append(a)
    return (x0, y0, x1, y1), polys, lines


def _coverage(geom) -> np.ndarray:
    """Anti-aliased coverage (h, w) float32 in [0, 1] of a layer's shapes inside its box."""
    (x0, y0, x1, y1), polys, lines = geom
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for p in polys:  # one call per polygon: a single call would fill overlaps even-odd (as holes)
        cv2.fillPoly(canvas, [p], 255, cv2.LINE_AA, SHIFT)
    for (w, closed), group in lines.items():  # strokes of one width in one call: their union
        cv2.polylines(canvas, group, closed, 255, w, cv2.LINE_AA, SHIFT)
    return np.multiply(canvas, np.float32(1 / 255), dtype=np.float32)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)


# ----------------------------------------------------------------------------- textures


class _Noise:
    """The occluder's one noise generator, built on first use (masks never need it)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._gen = None

    def random(self, shape):
        if self._gen is None:
            self._gen = np.random.Generator(np.random.PCG64(self.seed))
        return self._gen.random(shape, dtype=np.float32)


def _fbm(noise: _Noise, size: int, box, cell, octaves: int, gain: float) -> np.ndarray:
    """Fractal value noise in [0, 1] over ``box``, lattice anchored at the image origin.

    Built coarse to fine like a pyramid: the sum so far is enlarged (bilinear) to the next
    octave's lattice (half the cell) and that octave's random values (``gain`` times the
    amplitude) are added; one final bilinear enlargement to pixels.
    """
    x0, y0, x1, y1 = box
    acc, amp, norm = None, 1.0, 0.0
    cx, cy = float(cell[0]), float(cell[1])
    for _ in range(int(octaves)):
        shape = (int(math.ceil(size / cy)) + 2, int(math.ceil(size / cx)) + 2)
        lattice = noise.random(shape)
        if acc is None:
            acc = lattice
        else:
            acc = cv2.resize(acc, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
            acc += np.float32(amp) * lattice
        norm += amp
        amp *= gain
        last = (cx, cy)
        cx, cy = max(cx / 2, 1.0), max(cy / 2, 1.0)
    up = cv2.resize(acc, (int(round(acc.shape[1] * last[0])), int(round(acc.shape[0] * last[1]))),
                    interpolation=cv2.INTER_LINEAR)
    return up[y0:y1, x0:x1] * np.float32(1 / norm)


def _grid(box):
    x0, y0, x1, y1 = box
    return np.arange(x0, x1, dtype=np.float32)[None, :], np.arange(y0, y1, dtype=np.float32)[:, None]


def _bands(box, d, period: float, duty: float, phase: float) -> np.ndarray:
    xs, ys = _grid(box)
    s = (xs * np.float32(d[0]) + ys * np.float32(d[1])) * np.float32(1 / period) + np.float32(phase)
    tri = np.abs(2 * (s - np.floor(s)) - 1)  # 0 in the middle of a band, 1 half a period away
    edge = np.float32(max(1.5 / period, 1e-3))
    return np.clip((tri - np.float32(1 - duty)) / edge + 0.5, 0, 1)


def _mix(c0, c1, t: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        out = np.empty((3, *t.shape), np.float32)
    for k in range(3):
        out[k] = np.float32(c0[k]) + np.float32(c1[k] - c0[k]) * t
    return out


def _texture(tex: dict, box, size: int, noise: _Noise) -> np.ndarray:
    """(3, h, w) float32 0..255 of ``tex`` over ``box``."""
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    kind = tex["type"]
    if kind == "solid":
        out = np.empty((3, h, w), np.float32)
        for k in range(3):
            out[k] = tex["c"][k]
    elif kind == "gradient":
        xs, ys = _grid(box)
        (ax, ay), (bx, by) = tex["p0"], tex["p1"]
        dx, dy = bx - ax, by - ay
        l2 = dx * dx + dy * dy or 1.0
        t = np.clip(((xs - ax) * np.float32(dx / l2) + (ys - ay) * np.float32(dy / l2)), 0, 1)
        out = _mix(tex["c0"], tex["c1"], t)
    elif kind == "fbm":
        n = _fbm(noise, size, box, tex["cell"], tex.get("octaves", 3), tex.get("gain", 0.5))
        t = np.clip((n - 0.5) * np.float32(tex.get("contrast", 1.0)) + 0.5, 0, 1)
        out = _mix(tex["c0"], tex["c1"], t)
    elif kind == "stripes":
        out = _mix(tex["c0"], tex["c1"], _bands(box, tex["dir"], tex["period"], tex.get("duty", 0.5), tex.get("phase", 0.0)))
    elif kind == "plaid":
        d = tex["dir"]
        t1 = _bands(box, d, tex["period"], tex.get("duty", 0.3), tex.get("phase", 0.0)) * np.float32(0.75)
        t2 = _bands(box, (-d[1], d[0]), tex["period"], tex.get("duty", 0.3), tex.get("phase", 0.0)) * np.float32(0.6)
        out = _mix(tex["c0"], tex["c1"], t1)
        c2 = np.asarray(tex["c2"], np.float32)
        for k in range(3):
            out[k] += (c2[k] - out[k]) * t2
    elif kind == "dots":
        xs, ys = _grid(box)
        d, p = tex["dir"], float(tex["period"])
        a = (xs * np.float32(d[0]) + ys * np.float32(d[1])) * np.float32(1 / p)
        b = (ys * np.float32(d[0]) - xs * np.float32(d[1])) * np.float32(1 / p)
        fa, fb = a - np.floor(a) - 0.5, b - np.floor(b) - 0.5
        dist = np.sqrt(fa * fa + fb * fb) * np.float32(p)
        out = _mix(tex["c0"], tex["c1"], np.clip(np.float32(tex["radius"]) - dist + 0.5, 0, 1))
    else:
        raise ValueError(f"unknown texture {kind!r}")
    grain = tex.get("grain", 0.0)
    if grain:
        g = _fbm(noise, size, box, (2.0, 2.0), 1, 0.5)
        out *= 1 + np.float32(2 * grain) * (g - 0.5)
    return out


def _shading(shades, box, a_raw: np.ndarray) -> np.ndarray | None:
    factor = None
    for sh in shades:
        kind = sh["type"]
        if kind == "light":
            xs, ys = _grid(box)
            (ox, oy), (dx, dy) = sh["o"], sh["dir"]
            f = 1 + np.float32(sh["k"]) * np.clip(((xs - ox) * np.float32(dx) + (ys - oy) * np.float32(dy))
                                                  * np.float32(1 / sh["extent"]), -1, 1)
        elif kind == "bulge":
            f = 1 - np.float32(sh["k"]) * (1 - np.clip(2 * _blur(a_raw, sh["sigma"]), 0, 1))
        elif kind == "folds":
            xs, ys = _grid(box)
            d = sh["dir"]
            s = (xs * np.float32(d[0]) + ys * np.float32(d[1])) * np.float32(1 / sh["period"])
            f = 1 - np.float32(sh["k"]) * np.abs(2 * (s - np.floor(s)) - 1)
        else:
            raise ValueError(f"unknown shading {kind!r}")
        factor = f if factor is None else factor * f
    return factor


# ----------------------------------------------------------------------------- render


def _prepared(params: dict, size: int):
    """Per drawable layer: (layer, geometry); and the union box of all of them (None if nothing shows)."""
    out = []
    for layer in params["layers"]:
        geom = _geometry(layer, size)
        if geom is not None:
            out.append((layer, geom))
    if not out:
        return out, None
    boxes = np.array([g[0] for _, g in out])
    return out, (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))


def _alpha(layer, geom):
    """(raw anti-aliased coverage, the layer's alpha: softened and times its opacity)."""
    a_raw = _coverage(geom)
    soft = float(layer.get("soft", 0.0))
    a = _blur(a_raw, soft) if soft > 0.5 else a_raw  # up to 0.5 px the anti-aliased edge is soft enough
    op = float(layer.get("opacity", 1.0))
    if op != 1.0:
        a = a * np.float32(op)
    return a_raw, a


def render_alpha(params: dict, size: int = 128) -> np.ndarray:
    """The occluder's alpha alone: (size, size) float32 in [0, 1].  Pure."""
    acc = np.zeros((size, size), np.float32)
    layers, _ = _prepared(params, size)
    for layer, geom in layers:
        x0, y0, x1, y1 = geom[0]
        _, a = _alpha(layer, geom)
        sub = acc[y0:y1, x0:x1]
        sub *= 1 - a
        sub += a
    return acc


def alpha_u8(alpha: np.ndarray) -> np.ndarray:
    return np.rint(alpha * np.float32(255)).astype(np.uint8)


def render(params: dict, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, alpha)``: (size, size, 3) uint8 colour (0 where alpha is 0) and (size, size) uint8
    alpha (255 = opaque) of an occluder's params.  Pure."""
    rgb = np.zeros((size, size, 3), np.uint8)
    alpha = np.zeros((size, size), np.uint8)
    layers, union = _prepared(params, size)
    if union is None:
        return rgb, alpha
    ux0, uy0, ux1, uy1 = union
    noise = _Noise(params.get("seed", 0))
    acc_c = np.zeros((3, uy1 - uy0, ux1 - ux0), np.float32)  # premultiplied colour, planar (fast broadcasting)
    acc_a = np.zeros((uy1 - uy0, ux1 - ux0), np.float32)     # the same arithmetic as render_alpha
    for k, (layer, geom) in enumerate(layers):
        box = x0, y0, x1, y1 = geom[0]
        a_raw, a = _alpha(layer, geom)
        col = _texture(layer["tex"], box, size, noise)
        shade = _shading(layer.get("shade", ()), box, a_raw)
        col *= a if shade is None else shade * a  # one pass over the colour planes
        sub_c = acc_c[:, y0 - uy0 : y1 - uy0, x0 - ux0 : x1 - ux0]
        sub_a = acc_a[y0 - uy0 : y1 - uy0, x0 - ux0 : x1 - ux0]
        if k:  # over what is there
            inv = 1 - a
            sub_c *= inv
            sub_c += col
            sub_a *= inv
            sub_a += a
        else:  # onto nothing: (0 * (1 - a) + x is x, exactly)
            sub_c[...] = col
            sub_a[...] = a
    a8 = alpha_u8(acc_a)
    acc_c /= np.maximum(acc_a, np.float32(1e-6))
    np.rint(acc_c, out=acc_c)
    np.clip(acc_c, 0, 255, out=acc_c)
    col8 = acc_c.astype(np.uint8)
    col8 *= (a8 > 0).view(np.uint8)  # colour 0 where the alpha rounds to 0
    alpha[uy0:uy1, ux0:ux1] = a8
    rgb[uy0:uy1, ux0:ux1] = cv2.merge([col8[0], col8[1], col8[2]])
    return rgb, alpha


def composite(hr: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``hr`` with the occluder painted over it: round((hr (255 - a) + rgb a) / 255), exact integers.

    hr, rgb: (H, W, 3) uint8; alpha: (H, W) uint8.  Writes into ``out`` when given (may be ``hr``'s copy).
    """
    a3 = cv2.merge([alpha, alpha, alpha]).astype(np.uint16)
    x = hr.astype(np.uint16)
    x *= 255 - a3
    y = rgb.astype(np.uint16)
    y *= a3
    x += y
    x += 127
    x //= 255
    if out is None:
        return x.astype(np.uint8)
    np.copyto(out, x, casting="unsafe")
    return out
