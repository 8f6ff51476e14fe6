"""Irregular (stroke) masks: PConv-style, ratio-targeted PConv-style, LaMa-style.

Pure helpers behind :mod:`occface.masks`; use that module's specs and
``sample_params`` / ``render``.  Convention: 1 = missing.

Determinism: every random number comes from the ``numpy.random.Generator``
passed in, as integers (or, for LaMa lengths, integer draws scaled by a
rational factor); geometry is integer or uses only IEEE-exact operations
(+, -, *, /, sqrt, rint) and OpenCV's integer drawing, so parameters and
rasters are identical on every machine with the same OpenCV drawing code.
No ``sin``/``cos`` from a maths library is evaluated at run time (LaMa's few
stroke directions come from a literal table).

Stroke params (all ints, coordinates in the full ``size`` frame, pixel centres
at integer positions) are rendered in this order onto a canvas that excludes
a ``margin``-px frame (so nothing is ever drawn there):

* ``lines``   ``[x1, y1, x2, y2, t]``   ``cv2.line``, thickness t
* ``circles`` ``[x, y, r]``             ``cv2.circle``, filled
* ``arcs``    ``[x, y, ax, ay, rot, a0, a1, t]``  ``cv2.ellipse2Poly`` (degrees,
  step :func:`arc_step`) drawn as an open polyline of thickness t
* ``dots``    ``[x, y]``                one pixel
* ``boxes``   ``[x0, y0, x1, y1]``      ``mask[y0:y1, x0:x1] = 1`` (LaMa)

All primitives are set to 1, so the mask is their union and the order does not matter.
"""

from __future__ import annotations

import cv2
import numpy as np

# PConv hole-area-ratio buckets in hundredths: bucket k (1..6) is (E[k-1], E[k]] / 100.
BUCKET_EDGES = (1, 10, 20, 30, 40, 50, 60)
N_BUCKETS = len(BUCKET_EDGES) - 1


def border_margin(size: int) -> int:
    """Width of the hole-free frame of border-constrained masks: size // 16 (8 px at 128)."""
    return size // 16


def bucket_counts(bucket: int, size: int) -> tuple[int, int]:
    """Inclusive (min, max) number of hole pixels of a ``size``x``size`` mask in PConv bucket 1..6.

    A mask with c hole pixels out of n = size^2 is in bucket k iff
    100 c > E[k-1] n and 100 c <= E[k] n (exact integer arithmetic, no float edges).
    """
    if not 1 <= bucket <= N_BUCKETS:
        raise ValueError(f"bucket must be in 1..{N_BUCKETS}, got {bucket!r}")
    n = size * size
    return BUCKET_EDGES[bucket - 1] * n // 100 + 1, BUCKET_EDGES[bucket] * n // 100


def bucket_of_count(count: int, n: int) -> int:
    """PConv bucket (1..6) of a mask with ``count`` hole pixels out of ``n``; 0 if ratio <= 0.01, 7 if > 0.6."""
    if 100 * count <= BUCKET_EDGES[0] * n:
        return 0
    for k in range(1, N_BUCKETS + 1):
        if 100 * count <= BUCKET_EDGES[k] * n:
            return k
    return N_BUCKETS + 1


def pconv_width(size: int) -> int:
    """Largest stroke width / circle radius of PConv-style masks: int(0.03 (W + H)), at least 3 (7 at 128)."""
    return max(3, int(0.06 * size))


def arc_step(ax: int, ay: int) -> int:
    """Angular step (degrees) used to polygonise an arc: 30 for small arcs, 15 otherwise."""
    return 30 if max(ax, ay) < 16 else 15


# ----------------------------------------------------------------------------- rendering


def render_strokes(params: dict, size: int) -> np.ndarray:
    """Pure renderer of every stroke kind (see module docstring)."""
    m = int(params.get("margin", 0))
    inner = size - 2 * m
    canvas = np.zeros((inner, inner), np.uint8)
    _draw_all(canvas, params, m)
    if not m:
        return canvas
    out = np.zeros((size, size), np.uint8)
    out[m : size - m, m : size - m] = canvas
    return out


def _draw_all(canvas, params, m):
    line, circle, poly, e2p = cv2.line, cv2.circle, cv2.polylines, cv2.ellipse2Poly
    groups: dict[int, list] = {}
    if m:
        for x1, y1, x2, y2, t in params.get("lines", ()):
            line(canvas, (x1 - m, y1 - m), (x2 - m, y2 - m), 1, t)
        for x, y, r in params.get("circles", ()):
            circle(canvas, (x - m, y - m), r, 1, -1)
        for x, y, ax, ay, rot, a0, a1, t in params.get("arcs", ()):
            step = 15 if ax >= 16 or ay >= 16 else 30  # arc_step
            groups.setdefault(t, []).append(e2p((x - m, y - m), (ax, ay), rot, a0, a1, step))
    else:
        for x1, y1, x2, y2, t in params.get("lines", ()):
            line(canvas, (x1, y1), (x2, y2), 1, t)
        for x, y, r in params.get("circles", ()):
            circle(canvas, (x, y), r, 1, -1)
        for x, y, ax, ay, rot, a0, a1, t in params.get("arcs", ()):
            groups.setdefault(t, []).append(e2p((x, y), (ax, ay), rot, a0, a1, 15 if ax >= 16 or ay >= 16 else 30))
    for t, pts in groups.items():
        poly(canvas, pts, False, 1, t)
    for x, y in params.get("dots", ()):
        canvas[y - m, x - m] = 1
    for x0, y0, x1, y1 in params.get("boxes", ()):
        canvas[max(0, y0 - m) : max(0, y1 - m), max(0, x0 - m) : max(0, x1 - m)] = 1


# ----------------------------------------------------------------------------- PConv-style


def uniform_ints(rng: np.random.Generator, low, span, shape) -> np.ndarray:
    """Integers ``low + floor(u * span)`` (u = ``rng.random``), i.e. uniform on [low, low + span).

    One vectorised draw of doubles (much cheaper than ``rng.integers`` with
    per-column bounds); ``u * span`` is a single IEEE multiply, so the result is
    the same on every platform, and since u <= 1 - 2^-53 it rounds below
    ``span`` for any span < 2^53.  ``low`` and ``span`` broadcast against ``shape``.
    """
    return (rng.random(shape) * span).astype(np.int64) + low


def _pconv_table(size: int, m: int):
    """(low, span) per column for the 61x8 block of :func:`sample_pconv`."""
    lo, n = m, size - 2 * m
    w = pconv_width(size) - 2  # widths / radii 3..pconv_width
    low = np.zeros((61, 8), np.int64)
    span = np.ones((61, 8), np.int64)
    low[0:20, :5], span[0:20, :5] = (lo, lo, lo, lo, 3), (n, n, n, n, w)
    low[20:40, :3], span[20:40, :3] = (lo, lo, 3), (n, n, w)
    low[40:60], span[40:60] = (lo, lo, 1, 1, 3, 3, 3, 3), (n, n, size, size, 178, 178, 178, w)
    low[60, :3], span[60, :3] = 1, 20
    return low, span


_TABLES: dict = {}


def sample_pconv(rng: np.random.Generator, size: int, border: bool) -> dict:
    """PConv-Keras-like recipe at ``size``: 1-20 lines, 1-20 filled circles, 1-20 elliptical arcs.

    Widths and radii 3..:func:`pconv_width`; arc half-axes 1..size; arc rotation,
    start and end angles 3..180 degrees.  Positions are uniform over the canvas
    (the interior when ``border``).  Every call consumes one 61x8 block of
    doubles from ``rng`` (20 candidate rows per primitive type + the 3 counts).
    """
    m = border_margin(size) if border else 0
    key = (size, m)
    if key not in _TABLES:
        _TABLES[key] = _pconv_table(size, m)
    low, span = _TABLES[key]
    v = uniform_ints(rng, low, span, (61, 8))
    nl, nc, na = v[60, :3].tolist()
    return {
        "kind": "pconv",
        "margin": m,
        "lines": v[0:nl, :5].tolist(),
        "circles": v[20 : 20 + nc, :3].tolist(),
        "arcs": v[40 : 40 + na].tolist(),
    }


MAX_SHRINK = 4
MAX_CANDIDATES = 20000


def bucket_width(size: int, bucket: int, border: bool) -> int:
    """Largest stroke width / circle radius for ratio-targeted masks of ``bucket``.

    ``max(w, w * (bucket + border) // 3)`` with w = :func:`pconv_width`: at 128 px
    7, 7, 7, 9, 11, 14 for buckets 1-6 (7, 7, 9, 11, 14, 16 with the border,
    whose smaller canvas must be covered more densely), so large holes are
    made of fewer, fatter strokes rather than ever more thin ones.
    """
    w = pconv_width(size)
    return max(w, w * (bucket + border) // 3)


def _bucket_table(size: int, m: int, bucket: int):
    """(low, span) of the 12 candidate columns: type, x, y, x2, y2, ax, ay, rot, a0, a1, t, r."""
    n, w = size - 2 * m, bucket_width(size, bucket, m > 0) - 2
    low = np.array((0, m, m, m, m, 1, 1, 3, 3, 3, 3, 3), np.int64)
    span = np.array((3, n, n, n, n, size, size, 178, 178, 178, w, w), np.int64)
    return low, span


def _shrunk(row: list, s: int) -> list:
    """Candidate ``row`` shrunk by 2^s; type 3 (a single pixel at its anchor) once s >= MAX_SHRINK."""
    typ, x, y, x2, y2, ax, ay, rot, a0, a1, t, r = row
    if s >= MAX_SHRINK:
        return [3, x, y, x2, y2, ax, ay, rot, a0, a1, t, r]
    return [
        typ, x, y, x + ((x2 - x) >> s), y + ((y2 - y) >> s), max(1, ax >> s), max(1, ay >> s),
        rot, a0, a1, max(1, t >> s), max(1, r >> s),
    ]


def sample_pconv_bucket(rng: np.random.Generator, size: int, bucket: int, border: bool) -> tuple[dict, np.ndarray]:
    """Ratio-targeted PConv-style mask; returns (params, rendered mask).

    1. Draw a target hole count uniformly in the bucket's pixel range
       (one ``rng.random()`` double u: lo + floor(u (hi - lo + 1))).
    2. Go through candidate primitives (line / circle / arc, equally likely,
       PConv ranges but widths and radii up to :func:`bucket_width`, drawn from
       ``rng`` in blocks of 16 (bucket 1) or 40 rows of 12 doubles): add each
       one and count the holes.
    3. If a candidate would push the count above the bucket's upper edge, it is
       dropped and the next candidate is shrunk by 2^s (s = 1, 2, ... after
       consecutive drops; line lengths, half-axes, radii and widths halved);
       after :data:`MAX_SHRINK` drops candidates become single pixels, which
       always fit.  A successful add resets s to 0.
    4. Stop as soon as the count reaches the target.  The count is then in
       [target, upper edge], i.e. inside the bucket, every time.  (A safety net,
       never reached in practice, fills the first free pixels in raster order
       after :data:`MAX_CANDIDATES` candidates.)

    With ``border`` the canvas excludes a :func:`border_margin` frame.  For
    speed, runs of candidates are drawn in chunks and counted once; a chunk
    that reaches the target is undone and retried in halves.  A chunk is only
    kept when it cannot have changed any of the decisions above, so the result
    is exactly that of the one-at-a-time procedure.
    """
    lo_cnt, hi_cnt = bucket_counts(bucket, size)
    m = border_margin(size) if border else 0
    inner = size - 2 * m
    area = inner * inner
    if lo_cnt > area:
        raise ValueError(f"bucket {bucket} cannot be reached on a {size}px mask with margin {m}")
    hi_cnt = min(hi_cnt, area)
    target = lo_cnt + int(rng.random() * (hi_cnt - lo_cnt + 1))
    key = ("bucket", size, m, bucket)
    if key not in _TABLES:
        _TABLES[key] = _bucket_table(size, m, bucket)
    low, span = _TABLES[key]
    batch = 16 if bucket == 1 else 40  # roughly the candidates a mask of the bucket uses

    canvas = np.zeros((inner, inner), np.uint8)
    backup = np.zeros_like(canvas)
    line, circle, poly, e2p, count = cv2.line, cv2.circle, cv2.polylines, cv2.ellipse2Poly, cv2.countNonZero
    copyto = np.copyto
    rows: list = uniform_ints(rng, low, span, (batch, 12)).tolist()
    kept: list = []
    pos = 0  # candidates consumed
    c = 0

    # Phase 1: chunks, sized from a coverage estimate (IEEE + - * / only, so the
    # same everywhere; the sizes affect speed only, never the result).
    cap = 1 << 30  # halved after every undone chunk
    while True:
        f, ft = c / area, target / area
        per = c / (len(kept) * (1.0 - 0.5 * f)) if c else 0.025 * area
        k = min(cap, int(0.5 * (target - c) / (per * (1.0 - 0.5 * (f + ft)) + 1.0)))
        if k < 2:
            break
        while len(rows) < pos + k:
            rows.extend(uniform_ints(rng, low, span, (batch, 12)).tolist())
        chunk = rows[pos : pos + k]
        copyto(backup, canvas)
        for typ, x, y, x2, y2, ax, ay, rot, a0, a1, t, r in chunk:
            if typ == 0:
                line(canvas, (x - m, y - m), (x2 - m, y2 - m), 1, t)
            elif typ == 1:
                circle(canvas, (x - m, y - m), r, 1, -1)
            else:
                step = 15 if ax >= 16 or ay >= 16 else 30  # arc_step
                poly(canvas, [e2p((x - m, y - m), (ax, ay), rot, a0, a1, step)], False, 1, t)
        c2 = count(canvas)
        if c2 < target:  # no decision of the one-at-a-time procedure can differ
            kept.extend(chunk)
            c, pos = c2, pos + k
        else:
            canvas, backup = backup, canvas
            cap = k // 2

    # Phase 2: one candidate at a time.
    shrink = 0
    while c < target:
        if pos >= MAX_CANDIDATES:  # safety net; not reached in practice
            free = np.flatnonzero(canvas.ravel() == 0)[: target - c]
            kept.extend([3, i % inner + m, i // inner + m] + [0] * 9 for i in free.tolist())
            canvas.ravel()[free] = 1
            c = count(canvas)
            break
        if pos >= len(rows):
            rows.extend(uniform_ints(rng, low, span, (batch, 12)).tolist())
        row = _shrunk(rows[pos], shrink) if shrink else rows[pos]
        pos += 1
        typ, x, y, x2, y2, ax, ay, rot, a0, a1, t, r = row
        copyto(backup, canvas)
        if typ == 0:
            line(canvas, (x - m, y - m), (x2 - m, y2 - m), 1, t)
        elif typ == 1:
            circle(canvas, (x - m, y - m), r, 1, -1)
        elif typ == 2:
            step = 15 if ax >= 16 or ay >= 16 else 30  # arc_step
            poly(canvas, [e2p((x - m, y - m), (ax, ay), rot, a0, a1, step)], False, 1, t)
        else:
            canvas[y - m, x - m] = 1
        c2 = count(canvas)
        if c2 > hi_cnt:
            canvas, backup = backup, canvas
            shrink += 1
            continue
        shrink = 0
        kept.append(row)
        c = c2
    out: tuple = ([], [], [], [])  # lines, circles, arcs, dots
    for typ, x, y, x2, y2, ax, ay, rot, a0, a1, t, r in kept:
        if typ == 0:
            out[0].append([x, y, x2, y2, t])
        elif typ == 1:
            out[1].append([x, y, r])
        elif typ == 2:
            out[2].append([x, y, ax, ay, rot, a0, a1, t])
        else:
            out[3].append([x, y])
    params = {"kind": "pconv_bucket", "bucket": bucket, "margin": m, "lines": out[0], "circles": out[1], "arcs": out[2]}
    if out[3]:
        params["dots"] = out[3]
    if m:
        full = np.zeros((size, size), np.uint8)
        full[m : size - m, m : size - m] = canvas
        canvas = full
    return params, canvas


# ----------------------------------------------------------------------------- LaMa-style

# Presets at 256 px (LaMa, WACV 2022); lengths and widths are scaled by size / 256.
LAMA_PRESETS = {
    "thin": dict(strokes=(4, 50), max_angle=4, max_len=40, max_width=10, boxes=(0, 0), box_side=(0, 0), box_margin=0),
    "medium": dict(strokes=(4, 5), max_angle=4, max_len=100, max_width=50, boxes=(1, 5), box_side=(10, 50), box_margin=0),
    "thick": dict(strokes=(1, 5), max_angle=4, max_len=200, max_width=100, boxes=(1, 3), box_side=(30, 150), box_margin=10),
}
LAMA_MAX_RATIO = 0.5
LAMA_TRIES = 16

# cos / sin of (0.01 + k) rad, k = 0..3, as literals (no libm at run time).
_LAMA_COS = (0.9999500004166653, 0.5318607213743555, -0.4252188520981522, -0.9913541739488259)
_LAMA_SIN = (0.009999833334166664, 0.8468318446180152, 0.905090563325201, 0.13121319215018423)


def _scale(v: int, size: int) -> int:
    """A length given at 256 px, scaled to ``size`` and rounded half up (integer arithmetic)."""
    return (2 * v * size + 256) // 512


def _lama_draw(rng: np.random.Generator, size: int, p: dict) -> tuple[list, list]:
    n = int(rng.integers(p["strokes"][0], p["strokes"][1] + 1))
    starts = rng.integers(0, size, size=(n, 2)).tolist()
    nverts = rng.integers(1, 6, size=n).tolist()
    verts = rng.integers(0, (p["max_angle"], p["max_len"], p["max_width"]), size=(n, 5, 3)).tolist()
    lines = []
    hi = size - 1
    for i in range(n):
        x, y = starts[i]
        for k, ln, wd in verts[i][: nverts[i]]:
            length = _scale(10 + ln, size)
            width = max(1, _scale(5 + wd, size))
            dy = _LAMA_SIN[k] if i % 2 else -_LAMA_SIN[k]  # alternate strokes mirror the angle
            x2 = min(hi, max(0, x + round(length * _LAMA_COS[k])))
            y2 = min(hi, max(0, y + round(length * dy)))
            lines.append([x, y, x2, y2, width])
            x, y = x2, y2
    boxes = []
    nb = int(rng.integers(p["boxes"][0], p["boxes"][1] + 1)) if p["boxes"][1] else 0
    if nb:
        mg = _scale(p["box_margin"], size)
        wh = [max(1, _scale(v, size)) for v in rng.integers(p["box_side"][0], p["box_side"][1], size=2 * nb).tolist()]
        wh = [min(v, size - 2 * mg) for v in wh]
        pos = rng.integers(mg, [size - mg - v + 1 for v in wh]).tolist()
        for j in range(nb):
            w, h, x0, y0 = wh[2 * j], wh[2 * j + 1], pos[2 * j], pos[2 * j + 1]
            boxes.append([x0, y0, x0 + w, y0 + h])
    return lines, boxes


def sample_lama(rng: np.random.Generator, size: int, preset: str) -> tuple[dict, np.ndarray]:
    """LaMa-style strokes (+ boxes for medium/thick); returns (params, rendered mask).

    n strokes; each starts at a uniform pixel and has 1-5 segments; segment
    angle 0.01 + U{0..max_angle-1} rad (mirrored, 2 pi - angle, on alternate
    strokes), length 10 + U{0..max_len-1} and width 5 + U{0..max_width-1}, at
    256 px, scaled by size/256; end points clipped to the image.  Boxes: sides
    U[min, max) at 256 px (scaled), placed uniformly inside a margin.  Masks
    covering more than :data:`LAMA_MAX_RATIO` of the image are redrawn (up to
    :data:`LAMA_TRIES` times; then trailing boxes and segments are dropped from
    the last draw until it fits), so 0 < ratio <= 0.5 always.
    """
    if preset not in LAMA_PRESETS:
        raise ValueError(f"LaMa preset must be one of {sorted(LAMA_PRESETS)}, got {preset!r}")
    p = LAMA_PRESETS[preset]
    limit = int(LAMA_MAX_RATIO * size * size)
    for _ in range(LAMA_TRIES):
        lines, boxes = _lama_draw(rng, size, p)
        params = {"kind": "lama", "preset": preset, "lines": lines, "boxes": boxes}
        mask = render_strokes(params, size)
        if cv2.countNonZero(mask) <= limit:
            return params, mask
    while cv2.countNonZero(mask) > limit:  # deterministic repair of the last draw
        if boxes:
            boxes.pop()
        else:
            lines.pop()
        mask = render_strokes(params, size)
    return params, mask
