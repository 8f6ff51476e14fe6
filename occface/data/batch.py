"""Batches in one buffer: where each field lives, and filling it straight from the shards' mmaps.

A batch is one flat byte buffer (one allocation; one shared-memory segment when made in a
DataLoader worker) laid out by :func:`batch_layout`.  :func:`fill_batch` fills it in four
phases:

1. *views*: the batch's arrays as views of the buffer (channels-last images as (B, 3, h, w)
   views of (B, h, w, 3) storage);
2. *plan*: which shard datasets are copied into which uint8 targets, and how (plain row
   copies, ``cv2.split`` into planes, or an (h, w, 3) scratch transposed once per batch);
3. *per shard*, in row order (locality in the maps and the page cache): landmarks, the
   planned copies, re-drawn masks, and heatmaps (stored or rendered);
4. *finish*: transposes, float conversion, and the per-item metadata.

The result equals stacking the items of :meth:`ShardReader.get_item` (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..faces import heatmaps as heatmaps_mod
from .convert import SCALE, UNIT, cv2_module

# contiguous HR images: cv2.split per row; LR: row copies + one transpose (measured)
_SPLIT_MIN_BYTES = 4096


def batch_layout(reader, batch_size: int) -> tuple[list, int]:
    """Where each field of a batch of ``batch_size`` lives in one flat byte buffer.

    Returns ``([(name, spec, shape, dtype, offset, channels_last), ...], total_bytes)``:
    ``spec`` is the heatmap spec for ``name == "heatmaps"`` (else ``None``), ``shape`` the
    batch array's shape; ``channels_last`` images are stored (B, h, w, 3) and shown as
    (B, 3, h, w) views.  Offsets are 64-byte aligned.  ``index`` (int64) and
    ``hole_ratio`` (float64) are in the buffer too, so a batch is one allocation (one
    shared-memory segment when made in a DataLoader worker).
    """
    B = int(batch_size)
    H, L = reader.hr_size, reader.lr_size
    cfg = reader.config
    dt = np.dtype(np.uint8 if cfg.dtype == "uint8" else np.float32)
    cl = cfg.memory_format == "channels_last"
    fields = [("lr", None, (B, 3, L, L), dt, cl), ("hr", None, (B, 3, H, H), dt, cl),
              ("hr_occluded", None, (B, 3, H, H), dt, cl), ("mask", None, (B, 1, H, H), dt, False)]
    if cfg.lr_clean:
        fields.append(("lr_clean", None, (B, 3, L, L), dt, cl))
    fields.append(("landmarks", None, (B, 68, 2), np.dtype(np.float32), False))
    for spec in cfg.heatmaps:
        grouping, size = heatmaps_mod.parse_spec(spec)
        fields.append(("heatmaps", spec, (B, heatmaps_mod.channels(grouping), size, size), dt, False))
    fields += [("index", None, (B,), np.dtype(np.int64), False),
               ("hole_ratio", None, (B,), np.dtype(np.float64), False)]
    out, off = [], 0
    for name, spec, shape, dtype, chl in fields:
        out.append((name, spec, shape, dtype, off, chl))
        off += -(-math.prod(shape) * dtype.itemsize // 64) * 64
    return out, max(off, 64)


@dataclass
class _Views:
    """Phase 1: the batch's arrays (views of the buffer) and the uint8 targets copies land in."""

    out: dict                 # name -> batch array as returned
    heat: dict                # spec -> batch heatmap array
    raw: dict                 # name -> the array as laid out in the buffer ((B, h, w, 3) if channels-last)
    hwc: dict                 # name -> stored channels-last?
    u8: dict = field(default_factory=dict)       # uint8 targets: the outputs, or scratch in float32 mode
    u8_heat: dict = field(default_factory=dict)  # uint8 heatmap targets (float32 mode: made on first use)

    def heat_u8(self, spec: str) -> np.ndarray:
        if spec not in self.u8_heat:
            self.u8_heat[spec] = np.empty(self.heat[spec].shape, np.uint8)
        return self.u8_heat[spec]


def _views(layout: list, buffer: np.ndarray, img_names: list[str], floating: bool) -> _Views:
    out, heat, raw, hwc = {}, {}, {}, {}
    for name, spec, shape, dtype, off, chl in layout:
        a = buffer[off : off + math.prod(shape) * dtype.itemsize].view(dtype)
        if chl:
            stored_as = a.reshape(shape[0], shape[2], shape[3], shape[1])
            a = stored_as.transpose(0, 3, 1, 2)
        else:
            stored_as = a = a.reshape(shape)
        if name == "heatmaps":
            heat[spec] = a
        else:
            out[name], raw[name], hwc[name] = a, stored_as, chl
    v = _Views(out, heat, raw, hwc)
    v.u8 = {k: (np.empty(raw[k].shape, np.uint8) if floating else raw[k]) for k in img_names + ["mask"]}
    v.u8_heat = dict(heat) if not floating else {}
    return v


def _copy_plan(cfg, v: _Views, B: int) -> tuple[list, dict]:
    """Phase 2: ``[(dataset, target, split into planes?)]`` copied straight from the maps, and the
    (B, h, w, 3) scratch of contiguous LR images (transposed once at the end)."""
    copies, small = [], {}
    for name in ((["hr"] if cfg.redraws else ["lr", "hr", "hr_occluded"])
                 + (["lr_clean"] if cfg.lr_clean else [])):
        tgt = v.u8[name]
        if v.hwc[name]:
            copies.append((name, tgt, False))
        elif tgt[0].nbytes >= _SPLIT_MIN_BYTES:
            copies.append((name, tgt, True))
        else:
            small[name] = np.empty((B, tgt.shape[2], tgt.shape[3], 3), np.uint8)
            copies.append((name, small[name], False))
    if not cfg.redraws:
        copies.append(("mask", v.u8["mask"].reshape(B, *v.u8["mask"].shape[2:]), False))
    return copies, small


def _copy_shard(sh, fields: list, ks: list, rs_list: list, grp: np.ndarray, rs: np.ndarray, split) -> None:
    """Phase 3a: the planned copies of one shard's rows ``rs`` into batch positions ``ks``."""
    maps = [sh.rows(name) for name, _, _ in fields]
    if all(m[0] is not None for m in maps):  # one view + one copy per field and item, no numpy calls
        splits = [(m[0], m[1], t) for m, (_, t, sp) in zip(maps, fields) if sp]
        plain = [(m[0], m[1], t) for m, (_, t, sp) in zip(maps, fields) if not sp]
        for k, r in zip(ks, rs_list):
            for rows_, offs, t in splits:
                split(rows_[offs[r]], t[k])
            for rows_, offs, t in plain:
                t[k] = rows_[offs[r]]
    else:  # another layout (e.g. recompressed shards): h5py reads, one selection per field
        for name, t, sp in fields:
            (_copy_images if sp else _copy_rows)(sh, name, grp, rs, t)


def _remask_shard(reader, sh, v: _Views, idx, grp, rs, epoch: int, kinds: list, hole: np.ndarray, split) -> None:
    """Phase 3b: this epoch's masks / degradations for one shard's items (``LoaderConfig.remask``, ``redegrade``)."""
    for k, r in zip(grp.tolist(), rs.tolist()):
        rm = reader.remask(int(idx[k]), sh.view("hr", r), sh.landmarks[r].copy(), epoch)
        for name in ("hr_occluded", "lr"):
            if v.hwc[name]:
                v.u8[name][k] = rm[name]
            else:
                split(rm[name], v.u8[name][k])
        v.u8["mask"][k, 0] = rm["mask"]
        kinds[k] = rm["kind"]
        hole[k] = rm["hole_ratio"]


def _heatmaps_shard(plan: list, v: _Views, grp, lm_out: np.ndarray, H: int, floating: bool) -> None:
    """Phase 3c: stored heatmaps converted to float32, or heatmaps rendered from the landmarks."""
    for spec, grouping, size, _, stored, sigma in plan:
        if stored and floating:
            src, dst = v.u8_heat[spec], v.heat[spec]
            for k in grp.tolist():
                np.multiply(src[k], UNIT, out=dst[k])
        elif not stored:
            render = heatmaps_mod.render if floating else heatmaps_mod.render_uint8
            tgt = v.heat[spec]
            for k in grp.tolist():
                tgt[k] = render(lm_out[k], grouping, size, sigma, H)


def fill_batch(reader, idx: np.ndarray, buffer: np.ndarray, layout: list, epoch: int | None = None) -> dict:
    """Fill ``buffer`` (flat uint8, laid out by :func:`batch_layout`) with items ``idx`` of
    ``reader`` (a :class:`~occface.data.reader.ShardReader`); return the batch.

    The batch holds views of ``buffer`` (``index`` and ``hole_ratio`` as arrays, strings as
    lists).  Reads go shard by shard in row order and land at each item's position in
    ``idx``.  Per field and item it is one copy out of the shard's mmap (a view from
    :meth:`OpenShard.rows`, no numpy call per read): a plain row copy for masks, stored
    heatmaps and channels-last images; ``cv2.split`` into the (3, H, W) planes for
    contiguous HR images; for contiguous LR images, row copies into an (h, w, 3) scratch and
    one transpose per batch (each measured faster than the alternatives here).  Shards of
    another layout are read through h5py.  In float32 mode the uint8 rows go to a scratch
    batch first and are converted per item with the same float32 arithmetic as ``get_item``.
    """
    cfg = reader.config
    B = len(idx)
    e = reader.epoch if epoch is None else int(epoch)
    floating = cfg.dtype != "uint8"
    img_names = ["lr", "hr", "hr_occluded"] + (["lr_clean"] if cfg.lr_clean else [])

    v = _views(layout, buffer, img_names, floating)                       # 1. views
    copies, small = _copy_plan(cfg, v, B)                                 # 2. plan
    split = cv2_module().split
    shard_of, rows = reader.shard_of[idx], reader.row[idx]
    order = np.lexsort((rows, shard_of))
    bounds = [0, *(np.flatnonzero(np.diff(shard_of[order])) + 1).tolist(), B]
    ks_all, rs_all = order.tolist(), rows[order].tolist()
    out = v.out
    hole = out["hole_ratio"]
    kinds: list = [None] * B
    lm_out = out["landmarks"]
    for a, b in zip(bounds[:-1], bounds[1:]):                             # 3. per shard
        s = int(shard_of[order[a]])
        sh = reader.handle(s)
        grp = order[a:b]
        rs = rows[grp]
        lm_out[grp] = sh.landmarks[rs]
        plan = reader.heat_plan(s)
        fields = copies + [(dsname, v.heat_u8(spec), False) for spec, _, _, dsname, stored, _ in plan if stored]
        _copy_shard(sh, fields, ks_all[a:b], rs_all[a:b], grp, rs, split)
        if cfg.redraws:
            _remask_shard(reader, sh, v, idx, grp, rs, e, kinds, hole, split)
        _heatmaps_shard(plan, v, grp, lm_out, reader.shards[s].hr_size, floating)

    for name, scratch in small.items():                                   # 4. finish
        v.u8[name][...] = scratch.transpose(0, 3, 1, 2)
    if floating:
        scale, offset = SCALE[cfg.range]
        for name in img_names:
            src, dst = v.u8[name], v.raw[name]
            for k in range(B):  # per item: the float passes stay in cache
                np.multiply(src[k], scale, out=dst[k])
                if offset is not None:
                    np.subtract(dst[k], offset, out=dst[k])
        np.copyto(out["mask"], v.u8["mask"])
    if not cfg.redraws:
        hole[:] = reader.hole_ratio_of[idx]
        kinds = [k.decode("utf-8") for k in reader.mask_kind_of[idx].tolist()]
    out["index"][:] = idx
    batch = {k: out[k] for k in ("lr", "hr", "hr_occluded", "mask")}
    if cfg.lr_clean:
        batch["lr_clean"] = out["lr_clean"]
    batch["landmarks"] = lm_out
    batch["heatmaps"] = v.heat
    batch["key"] = reader.decode_field("key", idx)
    batch["index"] = out["index"]
    batch["split"] = reader.decode_field("split", idx)
    batch["subject"] = reader.decode_field("subject", idx)
    batch["mask_kind"] = kinds
    batch["hole_ratio"] = hole
    return batch


def _copy_rows(sh, name: str, ks: np.ndarray, rs: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = dataset[name][r]`` for each (k, r) of (ks, rs) (rs ascending), any layout."""
    rows, off = sh.rows(name)
    flat = out.reshape(len(out), -1)
    if rows is None:  # h5py: one selection of the unique, increasing rows
        uniq, inv = np.unique(rs, return_inverse=True)
        flat[ks] = sh.file[name][uniq].reshape(len(uniq), -1)[inv]
        return
    for k, r in zip(ks.tolist(), rs.tolist()):
        flat[k] = rows[off[r]].reshape(-1)


def _copy_images(sh, name: str, ks: np.ndarray, rs: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = dataset[name][r].transpose(2, 0, 1)``: (h, w, 3) rows into (3, h, w) planes, any layout."""
    rows, off = sh.rows(name)
    if rows is None:
        uniq, inv = np.unique(rs, return_inverse=True)
        out[ks] = sh.file[name][uniq][inv].transpose(0, 3, 1, 2)
        return
    split = cv2_module().split
    for k, r in zip(ks.tolist(), rs.tolist()):
        split(rows[off[r]], out[k])
