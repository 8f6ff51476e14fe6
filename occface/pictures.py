"""Labelled picture grids: every PNG occface writes reads without the terminal.

One layout for the contact sheet, the mask-set grids, the training grids and the validation
grids: a title line, column headers, a label block left of each row, an optional caption
under each cell (a PSNR, a hole ratio), a grey separator line between rows, and a footer
for units and colour keys.  Text is drawn with OpenCV's built-in Hershey font, so a picture
needs no font file and the same inputs give the same pixels.

Images are (H, W, 3) uint8 RGB or (H, W) uint8 greyscale; the result is (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

FONT_SCALE = 0.4
LINE_H = 13          # px per text line at FONT_SCALE
PAD = 4              # px around text blocks
INK = (20, 20, 20)
MUTED = (90, 90, 90)
PAPER = (255, 255, 255)
RULE = (170, 170, 170)  # separator between rows


def _font():
    import cv2

    return cv2.FONT_HERSHEY_SIMPLEX


def text_width(text: str, scale: float = FONT_SCALE) -> int:
    """Width in px of one line of ``text``."""
    import cv2

    return int(cv2.getTextSize(text, _font(), scale, 1)[0][0]) if text else 0


def fit(text: str, width: int, scale: float = FONT_SCALE) -> str:
    """``text`` shortened from the left with '…' (drawn as '...') so it fits ``width`` px; keys keep their tail."""
    if text_width(text, scale) <= width:
        return text
    for k in range(1, len(text)):
        t = "..." + text[k:]
        if text_width(t, scale) <= width:
            return t
    return ""


def wrap(text: str, width: int, scale: float = FONT_SCALE) -> list[str]:
    """Greedy word wrap of ``text`` (``\\n`` starts a new line) to ``width`` px."""
    out = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            cand = word if not line else f"{line} {word}"
            if text_width(cand, scale) <= width or not line:
                line = cand
            else:
                out.append(line)
                line = word
        out.append(line)
    return out


def draw_text(canvas: np.ndarray, text: str, x: int, y: int, color=INK, scale: float = FONT_SCALE) -> None:
    """Draw one line with its top-left corner at (x, y) (in place)."""
    import cv2

    cv2.putText(canvas, text, (int(x), int(y) + LINE_H - 4), _font(), scale, color, 1, cv2.LINE_AA)


def as_rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"a grid cell must be (H, W) or (H, W, 3) uint8, got {img.shape} {img.dtype}")
    return img


def grid(cells: Sequence[Sequence[np.ndarray | None]], *, columns: Sequence[str] | None = None,
         row_labels: Sequence[Sequence[str]] | None = None, captions: Sequence[Sequence[str]] | None = None,
         title: str | None = None, footer: str | None = None, gap: int = 2, label_width: int | None = None,
         separators: bool = True) -> np.ndarray:
    """Lay out ``cells`` (rows of images, ``None`` = left blank) as one labelled RGB picture.

    ``columns``: one header per column (``\\n`` for a second line).  ``row_labels``: lines
    drawn left of each row.  ``captions``: one short text under each cell ("" for none).
    Every column is as wide as its widest cell; cells are centred.  Returns (H, W, 3) uint8.
    """
    rows = [[None if c is None else as_rgb(c) for c in r] for r in cells]
    if not rows:
        raise ValueError("a grid needs at least one row")
    ncol = max(len(r) for r in rows)
    col_w = [max([c.shape[1] for r in rows if j < len(r) and (c := r[j]) is not None] or [0]) for j in range(ncol)]
    row_h = [max([c.shape[0] for c in r if c is not None] or [0]) for r in rows]
    if columns is not None:
        columns = list(columns) + [""] * (ncol - len(columns))
    has_caps = captions is not None and any(any(t for t in r) for r in captions)
    cap_h = LINE_H if has_caps else 0
    if row_labels is not None:
        lw = label_width or min(220, max(text_width(t) for r in row_labels for t in r) + 2 * PAD)
    else:
        lw = 0
    body_w = sum(col_w) + gap * (ncol + 1)
    width = lw + body_w
    title_lines = wrap(title, width - 2 * PAD) if title else []
    head_lines = max((len(h.split("\n")) for h in columns), default=0) if columns is not None else 0
    foot_lines = wrap(footer, width - 2 * PAD) if footer else []
    top = (len(title_lines) * LINE_H + PAD if title_lines else 0) + (head_lines * LINE_H + PAD if head_lines else 0)
    body_h = sum(h + cap_h + gap for h in row_h) + gap
    height = top + body_h + (len(foot_lines) * LINE_H + 2 * PAD if foot_lines else 0)
    canvas = np.full((height, width, 3), PAPER, np.uint8)
    y = PAD // 2
    for t in title_lines:
        draw_text(canvas, t, PAD, y)
        y += LINE_H
    if title_lines:
        y += PAD
    xs, x = [], lw + gap
    for w in col_w:
        xs.append(x)
        x += w + gap
    if head_lines:
        for j, h in enumerate(columns):
            for k, t in enumerate(h.split("\n")):
                t = fit(t, col_w[j] + gap)
                draw_text(canvas, t, xs[j] + (col_w[j] - text_width(t)) // 2, y + k * LINE_H)
        y += head_lines * LINE_H + PAD
    y += gap
    for i, r in enumerate(rows):
        if separators and i:
            canvas[y - gap + (gap - 1) // 2 : y - gap + (gap - 1) // 2 + 1, :] = RULE
        if row_labels is not None and i < len(row_labels):
            for k, t in enumerate(row_labels[i]):
                if (k + 1) * LINE_H > row_h[i] + cap_h:
                    break
                draw_text(canvas, fit(t, lw - 2 * PAD), PAD, y + k * LINE_H, INK if k == 0 else MUTED)
        for j, c in enumerate(r):
            if c is None:
                continue
            h, w = c.shape[:2]
            cx, cy = xs[j] + (col_w[j] - w) // 2, y + (row_h[i] - h) // 2
            canvas[cy : cy + h, cx : cx + w] = c
            if has_caps and i < len(captions) and j < len(captions[i]) and captions[i][j]:
                t = fit(captions[i][j], col_w[j] + gap)
                draw_text(canvas, t, xs[j] + (col_w[j] - text_width(t)) // 2, y + row_h[i])
        y += row_h[i] + cap_h + gap
    if foot_lines:
        y += PAD
        for t in foot_lines:
            draw_text(canvas, t, PAD, y, MUTED)
            y += LINE_H
    return canvas


def write_png(path: str, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB picture as PNG, atomically (folders made as needed)."""
    import cv2

    from .format.atomic import write_bytes_atomic

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(as_rgb(rgb)[..., ::-1]))
    if not ok:
        raise OSError(f"could not encode {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes_atomic(path, buf.tobytes())


def upscale(img: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a square image to ``size`` px (pixels stay visible as blocks)."""
    import cv2

    img = np.asarray(img)
    return img if img.shape[0] == size else cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)


def heat_overlay(face: np.ndarray, heat: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
    """``face`` (S, S, 3) darkened to 60 % with ``heat`` ((h, w) uint8, the max over channels)
    added in red, and ``landmarks`` ((68, 2) px) as green dots: the colours the legends name."""
    import cv2

    S = face.shape[0]
    h = cv2.resize(np.asarray(heat, np.uint8), (S, S), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    out = face.astype(np.float32) * 0.6
    out[..., 0] = out[..., 0] * (1 - h) + 255.0 * h
    out[..., 1] *= 1 - 0.7 * h
    out[..., 2] *= 1 - 0.7 * h
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if landmarks is not None:
        for x, y in np.asarray(landmarks):
            cv2.circle(out, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
    return out


# ----------------------------------------------------------------------------- plots (matplotlib)

def new_figure(width_in: float = 6.4, height_in: float = 3.6, ncols: int = 1):
    """A matplotlib (Figure, axes) pair drawn by the Agg canvas (no GUI backend, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, (axes[0] if ncols == 1 else list(axes))


def figure_png(fig) -> bytes:
    """PNG bytes of a figure (no timestamp in the metadata, so the same figure gives the same bytes)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def save_figure(fig, path: str) -> None:
    from .format.atomic import write_bytes_atomic

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes_atomic(path, figure_png(fig))
