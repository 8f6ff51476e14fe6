"""How good is a model's landmark prior: heatmaps decoded to points, and their error.

* :func:`decode_heatmaps`: the argmax of each channel of (B, C, S, S) heatmaps, mapped to the
  ``frame``-pixel crop (128) by the inverse of the renderer's mapping
  (``occface.faces.heatmaps``: ``x_S = (x + 0.5) * S / frame - 0.5``), so a heatmap rendered
  from a point decodes to that point up to the grid's quantisation.  ``subpixel=True`` moves
  each coordinate a quarter cell toward its higher neighbour (the read-out of FAN and HRNet's
  face-alignment code), which removes about half of that quantisation.
* :func:`nme`: mean point-to-point error of each face / its ground-truth inter-ocular distance
  (outer eye corners 36 and 45), x100 - the convention of the validator's NRMSE.
* :func:`mean_shape`: the mean of a set of aligned faces' landmarks; scoring it as every
  face's prediction gives the baseline any landmark estimator must beat (the faces are
  aligned by a similarity transform, so the mean shape alone is already close).

Everything is numpy (float64); tensors are accepted and copied to the CPU.
"""

from __future__ import annotations

import numpy as np

from ..faces.heatmaps import GROUPINGS

EYE_CORNERS = (36, 45)


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def decode_heatmaps(heatmaps, frame: int = 128, subpixel: bool = False) -> np.ndarray:
    """(B, C, S, S) heatmaps -> (B, C, 2) float64 (x, y) in the ``frame`` crop: the argmax
    pixel of each channel (first one on ties).  ``subpixel``: then each coordinate moves 0.25
    of a cell toward the larger of its two neighbours along that axis (not at the border, nor
    when they are equal)."""
    h = _numpy(heatmaps).astype(np.float64, copy=False)
    if h.ndim != 4 or h.shape[-1] != h.shape[-2]:
        raise ValueError(f"expected (B, C, S, S) heatmaps, got shape {h.shape}")
    b, c, s, _ = h.shape
    flat = h.reshape(b, c, s * s).argmax(axis=2)
    v, u = np.divmod(flat, s)
    pts = np.stack([u, v], axis=-1).astype(np.float64)
    if subpixel and s > 2:
        bi, ci = np.meshgrid(np.arange(b), np.arange(c), indexing="ij")
        ui, vi = np.clip(u, 1, s - 2), np.clip(v, 1, s - 2)
        dx = np.sign(h[bi, ci, v, ui + 1] - h[bi, ci, v, ui - 1]) * ((u > 0) & (u < s - 1))
        dy = np.sign(h[bi, ci, vi + 1, u] - h[bi, ci, vi - 1, u]) * ((v > 0) & (v < s - 1))
        pts += 0.25 * np.stack([dx, dy], axis=-1)
    return (pts + 0.5) * (frame / s) - 0.5


def decodable_points(grouping: str) -> list[int] | None:
    """The landmark index of each channel of ``grouping`` when every channel is one point
    (all68, pu7, pu42), else None (a grouped channel has no single argmax landmark)."""
    groups = GROUPINGS[grouping]
    return [g[0] for g in groups] if all(len(g) == 1 for g in groups) else None


def nme(pred, gt, points=None) -> np.ndarray:
    """(B,) mean point error / inter-ocular distance x100.  ``pred``: (B, P, 2) points;
    ``gt``: (B, 68, 2) ground truth; ``points``: the landmark index of each of ``pred``'s P
    points (default: all 68 in order)."""
    p, g = _numpy(pred).astype(np.float64), _numpy(gt).astype(np.float64)
    if g.ndim == 2:
        g = np.broadcast_to(g, (p.shape[0], *g.shape))
    iod = np.linalg.norm(g[:, EYE_CORNERS[0]] - g[:, EYE_CORNERS[1]], axis=1)
    sel = g if points is None else g[:, list(points)]
    if sel.shape != p.shape:
        raise ValueError(f"prediction shape {p.shape} does not match the ground truth {sel.shape}")
    return np.linalg.norm(p - sel, axis=2).mean(axis=1) / iod * 100.0


def nrmse(pred, gt) -> float:
    """One face: mean point error of ``pred`` (68, 2) / the inter-ocular distance of ``gt``
    (68, 2; outer eye corners), x100 -- :func:`nme` of a batch of one."""
    return float(nme(np.asarray(pred)[None], np.asarray(gt)[None])[0])


def mean_shape(landmarks) -> np.ndarray:
    """(N, 68, 2) landmarks -> their (68, 2) mean."""
    lm = _numpy(landmarks).astype(np.float64)
    if lm.ndim != 3 or lm.shape[0] == 0:
        raise ValueError(f"expected (N, 68, 2) landmarks, got shape {lm.shape}")
    return lm.mean(axis=0)


def heatmap_nme(heatmaps, grouping: str, landmarks, frame: int = 128) -> np.ndarray | None:
    """(B,) NME of the landmarks decoded from (B, C, S, S) heatmaps of ``grouping``, or None
    when the grouping's channels are not single points."""
    points = decodable_points(grouping)
    if points is None:
        return None
    return nme(decode_heatmaps(heatmaps, frame), landmarks, points)
