"""Turning loader items and batches into what a model eats: float ranges, tensors, devices.

Normalisation, for the uint8 pixel value ``x``: ``"[0,1]"`` gives ``x * float32(1/255)``,
``"[-1,1]"`` gives ``x * float32(1/127.5) - 1``, in float32 arithmetic (0 -> 0.0 / -1.0 and
255 -> 1.0 exactly).  Masks and heatmaps are always [0, 1].
"""

from __future__ import annotations

import numpy as np

from ..faces import heatmaps as heatmaps_mod
from ..faces.heatmaps import PRO_UIGAN
from ..runtime import move
from .config import IMAGE_KEYS, RANGES

# x -> x * scale (- offset), float32 arithmetic; both ends exact: 0 -> 0.0 / -1.0, 255 -> 1.0.
SCALE = {"[0,1]": (np.float32(1 / 255), None), "[-1,1]": (np.float32(1 / 127.5), np.float32(1))}
UNIT = np.float32(1 / 255)  # heatmaps and masks are always [0, 1]


_CV2 = []


def cv2_module():
    if not _CV2:
        import cv2

        _CV2.append(cv2)
    return _CV2[0]


def image_planes(src: np.ndarray, dtype, scale, offset) -> np.ndarray:
    """(h, w, 3) u8 -> a fresh (3, h, w) array: the u8 planes, or float32 ``x * scale - offset``."""
    h, w = src.shape[:2]
    planes = np.empty((3, h, w), np.uint8)
    (_CV2[0] if _CV2 else cv2_module()).split(src, [planes[0], planes[1], planes[2]])
    if dtype is np.uint8:
        return planes
    out = planes.astype(np.float32)  # per-image passes stay in cache (whole-batch passes were 2x slower)
    out *= scale
    if offset is not None:
        out -= offset
    return out


def to_float(batch, range: str = "[-1,1]", *, device=None, non_blocking: bool = True):  # noqa: A002
    """A ``dtype="uint8"`` item or batch -> the ``dtype="float32"`` one, bit for bit.

    Works on numpy arrays and on torch tensors on any device.  The recommended training path
    ships uint8 batches and converts on the GPU: ``to_float(batch, cfg.range, device="cuda")``
    first moves every tensor with ``.to(device, non_blocking=non_blocking)`` (asynchronous from
    pinned memory, ``DataLoader(pin_memory=True)``), then converts there: 4x less to copy and
    no float pass on the loader's CPU.  Images become ``x * float32(1/255)`` or
    ``x * float32(1/127.5) - 1``; ``mask`` becomes 0.0 / 1.0 and heatmaps ``v * float32(1/255)``
    (equal to reading stored heatmaps in float32 mode).  Torch tensors take one fused
    uint8 -> float32 multiply (plus one in-place subtract for ``[-1,1]``), no host sync.  Arrays
    that are not uint8 (float32 batches, heatmaps rendered on the device) are passed through, so
    calling it twice is harmless; other entries are passed through too.
    """
    if range not in RANGES:
        raise ValueError(f"range must be one of {RANGES}, got {range!r}")
    scale, offset = SCALE[range]
    if device is not None:
        batch = move(batch, device, non_blocking)
    out = dict(batch)
    for k in IMAGE_KEYS:
        if k in out:
            out[k] = _affine(out[k], scale, offset)
    if "mask" in out:
        out["mask"] = _affine(out["mask"], None, None)
    if "heatmaps" in out:
        out["heatmaps"] = {spec: _affine(v, UNIT, None) for spec, v in out["heatmaps"].items()}
    return out


def _affine(x, scale, offset):
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8:
            return x
        y = x.astype(np.float32)
        if scale is not None:
            y *= scale
        if offset is not None:
            y -= offset
        return y
    import torch  # a tensor was passed, so torch is there

    if x.dtype != torch.uint8:
        return x
    if scale is None:
        return x.to(torch.float32)
    y = torch.empty_like(x, dtype=torch.float32)  # same device and strides (channels_last stays so)
    if torch.get_default_dtype() == torch.float32:  # uint8 * python float computes in float32: one pass
        torch.mul(x, float(scale), out=y)
    else:
        y.copy_(x).mul_(float(scale))
    if offset is not None:
        y.sub_(float(offset))
    return y


def add_heatmaps(batch: dict, specs=PRO_UIGAN, sigma: float = 1.0, frame: int = 128) -> dict:
    """``batch`` with ``batch["heatmaps"][spec]`` rendered from ``batch["landmarks"]`` (torch, on their device).

    The device-side half of ``LoaderConfig(heatmaps=())``: ship landmarks, render on the GPU
    (:func:`occface.faces.heatmaps.render_torch`, exact float32 like ``heatmap_source="render"``).  ``sigma``
    in heatmap pixels: pass ``dataset.reader.heatmap_sigma`` for the build's.  Other heatmaps
    already in the batch are kept.  Returns a new dict; the input is not modified.
    """
    if isinstance(specs, str):
        specs = (specs,)
    out = dict(batch)
    heat = dict(out.get("heatmaps") or {})
    for spec in specs:
        grouping, size = heatmaps_mod.parse_spec(spec)
        heat[spec] = heatmaps_mod.render_torch(batch["landmarks"], grouping, size, sigma, frame)
    out["heatmaps"] = heat
    return out


def collate_numpy(items: list[dict]) -> dict:
    """Stack a list of items into a batch (arrays stacked, other values listed)."""
    if not items:
        return {}
    out = {}
    for k, v in items[0].items():
        if isinstance(v, np.ndarray):
            out[k] = np.stack([it[k] for it in items])
        elif isinstance(v, dict):
            out[k] = collate_numpy([it[k] for it in items])
        else:
            out[k] = [it[k] for it in items]
    return out


def as_torch(item: dict) -> dict:
    """Arrays of an item or batch -> tensors sharing their memory (values untouched)."""
    from torch import from_numpy

    out = {}
    for k, v in item.items():
        if type(v) is np.ndarray:
            out[k] = from_numpy(v)
        elif type(v) is dict:
            out[k] = {spec: from_numpy(hm) for spec, hm in v.items()}
        else:
            out[k] = v
    return out
