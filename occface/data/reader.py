"""The numpy reader over built shards: items, batches, re-masking, and a framework-free iterator.

:class:`ShardReader` is the core behind :class:`occface.data.ShardDataset` and
:func:`iterate_numpy`; see the package docstring for the items it returns.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .. import degrade, masks
from ..faces import heatmaps as heatmaps_mod
from ..faces.occlude import FillConfig, apply_fill, occlude, sample_fill
from ..seeding import rng_for
from .batch import batch_layout, fill_batch
from .config import DataError, LoaderConfig
from .convert import SCALE, UNIT, image_planes
from .order import epoch_order
from . import store
from .store import PROCESS, OpenShard, ShardIndex


class _LazyRng:
    """``rng_for(*args)``, built on first use: fills that draw nothing skip the SHA-256 + SeedSequence."""

    def __init__(self, *args):
        self._args = args
        self._rng = None

    def __getattr__(self, name):
        if self._rng is None:
            self._rng = rng_for(*self._args)
        return getattr(self._rng, name)


def _build_degrade(cfg: dict):
    """The degradation spec a shard was built with (builds made before degradations existed: none)."""
    d = cfg.get("degrade")
    return degrade.NONE if d is None else degrade.spec_from_dict(d)


class ShardReader:
    """Map-style numpy view of one or more builds / shards: ``reader[i]`` is one item (dict of arrays).

    ``sources``: a build directory (its ``manifest.json``), a manifest path, a shard ``.h5``
    file, or a list of these; samples are ordered by source, then shard index, then row.
    Shards may come from several builds if their HR and LR sizes agree.

    The numpy core behind :class:`ShardDataset` and :func:`iterate_numpy`.  Picklable (open
    handles are never pickled) and safe to use after ``fork``: every process opens its own.
    """

    def __init__(self, sources, config: LoaderConfig = LoaderConfig()):
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        self.config = config
        self.epoch = 0
        splits = config.splits()
        self.shards: list[ShardIndex] = []
        metas = []
        seen = set()
        for src in sources:
            for path, entry in store.shard_paths(src):
                if path in seen:
                    raise DataError(f"{path} is listed twice")
                seen.add(path)
                if entry is not None:
                    store.check_entry(path, entry, "quick")
                if entry is not None and (entry["samples"] == 0 or (
                        splits is not None and not any(entry["splits"].get(s) for s in splits))):
                    continue  # nothing of the wanted splits: never opened
                if not os.path.exists(path):
                    raise DataError(f"missing shard {path}")
                if entry is not None and config.verify == "sha256":
                    store.check_entry(path, entry, "sha256")
                shard, meta = store.read_index(path, splits)
                if entry is not None:
                    store.check_count(path, entry, shard.num_samples)
                if len(shard.rows):
                    self.shards.append(shard)
                    metas.append(meta)
        if self.shards:
            sizes = {(s.hr_size, s.lr_size) for s in self.shards}
            if len(sizes) > 1:
                raise DataError(f"shards with different (HR, LR) sizes cannot be mixed: {sorted(sizes)}")
        for spec in config.heatmaps:
            if config.heatmap_source == "stored":
                missing = [s.path for s in self.shards if not self._use_stored(s, spec)]
                if missing:
                    raise DataError(f"heatmap {spec} (sigma {config.heatmap_sigma}) is not stored in {missing[0]}")
        counts = [len(s.rows) for s in self.shards]
        self.shard_of = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        self.row = np.concatenate([s.rows for s in self.shards]) if counts else np.zeros(0, np.int32)
        cat = lambda k, dt: np.concatenate([m[k] for m in metas]) if metas else np.zeros(0, dt)  # noqa: E731
        self._key = cat("key", "S1")
        self._split = cat("split", "S1")
        self._subject = cat("subject", "S1")
        self.mask_kind_of = cat("mask_kind", "S1")
        self.hole_ratio_of = cat("hole_ratio", np.float32)
        self._dtype = np.uint8 if config.dtype == "uint8" else np.float32
        self._scale = SCALE[config.range]
        self._remask_specs: dict[int, object] = {}
        self._redegrade_specs: dict[int, object] = {}
        self._heat_plans: dict[int, list] = {}
        self._pid = None
        self._open: dict[int, _OpenShard] = {}

    # -- pickling / fork safety
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = {}
        state["_pid"] = None
        return state

    def handle(self, s: int) -> OpenShard:
        if self._pid != PROCESS[0]:  # first use in this process (or inherited across fork): never reuse
            self._open = {}
            self._pid = PROCESS[0]
        sh = self._open.get(s)
        if sh is None:
            sh = self._open[s] = OpenShard(self.shards[s].path)
        return sh

    def close(self) -> None:
        """Close this process's handles (they reopen on the next read)."""
        if self._pid == PROCESS[0]:
            for sh in self._open.values():
                sh.close()
        self._open = {}

    # -- info
    def __len__(self) -> int:
        return len(self.row)

    @property
    def hr_size(self) -> int:
        return self.shards[0].hr_size if self.shards else 128

    @property
    def lr_size(self) -> int:
        return self.shards[0].lr_size if self.shards else 16

    @property
    def heatmap_sigma(self) -> float:
        """Heatmap sigma (heatmap pixels): ``LoaderConfig.heatmap_sigma``, else the builds' (for ``add_heatmaps``)."""
        if self.config.heatmap_sigma is not None:
            return float(self.config.heatmap_sigma)
        sigmas = {float(s.config["heatmap_sigma"]) for s in self.shards}
        if len(sigmas) > 1:
            raise DataError(f"the builds use different heatmap sigmas {sorted(sigmas)}: set LoaderConfig.heatmap_sigma")
        return sigmas.pop() if sigmas else 1.0

    @property
    def shard_paths(self) -> list[str]:
        return [s.path for s in self.shards]

    def key(self, i: int) -> str:
        """Stable sample key of item ``i``."""
        return self._key[i].decode("utf-8")

    def keys(self) -> list[str]:
        """Stable sample keys of all items, in dataset order."""
        return [k.decode("utf-8") for k in self._key]

    def location(self, i: int) -> tuple[str, int]:
        """(shard path, row) of item ``i``."""
        return self.shards[self.shard_of[i]].path, int(self.row[i])

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the re-mask draws (only matters with ``remask``)."""
        if epoch < 0:
            raise ValueError("epoch must be >= 0")
        self.epoch = int(epoch)

    # -- helpers
    def _sigma(self, shard: ShardIndex) -> float:
        s = self.config.heatmap_sigma
        return float(shard.config["heatmap_sigma"] if s is None else s)

    def _use_stored(self, shard: ShardIndex, spec: str) -> bool:
        if self.config.heatmap_source == "render" or spec not in shard.stored_heatmaps:
            return False
        sigma = self.config.heatmap_sigma
        return sigma is None or float(sigma) == float(shard.config["heatmap_sigma"])

    def _remask_spec(self, s: int):
        spec = self._remask_specs.get(s)
        if spec is None:
            spec = self.config.remask
            if spec == "build":
                spec = masks.spec_from_dict(self.shards[s].config["mask"])
            self._remask_specs[s] = spec
        return spec

    def _redegrade_spec(self, s: int):
        spec = self._redegrade_specs.get(s)
        if spec is None:
            spec = self.config.redegrade
            if spec == "build":
                spec = _build_degrade(self.shards[s].config)
            self._redegrade_specs[s] = spec
        return spec

    def remask(self, i: int, hr: np.ndarray, landmarks: np.ndarray, epoch: int | None = None) -> dict:
        """The epoch's fresh draws for item ``i`` (``LoaderConfig.remask`` and / or ``redegrade``).

        Returns ``{"mask", "hr_occluded", "lr"}`` (u8) and ``"params"`` (the mask's), ``"fill"``,
        ``"degrade"`` (the applied degradation), ``"kind"``, ``"hole_ratio"``.  With ``remask`` a
        new mask (or occluder) is drawn and filled (or painted); otherwise the stored one is kept.
        The LR is the degradation applied to the occluded HR: a fresh draw with ``redegrade``,
        else the stored one (the build's bilinear downsample when it had none).
        """
        s = int(self.shard_of[i])
        shard = self.shards[s]
        cfg = shard.config
        S = shard.hr_size
        e = self.epoch if epoch is None else int(epoch)
        seed = int(cfg["seed"] if self.config.remask_seed is None else self.config.remask_seed)
        key = self.key(i)
        build_deg = _build_degrade(cfg)
        degrade_hr = bool(cfg.get("degrade_hr", False)) and not build_deg.is_none
        sh = self.handle(s)
        r = int(self.row[i])
        if self.config.remask is not None:
            params, mask, layer = masks.sample_occlusion(self._remask_spec(s), rng_for(seed, key, f"remask:epoch={e}"),
                                                         landmarks, S)
            if layer is None:
                fill_cfg = self.config.fill if self.config.fill is not None else FillConfig(**cfg["fill"])
                fill = sample_fill(fill_cfg, _LazyRng(seed, key, f"remask-fill:epoch={e}"))
                occ = apply_fill(hr, mask, fill)
            else:
                fill = {"mode": "occluder"}
                occ = masks.occluders.composite(hr, *layer)
            kind, hole = params["kind"], masks.hole_ratio(mask)
        else:  # only the degradation is re-drawn: the stored occlusion (rebuilt, if the stored copy is degraded)
            params, mask = None, sh.view("mask", r).copy()
            fill = None
            if degrade_hr:
                params, fill = json.loads(sh.meta_text("mask_params", r)), json.loads(sh.meta_text("fill", r))
                occ = occlude(hr, params, fill, S)
            else:
                occ = sh.view("hr_occluded", r).copy()
            kind, hole = self.mask_kind_of[i].decode("utf-8"), float(self.hole_ratio_of[i])
        if self.config.redegrade is not None:
            spec = self._redegrade_spec(s)
            rng = None if spec.is_none else rng_for(seed, key, f"redegrade:epoch={e}")
            deg = degrade.sample_params(spec, rng, S, shard.lr_size, cfg["resize_rule"])
        elif build_deg.is_none:
            deg = degrade.sample_params(build_deg, None, S, shard.lr_size, cfg["resize_rule"])
        else:
            deg = json.loads(sh.meta_text("degrade", r))
        lr = degrade.apply(occ, deg)
        if degrade_hr:
            occ = degrade.apply(occ, deg, size=S)
        return {"mask": mask, "hr_occluded": occ, "lr": lr, "params": params, "fill": fill, "degrade": deg,
                "kind": kind, "hole_ratio": hole}

    # -- items
    def __getitem__(self, i):
        if isinstance(i, (list, tuple, np.ndarray, range)):
            return self.get_batch(i)
        return self.get_item(int(i))

    def heat_plan(self, s: int) -> list:
        """Per shard: (spec, grouping, size, dataset name, stored?, sigma) for every requested heatmap."""
        plan = self._heat_plans.get(s)
        if plan is None:
            shard = self.shards[s]
            plan = []
            for spec in self.config.heatmaps:
                grouping, size = heatmaps_mod.parse_spec(spec)
                plan.append((spec, grouping, size, f"heatmaps/{spec}", self._use_stored(shard, spec),
                             self._sigma(shard)))
            self._heat_plans[s] = plan
        return plan

    def get_item(self, i: int, epoch: int | None = None) -> dict:
        """Item ``i`` (dict of numpy arrays; see the module docstring for keys, shapes and ranges).

        ``epoch``: the re-mask epoch (default: the one set by :meth:`set_epoch`).
        """
        n = len(self.row)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} items")
        if i < 0:
            i += n
        s = int(self.shard_of[i])
        r = int(self.row[i])
        sh = self.handle(s)
        cfg = self.config
        dt = self._dtype
        scale, offset = self._scale
        hr_src = sh.view("hr", r)
        lm = sh.landmarks[r].copy()
        if cfg.redraws:
            rm = self.remask(i, hr_src, lm, epoch)
            occ_src, mask_src, lr_src = rm["hr_occluded"], rm["mask"], rm["lr"]
            kind, hole = rm["kind"], rm["hole_ratio"]
        else:
            occ_src = sh.view("hr_occluded", r)
            mask_src = sh.view("mask", r)
            lr_src = sh.view("lr", r)
            kind, hole = self.mask_kind_of[i].decode("utf-8"), float(self.hole_ratio_of[i])
        H = mask_src.shape[0]
        item = {
            "lr": image_planes(lr_src, dt, scale, offset),
            "hr": image_planes(hr_src, dt, scale, offset),
            "hr_occluded": image_planes(occ_src, dt, scale, offset),
            "mask": mask_src.astype(dt).reshape(1, H, H),
        }
        if cfg.lr_clean:
            item["lr_clean"] = image_planes(sh.view("lr_clean", r), dt, scale, offset)
        item["landmarks"] = lm
        heat = {}
        for spec, grouping, size, dsname, stored, sigma in self.heat_plan(s):
            if stored:
                v = sh.view(dsname, r)
                if dt is np.uint8:
                    hm = v.copy()
                else:
                    hm = v.astype(np.float32)
                    hm *= UNIT
            elif dt is np.uint8:
                hm = heatmaps_mod.render_uint8(lm, grouping, size, sigma, H)
            else:
                hm = heatmaps_mod.render(lm, grouping, size, sigma, H)
            heat[spec] = hm
        item["heatmaps"] = heat
        item["key"] = self._key[i].decode("utf-8")
        item["index"] = i
        item["split"] = self._split[i].decode("utf-8")
        item["subject"] = self._subject[i].decode("utf-8")
        item["mask_kind"] = kind
        item["hole_ratio"] = hole
        return item

    def get_batch(self, indices, epoch: int | None = None) -> dict:
        """Items ``indices`` stacked along a new first axis (strings, ints and floats as lists).

        Equal to ``collate_numpy([self.get_item(i, epoch) for i in indices])`` (tested), built
        without per-item dicts: one buffer holds the batch, and every field is filled straight
        from the memory maps (see :meth:`fill_batch`).  With ``LoaderConfig(memory_format=
        "channels_last")`` the images have the same shape and values in channels-last strides.
        """
        idx = self.indices(indices)
        if not len(idx):
            return {}
        layout, nbytes = self.batch_layout(len(idx))
        batch = self.fill_batch(idx, np.empty(nbytes, np.uint8), layout, epoch)
        batch["index"] = batch["index"].tolist()
        batch["hole_ratio"] = batch["hole_ratio"].tolist()
        return batch

    def indices(self, indices) -> np.ndarray:
        """``indices`` as an int64 array with negative positions resolved (IndexError when out of range)."""
        idx = np.array(indices, dtype=np.int64).reshape(-1)
        n = len(self.row)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"index {bad} out of range for {n} items")
        idx[idx < 0] += n
        return idx

    def batch_layout(self, batch_size: int) -> tuple[list, int]:
        """:func:`occface.data.batch.batch_layout` of this reader."""
        return batch_layout(self, batch_size)

    def fill_batch(self, idx: np.ndarray, buffer: np.ndarray, layout: list, epoch: int | None = None) -> dict:
        """:func:`occface.data.batch.fill_batch` of this reader."""
        return fill_batch(self, idx, buffer, layout, epoch)

    def decode_field(self, name: str, idx) -> list[str]:
        """The index field ``name`` (``key``, ``split``, ``subject``) of items ``idx`` as strings."""
        arr = {"key": self._key, "split": self._split, "subject": self._subject}[name]
        return [k.decode("utf-8") for k in arr[idx].tolist()]


def iterate_numpy(sources, config: LoaderConfig = LoaderConfig(), *, seed: int = 0, epoch: int = 0, rank: int = 0,
                  world_size: int = 1, shuffle: bool = True, drop_last: bool = False, pad: bool = False,
                  batch_size: int | None = None, reader: ShardReader | None = None):
    """Iterate items (dicts of numpy arrays) of one epoch, framework-free.

    Visits ``epoch_order(len, seed=seed, epoch=epoch, rank=rank, world_size=world_size,
    shuffle=shuffle, drop_last=drop_last, pad=pad)`` and, with ``remask``, draws the masks of
    ``epoch``.  Items equal ``ShardDataset``'s (same values, arrays instead of tensors).
    ``batch_size``: yield stacked batches (the last one may be short) instead of items.
    ``reader``: reuse an open :class:`ShardReader` instead of indexing ``sources`` again.
    """
    rd = reader if reader is not None else ShardReader(sources, config)
    order = epoch_order(len(rd), seed=seed, epoch=epoch, rank=rank, world_size=world_size, shuffle=shuffle,
                        drop_last=drop_last, pad=pad)
    if batch_size is None:
        for i in order:
            yield rd.get_item(int(i), epoch)
    else:
        for b in range(0, len(order), batch_size):
            yield rd.get_batch(order[b : b + batch_size], epoch)
