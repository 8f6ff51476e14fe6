"""Training-side view of built shards: a torch ``Dataset`` and a framework-free numpy iterator.

Quick start::

    from occface.data import LoaderConfig, ShardDataset, ShardSampler, iterate_numpy

    cfg = LoaderConfig(split="train", heatmaps=("pu7@16", "pu42@32", "all68@64"), range="[-1,1]")
    ds = ShardDataset("/data/occ_build", cfg)                # torch: items hold tensors
    sampler = ShardSampler(ds, seed=0, rank=rank, world_size=world, shuffle=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=sampler, num_workers=8)
    for epoch in range(n_epochs):
        sampler.set_epoch(epoch)                             # also calls ds.set_epoch(epoch)
        for batch in loader: ...

    for item in iterate_numpy("/data/occ_build", cfg, seed=0, epoch=0, shuffle=True):
        ...                                                  # same items as numpy arrays

Items (``docs/data.md`` has the full table).  ``H`` = HR size (128), ``L`` = LR size (16):

=================  ====================  =========================================================
key                shape, dtype          values
=================  ====================  =========================================================
``lr``             (3, L, L) float32     occluded LR, RGB, in ``config.range``
``hr``             (3, H, H) float32     clean HR, RGB, in ``config.range``
``hr_occluded``    (3, H, H) float32     HR with the hole filled, in ``config.range``
``mask``           (1, H, H) float32     exactly 0.0 or 1.0; **1 = missing**
``landmarks``      (68, 2) float32       dlib 68 points (x, y) in HR pixels, pixel centres at integers
``heatmaps``       {spec: (C, S, S)}     float32 in [0, 1], peak 1.0 on each landmark (see below)
``lr_clean``       (3, L, L) float32     only with ``LoaderConfig(lr_clean=True)``
``key`` / ``split``/ ``subject``  str    the sample's stable key, split, identity
``index``          int                   position in this dataset (after split selection)
``mask_kind``      str                   mask kind of *this item's* mask (re-drawn when re-masking)
``hole_ratio``     float                 fraction of missing pixels of this item's mask
=================  ====================  =========================================================

Normalisation (``LoaderConfig.range``): ``"[0,1]"`` gives ``x / 255``, ``"[-1,1]"`` gives
``x / 127.5 - 1``, both as the float32 nearest to the exact value (0 -> 0.0 / -1.0, 255 -> 1.0).
Only the three images and ``lr_clean`` are normalised; ``mask`` and ``heatmaps`` are always
[0, 1] and ``landmarks`` are pixels.

Heatmaps: ``occface.heatmaps.render(landmarks, grouping, S, sigma)`` (exact float32), or, with
``heatmap_source="auto"`` (the default) and when the shard stores that spec with the same sigma,
the stored ``uint8`` map as ``v / 255`` (quantised: within 1/510 of the rendered value, peak
still exactly 1.0).  Reading is several times faster than rendering for 64x64 sets, see
docs/benchmarks.md.  ``"render"`` always renders; ``"stored"`` insists on stored maps.

Files are opened lazily, once per process: building the dataset reads the manifests and every
shard's ``meta/`` (keys, splits) and closes the files; the first item a process reads from a
shard opens an h5py handle and a plain file descriptor for it (tracked by pid, so a handle is
never shared across ``fork``).  Image chunks are uncompressed and one per sample, so their
byte offsets are taken from the chunk index once and samples are read with ``os.preadv``
straight into the output buffers; anything else falls back to h5py.

Re-masking (``LoaderConfig(remask=spec)``): for epoch ``e`` and sample key ``k`` the mask is
``masks.render(masks.sample_params(spec, rng_for(seed, k, f"remask:epoch={e}"), landmarks, H))``,
the fill is ``sample_fill(fill, rng_for(seed, k, f"remask-fill:epoch={e}"))`` and the LR is
``occface.resize.resize(hr_occluded, L, resize_rule)`` with the build's own rule: exactly what
the build would have stored for that mask.  ``seed`` is ``remask_seed`` or the build's seed.

Shuffling and DDP: :func:`epoch_order` (plain numpy) and :class:`ShardSampler` (torch) give
rank ``r`` of ``w`` the slice ``perm[r::w]`` of one permutation drawn from
``PCG64(SeedSequence([seed, epoch]))``; see :func:`epoch_order` for the padding modes.

Importing this module does not import torch; ``ShardDataset`` and ``ShardSampler`` are created
on first access (PEP 562), so the numpy path works where torch is not installed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from . import heatmaps as heatmaps_mod
from . import masks, resize
from .occlude import FillConfig, apply_fill, sample_fill
from .seeding import rng_for

RANGES = ("[0,1]", "[-1,1]")
HEATMAP_SOURCES = ("auto", "render", "stored")
IMAGE_KEYS = ("lr", "hr", "hr_occluded", "lr_clean")
_DIVISOR = {"[0,1]": 255.0, "[-1,1]": 127.5}


class DataError(RuntimeError):
    """A source that is not a finished build or shard, or shards that cannot be mixed."""


@dataclass(frozen=True)
class LoaderConfig:
    """What the loader produces.  Frozen: equal configs give equal items.

    split: ``"train"``, ``"test"``, a tuple of splits, or ``None`` for every sample.
    heatmaps: specs ``"<grouping>@<size>"`` (``occface.heatmaps``: all68, pu7, pu42, fhc4, parts5);
        ``()`` for none.  Default: the public Pro-UIGAN set (7 @16, 42 @32, 68 @64).
    range: ``"[-1,1]"`` (``x / 127.5 - 1``) or ``"[0,1]"`` (``x / 255``) for the images.
    heatmap_sigma: Gaussian sigma in heatmap pixels; ``None`` = the build's ``heatmap_sigma``.
    heatmap_source: ``"auto"`` (stored maps when the shard has that spec and sigma, else render),
        ``"render"`` (always render from landmarks: exact float32) or ``"stored"`` (error if absent).
    remask: ``None`` (the stored mask), a mask spec (``occface.masks`` dataclass or its dict), or
        ``"build"`` (the build's own mask spec): draw a fresh mask every epoch.
    remask_seed: base seed of the re-mask draws; ``None`` = the build's seed.
    fill: fill for re-masked holes (``occface.occlude.FillConfig``); ``None`` = the build's fill.
    lr_clean: also return ``lr_clean`` (the downsampled clean HR).
    """

    split: str | tuple[str, ...] | None = "train"
    heatmaps: tuple[str, ...] = ("pu7@16", "pu42@32", "all68@64")
    range: str = "[-1,1]"
    heatmap_sigma: float | None = None
    heatmap_source: str = "auto"
    remask: object = None
    remask_seed: int | None = None
    fill: FillConfig | None = None
    lr_clean: bool = False

    def __post_init__(self):
        if isinstance(self.heatmaps, str):
            object.__setattr__(self, "heatmaps", (self.heatmaps,))
        object.__setattr__(self, "heatmaps", tuple(self.heatmaps))
        for spec in self.heatmaps:
            heatmaps_mod.parse_spec(spec)
        if len(set(self.heatmaps)) != len(self.heatmaps):
            raise ValueError("duplicate heatmap specs")
        if isinstance(self.split, list):
            object.__setattr__(self, "split", tuple(self.split))
        if self.range not in RANGES:
            raise ValueError(f"range must be one of {RANGES}, got {self.range!r}")
        if self.heatmap_source not in HEATMAP_SOURCES:
            raise ValueError(f"heatmap_source must be one of {HEATMAP_SOURCES}, got {self.heatmap_source!r}")
        if self.heatmap_sigma is not None and not self.heatmap_sigma > 0:
            raise ValueError("heatmap_sigma must be > 0")
        if isinstance(self.remask, dict):
            object.__setattr__(self, "remask", _spec_from_dict(self.remask))
        elif isinstance(self.remask, str) and self.remask != "build":
            raise ValueError(f"remask must be None, a mask spec or 'build', got {self.remask!r}")
        if self.remask_seed is not None and self.remask_seed < 0:
            raise ValueError("remask_seed must be >= 0")

    def splits(self) -> tuple[str, ...] | None:
        if self.split is None:
            return None
        return (self.split,) if isinstance(self.split, str) else tuple(self.split)


def _spec_from_dict(d: dict):
    if hasattr(masks, "spec_from_dict"):
        return masks.spec_from_dict(dict(d))
    d = dict(d)
    if d.pop("kind", None) == "square":
        return masks.SquareMask(**d)
    raise ValueError(f"cannot build a mask spec from {d!r} with this occface.masks")


# ----------------------------------------------------------------------------- order / DDP

def epoch_order(n: int, *, seed: int = 0, epoch: int = 0, rank: int = 0, world_size: int = 1,
                shuffle: bool = True, drop_last: bool = False, pad: bool = False) -> np.ndarray:
    """Dataset indices rank ``rank`` of ``world_size`` visits in ``epoch`` (int64 array).

    The permutation is ``np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed,
    epoch]))).permutation(n)`` (identity when ``shuffle`` is false), the same on every rank, and
    rank ``r`` takes ``perm[r::world_size]``.  Modes:

    * default (``pad=False, drop_last=False``): the ranks' slices partition ``range(n)``: every
      sample exactly once per epoch; slice lengths differ by at most one.  Right for evaluation;
      in DDP training uneven lengths can leave one rank waiting in a collective, so train with
      ``drop_last`` or ``pad``.
    * ``drop_last=True``: the permutation is cut to ``world_size * (n // world_size)`` first,
      so every rank gets the same length and no sample twice; up to ``world_size - 1`` samples
      (different ones every epoch when shuffling) are skipped.
    * ``pad=True``: the permutation is extended by its own head to a multiple of
      ``world_size`` (like ``torch.utils.data.DistributedSampler``): equal lengths, every
      sample at least once, and ``(-n) % world_size`` samples twice.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank} of {world_size}")
    if seed < 0 or epoch < 0:
        raise ValueError("seed and epoch must be >= 0")
    if drop_last and pad:
        raise ValueError("drop_last and pad are exclusive")
    if shuffle:
        perm = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(epoch)]))).permutation(n)
    else:
        perm = np.arange(n, dtype=np.int64)
    perm = perm.astype(np.int64, copy=False)
    if drop_last:
        perm = perm[: world_size * (n // world_size)]
    elif pad and n % world_size:
        extra = world_size - n % world_size
        perm = np.concatenate([perm, np.resize(perm, extra)]) if n else perm
    return perm[rank::world_size]


# ----------------------------------------------------------------------------- index

@dataclass
class _Shard:
    path: str
    rows: np.ndarray  # int32 rows of this shard that the dataset uses
    num_samples: int
    config: dict
    stored_heatmaps: tuple[str, ...]
    hr_size: int = field(init=False)
    lr_size: int = field(init=False)

    def __post_init__(self):
        self.hr_size = int(self.config["align"]["size"])
        self.lr_size = int(self.config["lr_size"])


def _shard_paths(source) -> list[tuple[str, dict | None]]:
    """(shard path, manifest entry or None) for a build directory, a manifest or a shard file."""
    from .build import MANIFEST

    src = os.fspath(source)
    if os.path.isdir(src) or src.endswith(".json"):
        mpath = os.path.join(src, MANIFEST) if os.path.isdir(src) else src
        if not os.path.exists(mpath):
            raise DataError(f"no manifest at {mpath}: is the build finished (or are its partitions joined)?")
        with open(mpath) as fh:
            manifest = json.load(fh)
        if manifest.get("format") != "occface-build-manifest":
            raise DataError(f"{mpath} is not an occface build manifest")
        root = os.path.dirname(os.path.abspath(mpath))
        return [(os.path.join(root, e["file"]), e) for e in sorted(manifest["shards"], key=lambda e: e["index"])]
    if os.path.isfile(src):
        return [(os.path.abspath(src), None)]
    raise DataError(f"{src!r} is neither a build directory, a manifest nor a shard file")


def _read_index(path: str, splits) -> tuple[_Shard, dict]:
    import h5py

    from . import shards

    with h5py.File(path, "r") as f:
        if f.attrs.get("schema") != shards.SCHEMA or int(f.attrs.get("schema_version", -1)) != shards.SCHEMA_VERSION:
            raise DataError(f"{path}: not an occface shard of schema v{shards.SCHEMA_VERSION}")
        config = json.loads(f.attrs["config"])
        n = int(f.attrs["num_samples"])
        meta = {}
        for name in ("key", "split", "subject", "mask_kind"):
            meta[name] = np.array([s.encode("utf-8") for s in f[f"meta/{name}"].asstr()[...]], dtype=np.bytes_) \
                if n else np.zeros(0, "S1")
        meta["hole_ratio"] = f["meta/hole_ratio"][...].astype(np.float32)
        stored = tuple(sorted(f["heatmaps"].keys())) if "heatmaps" in f else ()
    if splits is None:
        rows = np.arange(n, dtype=np.int32)
    else:
        want = np.array([s.encode() for s in splits], dtype=np.bytes_)
        rows = np.flatnonzero(np.isin(meta["split"], want)).astype(np.int32)
    meta = {k: v[rows] for k, v in meta.items()}
    return _Shard(path, rows, n, config, stored), meta


# ----------------------------------------------------------------------------- per-process files

class _OpenShard:
    """One process's handles on one shard: h5py file, raw fd, chunk offsets, landmarks."""

    def __init__(self, path: str):
        import h5py

        self.file = h5py.File(path, "r")
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self.landmarks = self.file["landmarks"][...].astype(np.float32, copy=False)
        self._offsets: dict[str, np.ndarray | None] = {}

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            self.file.close()
        except Exception:  # noqa: BLE001 - closing a handle inherited across fork may fail; it is dropped anyway
            pass

    def offsets(self, name: str) -> np.ndarray | None:
        """Byte offset of every sample's chunk when ``name`` is uncompressed u8 with one chunk per sample."""
        if name in self._offsets:
            return self._offsets[name]
        ds = self.file[name]
        n = ds.shape[0]
        off = None
        plain = (
            hasattr(os, "preadv") and ds.dtype == np.uint8 and ds.chunks == (1, *ds.shape[1:])
            and ds.id.get_create_plist().get_nfilters() == 0
        )
        if plain and n:
            nbytes = int(np.prod(ds.shape[1:]))
            off = np.full(n, -1, np.int64)
            ok = [True]

            def visit(info):
                if info.filter_mask or info.size != nbytes:
                    ok[0] = False
                else:
                    off[info.chunk_offset[0]] = info.byte_offset

            if hasattr(ds.id, "chunk_iter"):
                ds.id.chunk_iter(visit)
            else:  # HDF5 < 1.12.3
                for i in range(ds.id.get_num_chunks()):
                    visit(ds.id.get_chunk_info(i))
            if not ok[0] or (off < 0).any():
                off = None
        self._offsets[name] = off
        return off

    def read(self, name: str, row: int, out: np.ndarray) -> np.ndarray:
        """Sample ``row`` of u8 dataset ``name`` into the C-contiguous u8 array ``out``."""
        off = self.offsets(name)
        if off is not None:
            got = os.preadv(self.fd, [out], int(off[row]))
            if got != out.nbytes:
                raise DataError(f"short read from {self.file.filename}:{name}[{row}]")
        else:
            self.file[name].read_direct(out.reshape(1, *out.shape), np.s_[row : row + 1])
        return out


# ----------------------------------------------------------------------------- conversion

_LUTS: dict[str, np.ndarray] = {}


def _lut(range_: str) -> np.ndarray:
    """float32 nearest to v / 255 or v / 127.5 - 1 for v in 0..255."""
    if range_ not in _LUTS:
        v = np.arange(256, dtype=np.float64)
        _LUTS[range_] = (v / 255.0 if range_ == "[0,1]" else v / 127.5 - 1.0).astype(np.float32)
    return _LUTS[range_]


def _cv2():
    import cv2

    return cv2


def _chw_float(img: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """(H, W, 3) u8 -> (3, H, W) float32 through ``lut``."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    planes = np.empty((3, h, w), np.uint8)
    cv2.split(img, [planes[0], planes[1], planes[2]])
    out = np.empty((3, h, w), np.float32)
    cv2.LUT(planes.reshape(3 * h, w), lut, dst=out.reshape(3 * h, w))
    return out


def _u8_to_unit(arr: np.ndarray) -> np.ndarray:
    """u8 array (any shape) -> float32 v / 255."""
    cv2 = _cv2()
    flat = arr.reshape(-1, arr.shape[-1])
    out = np.empty(arr.shape, np.float32)
    cv2.LUT(flat, _lut("[0,1]"), dst=out.reshape(flat.shape))
    return out


# ----------------------------------------------------------------------------- the reader

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
        self._shards: list[_Shard] = []
        metas = []
        seen = set()
        for src in sources:
            for path, entry in _shard_paths(src):
                if path in seen:
                    raise DataError(f"{path} is listed twice")
                seen.add(path)
                if entry is not None and (entry["samples"] == 0 or (
                        splits is not None and not any(entry["splits"].get(s) for s in splits))):
                    continue  # nothing of the wanted splits: never opened
                if not os.path.exists(path):
                    raise DataError(f"missing shard {path}")
                shard, meta = _read_index(path, splits)
                if len(shard.rows):
                    self._shards.append(shard)
                    metas.append(meta)
        if self._shards:
            sizes = {(s.hr_size, s.lr_size) for s in self._shards}
            if len(sizes) > 1:
                raise DataError(f"shards with different (HR, LR) sizes cannot be mixed: {sorted(sizes)}")
        for spec in config.heatmaps:
            if config.heatmap_source == "stored":
                missing = [s.path for s in self._shards if not self._use_stored(s, spec)]
                if missing:
                    raise DataError(f"heatmap {spec} (sigma {config.heatmap_sigma}) is not stored in {missing[0]}")
        counts = [len(s.rows) for s in self._shards]
        self._shard_of = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
        self._row = np.concatenate([s.rows for s in self._shards]) if counts else np.zeros(0, np.int32)
        cat = lambda k, dt: np.concatenate([m[k] for m in metas]) if metas else np.zeros(0, dt)  # noqa: E731
        self.keys_bytes = cat("key", "S1")
        self._split = cat("split", "S1")
        self._subject = cat("subject", "S1")
        self._mask_kind = cat("mask_kind", "S1")
        self._hole_ratio = cat("hole_ratio", np.float32)
        self._remask_specs: dict[int, object] = {}
        self._pid = None
        self._open: dict[int, _OpenShard] = {}

    # -- pickling / fork safety
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = {}
        state["_pid"] = None
        return state

    def _handle(self, s: int) -> _OpenShard:
        pid = os.getpid()
        if self._pid != pid:  # first use in this process (or inherited across fork): never reuse
            self._open = {}
            self._pid = pid
        sh = self._open.get(s)
        if sh is None:
            sh = self._open[s] = _OpenShard(self._shards[s].path)
        return sh

    def close(self) -> None:
        """Close this process's handles (they reopen on the next read)."""
        if self._pid == os.getpid():
            for sh in self._open.values():
                sh.close()
        self._open = {}

    # -- info
    def __len__(self) -> int:
        return len(self._row)

    @property
    def hr_size(self) -> int:
        return self._shards[0].hr_size if self._shards else 128

    @property
    def lr_size(self) -> int:
        return self._shards[0].lr_size if self._shards else 16

    @property
    def shard_paths(self) -> list[str]:
        return [s.path for s in self._shards]

    def key(self, i: int) -> str:
        return self.keys_bytes[i].decode("utf-8")

    def location(self, i: int) -> tuple[str, int]:
        """(shard path, row) of item ``i``."""
        return self._shards[self._shard_of[i]].path, int(self._row[i])

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the re-mask draws (only matters with ``remask``)."""
        if epoch < 0:
            raise ValueError("epoch must be >= 0")
        self.epoch = int(epoch)

    # -- helpers
    def _sigma(self, shard: _Shard) -> float:
        s = self.config.heatmap_sigma
        return float(shard.config["heatmap_sigma"] if s is None else s)

    def _use_stored(self, shard: _Shard, spec: str) -> bool:
        if self.config.heatmap_source == "render" or spec not in shard.stored_heatmaps:
            return False
        return self.config.heatmap_sigma is None or float(self.config.heatmap_sigma) == float(shard.config["heatmap_sigma"])

    def _remask_spec(self, s: int):
        spec = self._remask_specs.get(s)
        if spec is None:
            spec = self.config.remask
            if spec == "build":
                spec = _spec_from_dict(self._shards[s].config["mask"])
            self._remask_specs[s] = spec
        return spec

    def remask(self, i: int, hr: np.ndarray, landmarks: np.ndarray, epoch: int | None = None) -> dict:
        """The epoch's fresh mask for item ``i``: ``{"mask", "hr_occluded", "lr", "params", "fill"}`` (u8)."""
        s = int(self._shard_of[i])
        shard = self._shards[s]
        cfg = shard.config
        e = self.epoch if epoch is None else int(epoch)
        seed = int(cfg["seed"] if self.config.remask_seed is None else self.config.remask_seed)
        key = self.key(i)
        params = masks.sample_params(self._remask_spec(s), rng_for(seed, key, f"remask:epoch={e}"), landmarks,
                                     shard.hr_size)
        mask = masks.render(params, shard.hr_size)
        fill_cfg = self.config.fill if self.config.fill is not None else FillConfig(**cfg["fill"])
        fill = sample_fill(fill_cfg, rng_for(seed, key, f"remask-fill:epoch={e}"))
        hr_occ = apply_fill(hr, mask, fill)
        lr = resize.resize(hr_occ, shard.lr_size, cfg["resize_rule"])
        return {"mask": mask, "hr_occluded": hr_occ, "lr": lr, "params": params, "fill": fill}

    # -- items
    def __getitem__(self, i):
        if isinstance(i, (list, tuple, np.ndarray, range)):
            return self.get_batch(i)
        return self.get_item(int(i))

    def get_item(self, i: int, epoch: int | None = None) -> dict:
        """Item ``i`` as numpy arrays (see the module docstring for keys, shapes and ranges)."""
        n = len(self._row)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} items")
        i %= n
        s = int(self._shard_of[i])
        r = int(self._row[i])
        shard = self._shards[s]
        sh = self._handle(s)
        H, L = shard.hr_size, shard.lr_size
        cfg = self.config
        lut = _lut(cfg.range)
        hr8 = sh.read("hr", r, np.empty((H, H, 3), np.uint8))
        lm = sh.landmarks[r].copy()
        item = {}
        if cfg.remask is not None:
            rm = self.remask(i, hr8, lm, epoch)
            occ8, mask8, lr8 = rm["hr_occluded"], rm["mask"], rm["lr"]
            mask_kind, hole = rm["params"]["kind"], masks.hole_ratio(mask8)
        else:
            occ8 = sh.read("hr_occluded", r, np.empty((H, H, 3), np.uint8))
            mask8 = sh.read("mask", r, np.empty((H, H), np.uint8))
            lr8 = sh.read("lr", r, np.empty((L, L, 3), np.uint8))
            mask_kind, hole = self._mask_kind[i].decode(), float(self._hole_ratio[i])
        item["lr"] = _chw_float(lr8, lut)
        item["hr"] = _chw_float(hr8, lut)
        item["hr_occluded"] = _chw_float(occ8, lut)
        mask = np.empty((1, H, H), np.float32)
        np.copyto(mask[0], mask8, casting="unsafe")
        item["mask"] = mask
        if cfg.lr_clean:
            item["lr_clean"] = _chw_float(sh.read("lr_clean", r, np.empty((L, L, 3), np.uint8)), lut)
        item["landmarks"] = lm
        heat = {}
        for spec in cfg.heatmaps:
            grouping, size = heatmaps_mod.parse_spec(spec)
            if self._use_stored(shard, spec):
                c = heatmaps_mod.channels(grouping)
                heat[spec] = _u8_to_unit(sh.read(f"heatmaps/{spec}", r, np.empty((c, size, size), np.uint8)))
            else:
                heat[spec] = heatmaps_mod.render(lm, grouping, size, self._sigma(shard), frame=H)
        item["heatmaps"] = heat
        item["key"] = self.keys_bytes[i].decode("utf-8")
        item["index"] = i
        item["split"] = self._split[i].decode("utf-8")
        item["subject"] = self._subject[i].decode("utf-8")
        item["mask_kind"] = mask_kind
        item["hole_ratio"] = hole
        return item

    def get_batch(self, indices, epoch: int | None = None) -> dict:
        """Items ``indices`` stacked along a new first axis (strings / ints / floats as lists).

        Equal to stacking ``get_item`` results; handy as ``DataLoader(ds, sampler=BatchSampler(...),
        batch_size=None)``, which skips per-item collation.
        """
        items = [self.get_item(int(i), epoch) for i in indices]
        return collate_numpy(items)


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


def iterate_numpy(sources, config: LoaderConfig = LoaderConfig(), *, seed: int = 0, epoch: int = 0, rank: int = 0,
                  world_size: int = 1, shuffle: bool = False, drop_last: bool = False, pad: bool = False,
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


# ----------------------------------------------------------------------------- torch (lazy)

def _to_torch(obj):
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    return obj


def _make_torch_classes():
    import torch
    from torch.utils.data import Dataset, Sampler

    class ShardDataset(Dataset):
        """torch ``Dataset`` over built shards; items are ``ShardReader`` items with tensors.

        ``ds[i]`` is one item (dict of tensors / str / int / float; see ``occface.data``);
        ``ds[list_of_indices]`` is a stacked batch (use with ``BatchSampler`` and
        ``batch_size=None``).  Worker-safe: each DataLoader worker opens its own files on
        first use.  ``set_epoch(e)`` selects the re-mask draws; the epoch lives in shared
        memory, so it reaches forked, spawned and persistent workers alike: call it before
        ``iter(loader)`` (workers prefetch as soon as the iterator is created).
        """

        def __init__(self, sources, config: LoaderConfig = LoaderConfig()):
            self.reader = sources if isinstance(sources, ShardReader) else ShardReader(sources, config)
            self.config = self.reader.config
            self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

        def __len__(self):
            return len(self.reader)

        def set_epoch(self, epoch: int) -> None:
            self.reader.set_epoch(epoch)
            self._epoch.fill_(int(epoch))

        @property
        def epoch(self) -> int:
            return int(self._epoch)

        def __getitem__(self, i):
            e = int(self._epoch)
            if isinstance(i, (list, tuple, np.ndarray, range, torch.Tensor)):
                return _to_torch(self.reader.get_batch([int(j) for j in i], e))
            return _to_torch(self.reader.get_item(int(i), e))

        def key(self, i: int) -> str:
            return self.reader.key(i)

    class ShardSampler(Sampler):
        """Deterministic, epoch-dependent, rank-partitioned order (see :func:`epoch_order`).

        ``data_source``: the dataset (or its length).  ``rank`` / ``world_size`` default to
        ``torch.distributed`` when it is initialised, else 0 / 1.  ``set_epoch(e)`` also
        calls ``set_epoch`` on the dataset when it has one, so re-masking follows the epoch.
        """

        def __init__(self, data_source, *, seed: int = 0, rank: int | None = None, world_size: int | None = None,
                     shuffle: bool = True, drop_last: bool = False, pad: bool = False):
            self.data_source = data_source
            self.n = data_source if isinstance(data_source, int) else len(data_source)
            if rank is None or world_size is None:
                dist = torch.distributed
                on = dist.is_available() and dist.is_initialized()
                rank = (dist.get_rank() if on else 0) if rank is None else rank
                world_size = (dist.get_world_size() if on else 1) if world_size is None else world_size
            self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
            self.shuffle, self.drop_last, self.pad = shuffle, drop_last, pad
            self.epoch = 0
            self._order()  # validate now

        def _order(self):
            return epoch_order(self.n, seed=self.seed, epoch=self.epoch, rank=self.rank, world_size=self.world_size,
                               shuffle=self.shuffle, drop_last=self.drop_last, pad=self.pad)

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)
            if hasattr(self.data_source, "set_epoch"):
                self.data_source.set_epoch(epoch)

        def __iter__(self):
            return iter(self._order().tolist())

        def __len__(self):
            return len(self._order())

    ShardDataset.__module__ = ShardSampler.__module__ = __name__
    ShardDataset.__qualname__, ShardSampler.__qualname__ = "ShardDataset", "ShardSampler"
    return {"ShardDataset": ShardDataset, "ShardSampler": ShardSampler}


def __getattr__(name):  # PEP 562: torch is imported only when a torch class is asked for
    if name in ("ShardDataset", "ShardSampler"):
        globals().update(_make_torch_classes())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ShardDataset / ShardSampler are left out of __all__ so that ``import *`` does not import torch.
__all__ = ["LoaderConfig", "ShardReader", "epoch_order", "iterate_numpy", "collate_numpy", "DataError", "RANGES",
           "HEATMAP_SOURCES"]
