"""Landmark heatmaps: one Gaussian per landmark, optionally grouped into facial components.

Landmarks are (68, 2) float (x, y) in the ``frame``-pixel crop (128 by
default), pixel centres at integer coordinates.  A heatmap of side S maps a
point by ``x_S = (x + 0.5) * S / frame - 0.5`` and draws
``exp(-((u - x_S)^2 + (v - y_S)^2) / (2 sigma^2))`` with ``sigma`` in pixels
*of the heatmap*, so the peak is 1.0 on the landmark.  A grouped channel is
the pixelwise max of its members' Gaussians, so its peak is also 1.0.

Groupings (0-based iBUG indices, see docs/format.md):

* ``all68``: the 68 points, one channel each.
* ``pu7``: eye corners 36, 39, 42, 45, nose tip 30, mouth corners 48, 54 (public Pro-UIGAN code, 16x16).
* ``pu42``: jaw 0-16, brows 17-26, eye corners, nose bridge 27-30, mouth corners, inner lip 60-64 (public code, 32x32).
* ``fhc4``: FHC's four components: eyes (brows 17-26 + eyes 36-47), nose 27-35, mouth 48-67, chin/jaw 0-16.
* ``parts5``: right eye 36-41, left eye 42-47, nose 27-35, mouth 48-67, jaw 0-16.
"""

from __future__ import annotations

import functools

import numpy as np

R = range
GROUPINGS: dict[str, list[list[int]]] = {
    "all68": [[i] for i in R(68)],
    "pu7": [[i] for i in (36, 39, 42, 45, 30, 48, 54)],
    "pu42": [[i] for i in (*R(0, 17), *R(17, 27), 36, 39, 42, 45, *R(27, 31), 48, 54, *R(60, 65))],
    "fhc4": [[*R(17, 27), *R(36, 48)], list(R(27, 36)), list(R(48, 68)), list(R(0, 17))],
    "parts5": [list(R(36, 42)), list(R(42, 48)), list(R(27, 36)), list(R(48, 68)), list(R(0, 17))],
}


def parse_spec(spec: str) -> tuple[str, int]:
    """``"fhc4@64"`` -> ("fhc4", 64)."""
    try:
        name, size = spec.split("@")
        size = int(size)
    except ValueError as exc:
        raise ValueError(f"heatmap spec must look like 'all68@64', got {spec!r}") from exc
    if name not in GROUPINGS:
        raise ValueError(f"unknown heatmap grouping {name!r}; known: {sorted(GROUPINGS)}")
    if not 4 <= size <= 1024:
        raise ValueError(f"heatmap size out of range: {size}")
    return name, size


def channels(grouping: str) -> int:
    return len(GROUPINGS[grouping])


def _group_plan(grouping: str) -> tuple[np.ndarray, list[tuple[int, int]] | None]:
    """(points the grouping uses, in channel order; [start, end) of each grouped channel or None)."""
    plan = _GROUP_PLANS.get(grouping)
    if plan is None:
        groups = GROUPINGS[grouping]
        order = np.array([p for g in groups for p in g], np.intp)
        bounds = None
        if not all(len(g) == 1 for g in groups):
            ends = np.cumsum([len(g) for g in groups]).tolist()
            bounds = list(zip([0] + ends[:-1], ends))
        plan = _GROUP_PLANS[grouping] = (order, bounds)
    return plan


_GROUP_PLANS: dict = {}


def render(landmarks: np.ndarray, grouping: str, size: int, sigma: float = 1.0, frame: int = 128) -> np.ndarray:
    """(C, size, size) float32 heatmaps in [0, 1] for one face; the reference renderer.

    Separable: each Gaussian is the outer product of a row and a column profile.  The
    profiles of the points the grouping uses are computed in float64 and rounded to
    float32, then multiplied in float32 (and, for grouped channels, maxed over the group).
    Every other renderer here (:func:`render_uint8`, :func:`render_torch`) is defined by
    this one and tested against it.
    """
    order, bounds = _group_plan(grouping)
    pts = (np.asarray(landmarks, np.float64)[order] + 0.5) * (size / frame) - 0.5  # (P, 2)
    axis = np.arange(size, dtype=np.float64)
    prof = np.exp(-((axis[None, None, :] - pts.T[:, :, None]) ** 2) / (2 * sigma**2)).astype(np.float32)
    gx, gy = prof[0], prof[1]
    if bounds is None:
        return np.einsum("pi,pj->pij", gy, gx)  # (P, S, S): rows gy, columns gx
    out = np.empty((len(bounds), size, size), np.float32)
    for c, (a, b) in enumerate(bounds):
        np.max(gy[a:b, :, None] * gx[a:b, None, :], axis=0, out=out[c])
    return out


def to_uint8(heat: np.ndarray) -> np.ndarray:
    """Quantise [0, 1] heatmaps for storage (value * 255, rounded)."""
    return np.clip(np.rint(heat * 255.0), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=None)
def _members(grouping: str) -> tuple[np.ndarray, np.ndarray, int]:
    groups = GROUPINGS[grouping]
    members = np.concatenate([np.asarray(g) for g in groups])
    chan = np.concatenate([np.full(len(g), c) for c, g in enumerate(groups)])
    return members, chan, len(groups)


def render_uint8(landmarks: np.ndarray, grouping: str, size: int, sigma: float = 1.0, frame: int = 128) -> np.ndarray:
    """``to_uint8(render(...))``, bit for bit, at a fraction of the cost: (C, size, size) uint8.

    A Gaussian value below 0.5/255 rounds to 0 once quantised, so each point only needs the
    window where ``exp(-d^2 / 2 sigma^2) >= 0.5/255`` (radius ~3.5 sigma).  Inside it the values are
    the same float32 products as :func:`render`; outside, both give 0 after rounding (a pixel's max
    is either taken inside some window, or every member is below the rounding threshold).  The
    windows are scattered with one ``np.maximum.at`` into a frame padded by the window width, so
    windows that fall off the image need no bounds checks (they land in the padding).
    """
    members, chan, n_chan = _members(grouping)
    p = (np.asarray(landmarks, np.float64)[members] + 0.5) * (size / frame) - 0.5
    radius = sigma * np.sqrt(2.0 * np.log(2.0 * 255.0)) + 1e-9
    width = int(np.floor(2 * radius)) + 2
    padded = size + 2 * width
    # first integer coordinate inside each window, kept inside the padded frame
    start = np.clip(np.floor(p - radius).astype(np.int64) + 1, -width, size)
    xs = start[:, :1] + np.arange(width)
    ys = start[:, 1:2] + np.arange(width)
    gx = np.exp(-((xs - p[:, :1]) ** 2) / (2 * sigma**2)).astype(np.float32)
    gy = np.exp(-((ys - p[:, 1:2]) ** 2) / (2 * sigma**2)).astype(np.float32)
    vals = gy[:, :, None] * gx[:, None, :]  # (M, width, width)
    flat = (chan[:, None, None] * padded + (ys[:, :, None] + width)) * padded + (xs[:, None, :] + width)
    out = np.zeros(n_chan * padded * padded, np.float32)
    np.maximum.at(out, flat.ravel(), vals.ravel())
    return to_uint8(out.reshape(n_chan, padded, padded)[:, width : width + size, width : width + size])


#: The public Pro-UIGAN heatmap set: 7 points at 16x16, 42 at 32x32, 68 at 64x64.
PRO_UIGAN = ("pu7@16", "pu42@32", "all68@64")


def render_torch(landmarks, grouping: str, size: int, sigma: float = 1.0, frame: int = 128):
    """:func:`render` for a batch, in torch on the landmarks' device: (B, C, S, S) float32.

    ``landmarks``: (B, 68, 2) (or one (68, 2) face, giving (C, S, S)) tensor of (x, y) in
    ``frame`` pixels.  Same arithmetic as :func:`render`: float64 point positions and
    Gaussian profiles (only the points the grouping uses), rounded to float32, then float32
    outer products and, for grouped channels, the max over each group's products.  On CPU the
    values equal ``render`` to within 1 float32 ulp (the float64 ``exp`` of two libraries may
    differ in its last bit; tested <= 1e-6).  Use it to render big sets (``all68@64`` is
    1.1 MB/item in float32) on the GPU from the landmarks instead of shipping them.
    """
    import torch

    lm = torch.as_tensor(landmarks)
    one = lm.dim() == 2
    if one:
        lm = lm[None]
    order, bounds = _group_plan(grouping)
    sel = torch.as_tensor(order, device=lm.device)
    pts = (lm.to(torch.float64).index_select(1, sel) + 0.5) * (size / frame) - 0.5  # (B, P, 2)
    d = torch.arange(size, dtype=torch.float64, device=lm.device) - pts[..., None]  # (B, P, 2, S)
    prof = d.square_().neg_().div_(2 * sigma**2).exp_().to(torch.float32)  # = exp(-(d ** 2) / (2 sigma^2))
    gx, gy = prof[:, :, 0], prof[:, :, 1]
    shape = (lm.shape[0], len(order) if bounds is None else len(bounds), size, size)
    if lm.device.type == "cpu":  # numpy's large allocations get huge pages: 4x fewer page-fault costs here
        out = torch.from_numpy(np.empty(shape, np.float32))
    else:
        out = torch.empty(shape, dtype=torch.float32, device=lm.device)
    if bounds is None:
        torch.mul(gy[:, :, :, None], gx[:, :, None, :], out=out)  # rows gy, columns gx
    else:
        for c, (a, b) in enumerate(bounds):
            torch.amax(gy[:, a:b, :, None] * gx[:, a:b, None, :], dim=1, out=out[:, c])
    return out[0] if one else out
