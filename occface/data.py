"""Training-side view of built shards: a torch ``Dataset`` and a framework-free numpy iterator.

Quick start, the recommended (fast) path: uint8 batches built in one go, float on the GPU::

    from occface.data import (LoaderConfig, ShardDataset, ShardSampler, collate, to_float, add_heatmaps,
                              PRO_UIGAN, iterate_numpy)

    cfg = LoaderConfig(split="train", heatmaps=("fhc4@64",), dtype="uint8", memory_format="channels_last")
    ds = ShardDataset("/data/occ_build", cfg)                # torch: items hold tensors
    sampler = ShardSampler(ds, seed=0, rank=rank, world_size=world, shuffle=True, drop_last=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=sampler, num_workers=8,
                                         collate_fn=collate, pin_memory=True)   # batched fetch
    for epoch in range(n_epochs):
        sampler.set_epoch(epoch)                             # also calls ds.set_epoch(epoch)
        for batch in loader:
            batch = to_float(batch, cfg.range, device="cuda")    # uint8 over the bus, float32 on the GPU
            ...

For big heatmap sets (the Pro-UIGAN 7@16 + 42@32 + 68@64 is 323 KB/item even as uint8), load
landmarks only (``heatmaps=()``) and render on the GPU: ``batch = add_heatmaps(batch, PRO_UIGAN,
sigma=ds.reader.heatmap_sigma)`` (:func:`render_heatmaps_torch`, exact float32).

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

Normalisation (``LoaderConfig.range``), for the uint8 pixel value ``x``: ``"[0,1]"`` gives
``x * float32(1/255)``, ``"[-1,1]"`` gives ``x * float32(1/127.5) - 1``, in float32 arithmetic
(less than 2e-7 from ``x / 255`` and ``x / 127.5 - 1``; 0 -> 0.0 / -1.0 and 255 -> 1.0 exactly).
Only the three images and ``lr_clean`` are normalised; ``mask`` and ``heatmaps`` are always
[0, 1] and ``landmarks`` are pixels.  ``LoaderConfig(dtype="uint8")`` returns the images, mask
and heatmaps as uint8 instead (0..255, {0, 1}, ``round(255 h)``): 4x smaller, cheaper to
produce and to ship from workers; :func:`to_float` then gives exactly the float32 items
(numpy, or torch on any device).

Batches: ``ShardReader.get_batch`` and ``ShardDataset.__getitems__`` (which ``DataLoader``
calls with the indices of a batch) fill one preallocated buffer per batch straight from the
memory maps, shard by shard in row order, and return it in the requested order: the same
values as stacking the items (tested), without per-item dicts.  Pass ``collate_fn=collate``
so the DataLoader keeps that batch as it is (other collate functions still work: they get
the items).  ``LoaderConfig(memory_format="channels_last")`` gives batch images with
``torch.channels_last`` strides (same shape and values): the shard's (H, W, 3) bytes copied
as they are, the fastest transport.

Heatmaps: ``occface.heatmaps.render(landmarks, grouping, S, sigma)`` (exact float32), or, with
``heatmap_source="auto"`` (the default) and when the shard stores that spec with the same sigma,
the stored ``uint8`` map as ``v * float32(1/255)`` (quantised: within 1/510 of the rendered
value, peak still 1.0).  Reading is several times faster than rendering for 64x64 sets, see
docs/benchmarks.md.  ``"render"`` always renders; ``"stored"`` insists on stored maps.

Files are opened lazily, once per process: building the dataset reads the manifests and every
shard's ``meta/`` (keys, splits) and closes the files; the first item a process reads from a
shard opens an h5py handle and a read-only mmap of it (tagged with the process, so nothing is
used across ``fork``; pickling drops handles).  Image chunks are uncompressed and one per
sample, so their byte offsets are taken from the chunk index once and a sample is a view into
the mmap, copied into the item; other layouts fall back to h5py.

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
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import heatmaps as heatmaps_mod
from . import masks, resize
from .occlude import FillConfig, apply_fill, sample_fill
from .seeding import rng_for

RANGES = ("[0,1]", "[-1,1]")
HEATMAP_SOURCES = ("auto", "render", "stored")
DTYPES = ("float32", "uint8")
MEMORY_FORMATS = ("contiguous", "channels_last")
IMAGE_KEYS = ("lr", "hr", "hr_occluded", "lr_clean")


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
    dtype: ``"float32"`` (items as documented) or ``"uint8"``: images 0..255, mask {0, 1} and
        heatmaps ``round(255 h)`` as uint8 (landmarks stay float32), 4x smaller and several
        times faster to produce; :func:`to_float` (numpy or torch, e.g. on the GPU) turns such
        an item or batch into exactly the float32 one (rendered heatmaps: the quantised values).
    memory_format: strides of the *batch* images (``lr``, ``hr``, ``hr_occluded``, ``lr_clean``;
        ``get_batch``, ``ShardDataset.__getitems__``): ``"contiguous"`` (B, 3, H, W) planes, or
        ``"channels_last"``: the same shape and values with ``torch.channels_last`` strides, i.e.
        the shard's (H, W, 3) bytes copied as they are (no deinterleave on the loader's CPU; the
        fastest transport, docs/data.md).  Items (``get_item``, ``ds[i]``) are always contiguous.
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
    dtype: str = "float32"
    memory_format: str = "contiguous"

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
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {self.memory_format!r}")
        if self.heatmap_source not in HEATMAP_SOURCES:
            raise ValueError(f"heatmap_source must be one of {HEATMAP_SOURCES}, got {self.heatmap_source!r}")
        if self.heatmap_sigma is not None and not self.heatmap_sigma > 0:
            raise ValueError("heatmap_sigma must be > 0")
        if isinstance(self.remask, dict):
            object.__setattr__(self, "remask", masks.spec_from_dict(self.remask))
        elif isinstance(self.remask, str) and self.remask != "build":
            raise ValueError(f"remask must be None, a mask spec or 'build', got {self.remask!r}")
        if self.remask_seed is not None and self.remask_seed < 0:
            raise ValueError("remask_seed must be >= 0")

    def splits(self) -> tuple[str, ...] | None:
        if self.split is None:
            return None
        return (self.split,) if isinstance(self.split, str) else tuple(self.split)


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

# (pid, fork generation) of this process: handles opened under another value belong to a parent.
# Refreshed after every fork, so the per-item check costs no getpid() system call.
_PROCESS = [(os.getpid(), 0)]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PROCESS.__setitem__(0, (os.getpid(), _PROCESS[0][1] + 1)))


class _OpenShard:
    """One process's handles on one shard: the h5py file, a read-only mmap, chunk offsets, landmarks.

    Image datasets written by occface are uncompressed with one chunk per sample, so a sample is
    a contiguous byte range: its offset comes from the chunk index (read once), and the sample
    is a zero-copy view into the mmap (no system call per read; 1.5-2x faster than ``pread`` and
    5x faster than ``h5py`` selection here).  Views never leave the reader: every item array is a
    fresh copy.  Datasets with any other layout are read through h5py.
    """

    def __init__(self, path: str):
        import h5py

        self.path = path
        self.file = h5py.File(path, "r")
        self.landmarks = self.file["landmarks"][...].astype(np.float32, copy=False)
        self._mm = None
        self._base = None
        self._layout: dict[str, tuple | None] = {}
        self._rows: dict[str, tuple] = {}

    def close(self):
        self._layout = {}
        self._rows = {}
        self._base = None
        if self._mm is not None:
            try:
                self._mm.close()
            except (BufferError, ValueError):  # a view is still referenced somewhere: let GC do it
                pass
            self._mm = None
        try:
            self.file.close()
        except Exception:  # noqa: BLE001 - a handle inherited across fork may not close cleanly; it is dropped
            pass

    def _plain_offsets(self, ds) -> np.ndarray | None:
        """Byte offset of every sample's chunk when ``ds`` is uncompressed u8 with one chunk per sample."""
        n = ds.shape[0]
        if not n or ds.dtype != np.uint8 or ds.chunks != (1, *ds.shape[1:]):
            return None
        if ds.id.get_create_plist().get_nfilters() != 0:
            return None
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
            for k in range(ds.id.get_num_chunks()):
                visit(ds.id.get_chunk_info(k))
        return off if ok[0] and (off >= 0).all() else None

    def layout(self, name: str):
        """(offsets or None, sample shape, bytes per sample) of dataset ``name``."""
        lay = self._layout.get(name)
        if lay is None:
            ds = self.file[name]
            off = self._plain_offsets(ds)
            if off is not None and self._base is None:
                import mmap

                with open(self.path, "rb") as fh:
                    self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                self._base = np.frombuffer(self._mm, np.uint8)
            lay = self._layout[name] = (off, ds.shape[1:], int(np.prod(ds.shape[1:])))
        return lay

    def rows(self, name: str):
        """(``R``, byte offsets as a list) with ``R[offsets[row]]`` the read-only view of sample ``row``.

        ``R`` is one strided view of the whole map (sample shape, one row per byte offset), so a
        sample is a single indexing operation.  (None, None) for datasets read through h5py.
        """
        v = self._rows.get(name)
        if v is None:
            off, shape, nbytes = self._layout.get(name) or self.layout(name)
            if off is None:
                v = (None, None)
            else:
                from numpy.lib.stride_tricks import as_strided

                strides = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
                v = (as_strided(self._base, (len(self._base) - nbytes + 1, *shape), (1, *strides), writeable=False),
                     off.tolist())
            self._rows[name] = v
        return v

    def view(self, name: str, row: int) -> np.ndarray:
        """Sample ``row`` of u8 dataset ``name``: a read-only view into the mmap (or an h5py read)."""
        off, shape, nbytes = self._layout.get(name) or self.layout(name)
        if off is None:
            return self.file[name][row]
        o = int(off[row])
        return self._base[o : o + nbytes].reshape(shape)


# ----------------------------------------------------------------------------- conversion

# x -> x * scale (- offset), float32 arithmetic; both ends exact: 0 -> 0.0 / -1.0, 255 -> 1.0.
_SCALE = {"[0,1]": (np.float32(1 / 255), None), "[-1,1]": (np.float32(1 / 127.5), np.float32(1))}
_UNIT = np.float32(1 / 255)  # heatmaps and masks are always [0, 1]


_CV2 = []


def _cv2():
    if not _CV2:
        import cv2

        _CV2.append(cv2)
    return _CV2[0]


def _image(src: np.ndarray, dtype, scale, offset) -> np.ndarray:
    """(h, w, 3) u8 -> a fresh (3, h, w) array: the u8 planes, or float32 ``x * scale - offset``."""
    h, w = src.shape[:2]
    planes = np.empty((3, h, w), np.uint8)
    (_CV2[0] if _CV2 else _cv2()).split(src, [planes[0], planes[1], planes[2]])
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
    scale, offset = _SCALE[range]
    if device is not None:
        batch = _move(batch, device, non_blocking)
    out = dict(batch)
    for k in IMAGE_KEYS:
        if k in out:
            out[k] = _affine(out[k], scale, offset)
    if "mask" in out:
        out["mask"] = _affine(out["mask"], None, None)
    if "heatmaps" in out:
        out["heatmaps"] = {spec: _affine(v, _UNIT, None) for spec, v in out["heatmaps"].items()}
    return out


def _move(batch: dict, device, non_blocking: bool) -> dict:
    import torch

    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=non_blocking)
        elif isinstance(v, dict):
            v = {s: t.to(device, non_blocking=non_blocking) if isinstance(t, torch.Tensor) else t for s, t in v.items()}
        out[k] = v
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


def _group_plan(grouping: str):
    plan = _GROUP_PLANS.get(grouping)
    if plan is None:
        groups = heatmaps_mod.GROUPINGS[grouping]
        order = np.array([p for g in groups for p in g], np.intp)
        bounds = None
        if not all(len(g) == 1 for g in groups):
            ends = np.cumsum([len(g) for g in groups]).tolist()
            bounds = list(zip([0] + ends[:-1], ends))
        plan = _GROUP_PLANS[grouping] = (order, bounds)
    return plan


_GROUP_PLANS: dict = {}


def render_heatmaps(landmarks: np.ndarray, grouping: str, size: int, sigma: float = 1.0,
                    frame: int = 128) -> np.ndarray:
    """Same values as ``occface.heatmaps.render`` (tested bit for bit), faster.

    Computes the profiles of only the points the grouping uses, in one vectorised pass:
    float64 Gaussian profiles rounded to float32, then their float32 outer products (and,
    for grouped channels, the max over each group's products).
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


def render_heatmaps_uint8(landmarks: np.ndarray, grouping: str, size: int, sigma: float = 1.0,
                          frame: int = 128) -> np.ndarray:
    """``heatmaps.to_uint8(heatmaps.render(...))`` bit for bit (tested), without the float maps.

    A value below 0.5/255 quantises to 0, so each point only needs the window where its
    Gaussian reaches 0.5/255 (radius ~3.5 sigma).  Inside, the values are the same float32
    products as ``render``, quantised; they are written into a zeroed uint8 array (grouped
    channels take the max, which commutes with the monotonic quantisation).
    """
    order, bounds = _group_plan(grouping)
    p = (np.asarray(landmarks, np.float64)[order] + 0.5) * (size / frame) - 0.5  # (P, 2)
    radius = sigma * np.sqrt(2.0 * np.log(2.0 * 255.0)) + 1e-9
    width = int(np.floor(2 * radius)) + 2
    if size * size <= 4 * width * width:  # small maps: windows buy nothing
        return heatmaps_mod.to_uint8(render_heatmaps(landmarks, grouping, size, sigma, frame))
    start = np.floor(p - radius).astype(np.int64) + 1  # first integer coordinate inside the window
    ax = start[:, :, None] + np.arange(width)  # (P, 2, W): candidate columns (x) and rows (y)
    prof = np.exp(-((ax - p[:, :, None]) ** 2) / (2 * sigma**2)).astype(np.float32)
    q = heatmaps_mod.to_uint8(prof[:, 1, :, None] * prof[:, 0, None, :])  # (P, W, W) rows x columns
    inside = (ax >= 0) & (ax < size)
    keep = inside[:, 1, :, None] & inside[:, 0, None, :]
    n = len(order)
    chan = np.arange(n) if bounds is None else np.repeat(np.arange(len(bounds)), [b - a for a, b in bounds])
    cc = np.broadcast_to(chan[:, None, None], keep.shape)[keep]
    yy = np.broadcast_to(ax[:, 1, :, None], keep.shape)[keep]
    xx = np.broadcast_to(ax[:, 0, None, :], keep.shape)[keep]
    out = np.zeros((n if bounds is None else len(bounds), size, size), np.uint8)
    if bounds is None:
        out[cc, yy, xx] = q[keep]  # one point per channel: windows never collide
    else:
        np.maximum.at(out, (cc, yy, xx), q[keep])
    return out


PRO_UIGAN = ("pu7@16", "pu42@32", "all68@64")  # the public Pro-UIGAN heatmap set


def render_heatmaps_torch(landmarks, grouping: str, size: int, sigma: float = 1.0, frame: int = 128):
    """``occface.heatmaps.render`` for a batch, in torch on the landmarks' device: (B, C, S, S) float32.

    ``landmarks``: (B, 68, 2) (or one (68, 2) face, giving (C, S, S)) tensor of (x, y) in
    ``frame`` pixels.  Same arithmetic as the numpy renderer: float64 point positions and
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


def add_heatmaps(batch: dict, specs=PRO_UIGAN, sigma: float = 1.0, frame: int = 128) -> dict:
    """``batch`` with ``batch["heatmaps"][spec]`` rendered from ``batch["landmarks"]`` (torch, on their device).

    The device-side half of ``LoaderConfig(heatmaps=())``: ship landmarks, render on the GPU
    (:func:`render_heatmaps_torch`, exact float32 like ``heatmap_source="render"``).  ``sigma``
    in heatmap pixels: pass ``dataset.reader.heatmap_sigma`` for the build's.  Other heatmaps
    already in the batch are kept.  Returns a new dict; the input is not modified.
    """
    if isinstance(specs, str):
        specs = (specs,)
    out = dict(batch)
    heat = dict(out.get("heatmaps") or {})
    for spec in specs:
        grouping, size = heatmaps_mod.parse_spec(spec)
        heat[spec] = render_heatmaps_torch(batch["landmarks"], grouping, size, sigma, frame)
    out["heatmaps"] = heat
    return out


class _LazyRng:
    """``rng_for(*args)``, built on first use: fills that draw nothing skip the SHA-256 + SeedSequence."""

    def __init__(self, *args):
        self._args = args
        self._rng = None

    def __getattr__(self, name):
        if self._rng is None:
            self._rng = rng_for(*self._args)
        return getattr(self._rng, name)


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
        self._key = cat("key", "S1")
        self._split = cat("split", "S1")
        self._subject = cat("subject", "S1")
        self._mask_kind = cat("mask_kind", "S1")
        self._hole_ratio = cat("hole_ratio", np.float32)
        self._dtype = np.uint8 if config.dtype == "uint8" else np.float32
        self._scale = _SCALE[config.range]
        self._remask_specs: dict[int, object] = {}
        self._heat_plans: dict[int, list] = {}
        self._pid = None
        self._open: dict[int, _OpenShard] = {}

    # -- pickling / fork safety
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = {}
        state["_pid"] = None
        return state

    def _handle(self, s: int) -> _OpenShard:
        if self._pid != _PROCESS[0]:  # first use in this process (or inherited across fork): never reuse
            self._open = {}
            self._pid = _PROCESS[0]
        sh = self._open.get(s)
        if sh is None:
            sh = self._open[s] = _OpenShard(self._shards[s].path)
        return sh

    def close(self) -> None:
        """Close this process's handles (they reopen on the next read)."""
        if self._pid == _PROCESS[0]:
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
    def heatmap_sigma(self) -> float:
        """Heatmap sigma (heatmap pixels): ``LoaderConfig.heatmap_sigma``, else the builds' (for ``add_heatmaps``)."""
        if self.config.heatmap_sigma is not None:
            return float(self.config.heatmap_sigma)
        sigmas = {float(s.config["heatmap_sigma"]) for s in self._shards}
        if len(sigmas) > 1:
            raise DataError(f"the builds use different heatmap sigmas {sorted(sigmas)}: set LoaderConfig.heatmap_sigma")
        return sigmas.pop() if sigmas else 1.0

    @property
    def shard_paths(self) -> list[str]:
        return [s.path for s in self._shards]

    def key(self, i: int) -> str:
        """Stable sample key of item ``i``."""
        return self._key[i].decode("utf-8")

    def keys(self) -> list[str]:
        """Stable sample keys of all items, in dataset order."""
        return [k.decode("utf-8") for k in self._key]

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
        sigma = self.config.heatmap_sigma
        return sigma is None or float(sigma) == float(shard.config["heatmap_sigma"])

    def _remask_spec(self, s: int):
        spec = self._remask_specs.get(s)
        if spec is None:
            spec = self.config.remask
            if spec == "build":
                spec = masks.spec_from_dict(self._shards[s].config["mask"])
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
        fill = sample_fill(fill_cfg, _LazyRng(seed, key, f"remask-fill:epoch={e}"))
        hr_occ = apply_fill(hr, mask, fill)
        lr = resize.resize(hr_occ, shard.lr_size, cfg["resize_rule"])
        return {"mask": mask, "hr_occluded": hr_occ, "lr": lr, "params": params, "fill": fill}

    # -- items
    def __getitem__(self, i):
        if isinstance(i, (list, tuple, np.ndarray, range)):
            return self.get_batch(i)
        return self.get_item(int(i))

    def _heat_plan(self, s: int) -> list:
        """Per shard: (spec, grouping, size, dataset name, stored?, sigma) for every requested heatmap."""
        plan = self._heat_plans.get(s)
        if plan is None:
            shard = self._shards[s]
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
        n = len(self._row)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} items")
        if i < 0:
            i += n
        s = int(self._shard_of[i])
        r = int(self._row[i])
        sh = self._handle(s)
        cfg = self.config
        dt = self._dtype
        scale, offset = self._scale
        hr_src = sh.view("hr", r)
        lm = sh.landmarks[r].copy()
        if cfg.remask is not None:
            rm = self.remask(i, hr_src, lm, epoch)
            occ_src, mask_src, lr_src = rm["hr_occluded"], rm["mask"], rm["lr"]
            kind, hole = rm["params"]["kind"], masks.hole_ratio(mask_src)
        else:
            occ_src = sh.view("hr_occluded", r)
            mask_src = sh.view("mask", r)
            lr_src = sh.view("lr", r)
            kind, hole = self._mask_kind[i].decode("utf-8"), float(self._hole_ratio[i])
        H = mask_src.shape[0]
        item = {
            "lr": _image(lr_src, dt, scale, offset),
            "hr": _image(hr_src, dt, scale, offset),
            "hr_occluded": _image(occ_src, dt, scale, offset),
            "mask": mask_src.astype(dt).reshape(1, H, H),
        }
        if cfg.lr_clean:
            item["lr_clean"] = _image(sh.view("lr_clean", r), dt, scale, offset)
        item["landmarks"] = lm
        heat = {}
        for spec, grouping, size, dsname, stored, sigma in self._heat_plans.get(s) or self._heat_plan(s):
            if stored:
                v = sh.view(dsname, r)
                if dt is np.uint8:
                    hm = v.copy()
                else:
                    hm = v.astype(np.float32)
                    hm *= _UNIT
            elif dt is np.uint8:
                hm = render_heatmaps_uint8(lm, grouping, size, sigma, H)
            else:
                hm = render_heatmaps(lm, grouping, size, sigma, H)
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
        idx = self._indices(indices)
        if not len(idx):
            return {}
        layout, nbytes = self.batch_layout(len(idx))
        batch = self.fill_batch(idx, np.empty(nbytes, np.uint8), layout, epoch)
        batch["index"] = batch["index"].tolist()
        batch["hole_ratio"] = batch["hole_ratio"].tolist()
        return batch

    def _indices(self, indices) -> np.ndarray:
        idx = np.array(indices, dtype=np.int64).reshape(-1)
        n = len(self._row)
        if len(idx) and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"index {bad} out of range for {n} items")
        idx[idx < 0] += n
        return idx

    def batch_layout(self, batch_size: int) -> tuple[list, int]:
        """Where each field of a batch of ``batch_size`` lives in one flat byte buffer.

        Returns ``([(name, spec, shape, dtype, offset, channels_last), ...], total_bytes)``:
        ``spec`` is the heatmap spec for ``name == "heatmaps"`` (else ``None``), ``shape`` the
        batch array's shape; ``channels_last`` images are stored (B, h, w, 3) and shown as
        (B, 3, h, w) views.  Offsets are 64-byte aligned.  ``index`` (int64) and
        ``hole_ratio`` (float64) are in the buffer too, so a batch is one allocation (one
        shared-memory segment when made in a DataLoader worker).
        """
        B = int(batch_size)
        H, L = self.hr_size, self.lr_size
        dt = np.dtype(self._dtype)
        cl = self.config.memory_format == "channels_last"
        fields = [("lr", None, (B, 3, L, L), dt, cl), ("hr", None, (B, 3, H, H), dt, cl),
                  ("hr_occluded", None, (B, 3, H, H), dt, cl), ("mask", None, (B, 1, H, H), dt, False)]
        if self.config.lr_clean:
            fields.append(("lr_clean", None, (B, 3, L, L), dt, cl))
        fields.append(("landmarks", None, (B, 68, 2), np.dtype(np.float32), False))
        for spec in self.config.heatmaps:
            grouping, size = heatmaps_mod.parse_spec(spec)
            fields.append(("heatmaps", spec, (B, heatmaps_mod.channels(grouping), size, size), dt, False))
        fields += [("index", None, (B,), np.dtype(np.int64), False),
                   ("hole_ratio", None, (B,), np.dtype(np.float64), False)]
        out, off = [], 0
        for name, spec, shape, dtype, chl in fields:
            out.append((name, spec, shape, dtype, off, chl))
            off += -(-math.prod(shape) * dtype.itemsize // 64) * 64
        return out, max(off, 64)

    def fill_batch(self, idx: np.ndarray, buffer: np.ndarray, layout: list, epoch: int | None = None) -> dict:
        """Fill ``buffer`` (flat uint8, laid out by :meth:`batch_layout`) with items ``idx``; return the batch.

        The batch holds views of ``buffer`` (``index`` and ``hole_ratio`` as arrays, strings as
        lists).  Reads go shard by shard in row order (locality in the maps and the page cache)
        and land at each item's position in ``idx``.  Per field and item it is one copy out of
        the shard's mmap (a view from :meth:`_OpenShard.rows`, no numpy call per read): a plain
        row copy for masks, stored heatmaps and channels-last images; ``cv2.split`` into the
        (3, H, W) planes for contiguous HR images; for contiguous LR images, row copies into an
        (h, w, 3) scratch and one transpose per batch (each measured faster than the
        alternatives here).  Shards of another layout are read through h5py.  In float32 mode
        the uint8 rows go to a scratch batch first and are converted per item with the same
        float32 arithmetic as :meth:`get_item`.
        """
        cfg = self.config
        B = len(idx)
        e = self.epoch if epoch is None else int(epoch)
        floating = self._dtype is not np.uint8
        out: dict = {}
        heat: dict = {}
        raw: dict = {}  # name -> the array as laid out in the buffer ((B, h, w, 3) for channels-last images)
        hwc: dict = {}
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
        img_names = ["lr", "hr", "hr_occluded"] + (["lr_clean"] if cfg.lr_clean else [])
        # uint8 targets: the outputs themselves, or a scratch batch in float32 mode
        u8 = {k: (np.empty(raw[k].shape, np.uint8) if floating else raw[k]) for k in img_names + ["mask"]}
        u8_heat = dict(heat) if not floating else {}  # float32 mode: uint8 scratch made on first use

        def heat_u8(spec):
            if spec not in u8_heat:
                u8_heat[spec] = np.empty(heat[spec].shape, np.uint8)
            return u8_heat[spec]

        # what is copied straight from the maps: (dataset, target, split into planes?)
        copies = []
        small = {}  # contiguous LR images: (B, h, w, 3) scratch, transposed once at the end
        for name in ((["hr"] if cfg.remask is not None else ["lr", "hr", "hr_occluded"])
                     + (["lr_clean"] if cfg.lr_clean else [])):
            tgt = u8[name]
            if hwc[name]:
                copies.append((name, tgt, False))
            elif tgt[0].nbytes >= _SPLIT_MIN_BYTES:
                copies.append((name, tgt, True))
            else:
                small[name] = np.empty((B, tgt.shape[2], tgt.shape[3], 3), np.uint8)
                copies.append((name, small[name], False))
        if cfg.remask is None:
            copies.append(("mask", u8["mask"].reshape(B, *u8["mask"].shape[2:]), False))
        split = (_CV2[0] if _CV2 else _cv2()).split
        shard_of, rows = self._shard_of[idx], self._row[idx]
        order = np.lexsort((rows, shard_of))
        bounds = [0, *(np.flatnonzero(np.diff(shard_of[order])) + 1).tolist(), B]
        ks_all, rs_all = order.tolist(), rows[order].tolist()
        hole = out["hole_ratio"]
        kinds: list = [None] * B
        lm_out = out["landmarks"]
        for a, b in zip(bounds[:-1], bounds[1:]):
            s = int(shard_of[order[a]])
            sh = self._handle(s)
            grp = order[a:b]
            rs = rows[grp]
            lm_out[grp] = sh.landmarks[rs]
            plan = self._heat_plans.get(s) or self._heat_plan(s)
            fields = copies + [(dsname, heat_u8(spec), False) for spec, _, _, dsname, stored, _ in plan if stored]
            maps = [sh.rows(name) for name, _, _ in fields]
            if all(m[0] is not None for m in maps):  # one view + one copy per field and item, no numpy calls
                splits = [(m[0], m[1], t) for m, (_, t, sp) in zip(maps, fields) if sp]
                plain = [(m[0], m[1], t) for m, (_, t, sp) in zip(maps, fields) if not sp]
                for k, r in zip(ks_all[a:b], rs_all[a:b]):
                    for rows_, offs, t in splits:
                        split(rows_[offs[r]], t[k])
                    for rows_, offs, t in plain:
                        t[k] = rows_[offs[r]]
            else:  # another layout (e.g. recompressed shards): h5py reads, one selection per field
                for name, t, sp in fields:
                    (_copy_images if sp else _copy_rows)(sh, name, grp, rs, t)
            if cfg.remask is not None:
                for k, r in zip(grp.tolist(), rs.tolist()):
                    rm = self.remask(int(idx[k]), sh.view("hr", r), sh.landmarks[r].copy(), e)
                    for name in ("hr_occluded", "lr"):
                        if hwc[name]:
                            u8[name][k] = rm[name]
                        else:
                            split(rm[name], u8[name][k])
                    u8["mask"][k, 0] = rm["mask"]
                    kinds[k] = rm["params"]["kind"]
                    hole[k] = masks.hole_ratio(rm["mask"])
            H = self._shards[s].hr_size
            for spec, grouping, size, _, stored, sigma in plan:
                if stored and floating:
                    src, dst = u8_heat[spec], heat[spec]
                    for k in grp.tolist():
                        np.multiply(src[k], _UNIT, out=dst[k])
                elif not stored:
                    render = render_heatmaps if floating else render_heatmaps_uint8
                    tgt = heat[spec]
                    for k in grp.tolist():
                        tgt[k] = render(lm_out[k], grouping, size, sigma, H)
        for name, scratch in small.items():
            u8[name][...] = scratch.transpose(0, 3, 1, 2)
        if floating:
            scale, offset = self._scale
            for name in img_names:
                src, dst = u8[name], raw[name]
                for k in range(B):  # per item: the float passes stay in cache
                    np.multiply(src[k], scale, out=dst[k])
                    if offset is not None:
                        np.subtract(dst[k], offset, out=dst[k])
            np.copyto(out["mask"], u8["mask"])
        if cfg.remask is None:
            hole[:] = self._hole_ratio[idx]
            kinds = [k.decode("utf-8") for k in self._mask_kind[idx].tolist()]
        out["index"][:] = idx
        batch = {k: out[k] for k in ("lr", "hr", "hr_occluded", "mask")}
        if cfg.lr_clean:
            batch["lr_clean"] = out["lr_clean"]
        batch["landmarks"] = lm_out
        batch["heatmaps"] = heat
        batch["key"] = [k.decode("utf-8") for k in self._key[idx].tolist()]
        batch["index"] = out["index"]
        batch["split"] = [k.decode("utf-8") for k in self._split[idx].tolist()]
        batch["subject"] = [k.decode("utf-8") for k in self._subject[idx].tolist()]
        batch["mask_kind"] = kinds
        batch["hole_ratio"] = hole
        return batch



def _copy_rows(sh: _OpenShard, name: str, ks: np.ndarray, rs: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = dataset[name][r]`` for each (k, r) of (ks, rs) (rs ascending), any layout."""
    rows, off = sh.rows(name)
    flat = out.reshape(len(out), -1)
    if rows is None:  # h5py: one selection of the unique, increasing rows
        uniq, inv = np.unique(rs, return_inverse=True)
        flat[ks] = sh.file[name][uniq].reshape(len(uniq), -1)[inv]
        return
    for k, r in zip(ks.tolist(), rs.tolist()):
        flat[k] = rows[off[r]].reshape(-1)


_SPLIT_MIN_BYTES = 4096  # contiguous HR images: cv2.split per row; LR: row copies + one transpose (measured)


def _copy_images(sh: _OpenShard, name: str, ks: np.ndarray, rs: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = dataset[name][r].transpose(2, 0, 1)``: (h, w, 3) rows into (3, h, w) planes, any layout."""
    rows, off = sh.rows(name)
    if rows is None:
        uniq, inv = np.unique(rs, return_inverse=True)
        out[ks] = sh.file[name][uniq][inv].transpose(0, 3, 1, 2)
        return
    split = (_CV2[0] if _CV2 else _cv2()).split
    for k, r in zip(ks.tolist(), rs.tolist()):
        split(rows[off[r]], out[k])


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


# ----------------------------------------------------------------------------- torch (lazy)

def _to_torch(item: dict) -> dict:
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


class CollatedItems(Sequence):
    """What ``ShardDataset.__getitems__`` returns: a batch's items that already hold the collated batch.

    ``.batch`` is the batch (dict of tensors, built in one go by :meth:`ShardDataset.get_batch`);
    :func:`collate` returns it as is.  It is also a sequence of the items (``len``, ``[k]``:
    per-item views of the batch), as torch's ``__getitems__`` contract asks, so any other
    ``collate_fn`` (``default_collate`` included) still gets the items and builds the same batch,
    only slower (it copies them again).
    """

    __slots__ = ("batch",)

    def __init__(self, batch: dict):
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch["key"])

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        item = {}
        for name, v in self.batch.items():
            if name == "heatmaps":
                item[name] = {spec: t[k] for spec, t in v.items()}
            elif name in ("index", "hole_ratio"):
                item[name] = v[k].item()
            else:
                item[name] = v[k]
        return item


def collate(items) -> dict:
    """``collate_fn`` for ``DataLoader(ShardDataset)``: ``DataLoader(ds, batch_size=B, collate_fn=collate)``.

    With ``ShardDataset`` (which has ``__getitems__``) the DataLoader hands over a
    :class:`CollatedItems` whose batch was built in one go from the shards (the fast path,
    docs/data.md): it is returned as is, no copy.  An already-collated dict is passed through
    too (arrays become tensors).  A plain list of items (another dataset, or ``ds[i]`` items)
    is stacked: in the main process by numpy, whose large allocations use transparent huge
    pages (``default_collate``'s page faults cost 3-4x the copy for float32 batches,
    docs/benchmarks.md); in DataLoader workers by ``default_collate``, which writes straight
    into the shared memory the batch travels in.  Output types equal ``default_collate``'s:
    tensors, ``index`` int64 and ``hole_ratio`` float64 tensors, lists of strings.
    """
    if isinstance(items, CollatedItems):
        return items.batch
    if isinstance(items, Mapping):
        return _to_torch(items)
    import torch
    from torch.utils.data import default_collate, get_worker_info

    if get_worker_info() is not None:
        return default_collate(items)
    first = items[0]
    out = {}
    for k, v in first.items():
        if isinstance(v, torch.Tensor):
            out[k] = torch.from_numpy(np.stack([it[k].numpy() for it in items]))
        elif isinstance(v, dict):
            out[k] = {spec: torch.from_numpy(np.stack([it[k][spec].numpy() for it in items])) for spec in v}
        elif isinstance(v, (bool, str)):
            out[k] = [it[k] for it in items]
        elif isinstance(v, (int, float)):
            out[k] = torch.tensor([it[k] for it in items], dtype=torch.int64 if isinstance(v, int) else torch.float64)
        else:
            out[k] = default_collate([it[k] for it in items])
    return out


_TORCH_DTYPES: dict = {}


def _torch_batch(reader: ShardReader, indices, epoch: int) -> dict:
    """The DataLoader batch of ``indices``: one buffer (shared memory in a worker) filled by ``fill_batch``."""
    import torch
    from torch.utils.data import get_worker_info

    if not _TORCH_DTYPES:
        _TORCH_DTYPES.update({np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32,
                              np.dtype(np.int64): torch.int64, np.dtype(np.float64): torch.float64})
    idx = reader._indices(indices)
    layout, nbytes = reader.batch_layout(len(idx))
    if get_worker_info() is not None:  # allocate where the batch travels to the main process, as default_collate does
        e = torch.empty(0, dtype=torch.uint8)
        try:
            flat = e.new(e._typed_storage()._new_shared(nbytes, device="cpu"))
        except (AttributeError, TypeError):  # private API moved: shared all the same, one copy more
            flat = torch.empty(nbytes, dtype=torch.uint8).share_memory_()
        buf = flat.numpy()
    else:  # numpy: large allocations get transparent huge pages (fewer page faults)
        buf = np.empty(nbytes, np.uint8)
        flat = torch.from_numpy(buf)
    nb = reader.fill_batch(idx, buf, layout, epoch)
    out = dict(nb)
    heat = {}
    for name, spec, shape, dtype, off, chl in layout:
        t = flat[off : off + math.prod(shape) * dtype.itemsize].view(_TORCH_DTYPES[dtype])
        if chl:  # (B, h, w, 3) in the buffer: (B, 3, h, w) in torch.channels_last strides
            t = t.view(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2)
        else:
            t = t.view(shape)
        if name == "heatmaps":
            heat[spec] = t
        else:
            out[name] = t
    out["heatmaps"] = heat
    return out


def _make_torch_classes():
    import torch
    from torch.utils.data import Dataset, Sampler

    class ShardDataset(Dataset):
        """torch ``Dataset`` over built shards; items are ``ShardReader`` items with tensors.

        ``ds[i]`` is one item (dict of tensors / str / int / float; see ``occface.data``);
        ``ds[list_of_indices]`` is a stacked batch (use with ``BatchSampler`` and
        ``batch_size=None``).  With ``DataLoader(ds, batch_size=B, collate_fn=collate)`` the
        loader fetches whole batches through :meth:`__getitems__` (the fast path).
        Worker-safe: each DataLoader worker opens its own files on first use.  ``set_epoch(e)``
        selects the re-mask draws; the epoch lives in shared memory, so it reaches forked,
        spawned and persistent workers alike: call it before ``iter(loader)`` (workers
        prefetch as soon as the iterator is created).
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

        def __getitems__(self, indices) -> CollatedItems:
            """The batched fetch DataLoader uses (torch >= 2.0): one collated batch, see :func:`collate`."""
            return CollatedItems(self.get_batch(indices))

        def get_batch(self, indices) -> dict:
            """The batch of ``indices`` as ``default_collate`` would stack ``[ds[i] for i in indices]``.

            Tensors (``index`` int64, ``hole_ratio`` float64), lists of strings; equal to the
            per-item path (tested) but built by :meth:`ShardReader.fill_batch` into one buffer,
            allocated in shared memory inside DataLoader workers.
            """
            return _torch_batch(self.reader, indices, int(self._epoch))

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
            n, w = self.n, self.world_size
            if self.drop_last:
                return n // w
            if self.pad:
                return -(-n // w)
            return len(range(self.rank, n, w))

    ShardDataset.__module__ = ShardSampler.__module__ = __name__
    ShardDataset.__qualname__, ShardSampler.__qualname__ = "ShardDataset", "ShardSampler"
    return {"ShardDataset": ShardDataset, "ShardSampler": ShardSampler}


def __getattr__(name):  # PEP 562: torch is imported only when a torch class is asked for
    if name in ("ShardDataset", "ShardSampler"):
        globals().update(_make_torch_classes())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ShardDataset / ShardSampler are left out of __all__ so that ``import *`` does not import torch.
__all__ = ["LoaderConfig", "ShardReader", "epoch_order", "iterate_numpy", "collate_numpy", "collate", "to_float",
           "render_heatmaps", "render_heatmaps_uint8", "render_heatmaps_torch", "add_heatmaps", "CollatedItems",
           "DataError", "RANGES", "HEATMAP_SOURCES", "DTYPES", "MEMORY_FORMATS", "PRO_UIGAN"]
