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
sigma=ds.reader.heatmap_sigma)`` (:func:`occface.faces.heatmaps.render_torch`, exact float32).

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

Heatmaps: ``occface.faces.heatmaps.render(landmarks, grouping, S, sigma)`` (exact float32), or, with
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
``occface.faces.resize.resize(hr_occluded, L, resize_rule)`` with the build's own rule: exactly what
the build would have stored for that mask.  ``seed`` is ``remask_seed`` or the build's seed.
Occluders are painted instead of filled; on a build with a degradation chain the LR is the
sample's stored draw (``meta/degrade``) applied to the re-masked face.  Re-degrading
(``LoaderConfig(redegrade=spec)``) draws the chain afresh from
``rng_for(seed, k, f"redegrade:epoch={e}")`` (docs/degrade.md).

Shuffling and DDP: :func:`epoch_order` (plain numpy) and :class:`ShardSampler` (torch) give
rank ``r`` of ``w`` the slice ``perm[r::w]`` of one permutation drawn from
``PCG64(SeedSequence([seed, epoch]))``; see :func:`epoch_order` for the padding modes.

Modules: :mod:`.config` (LoaderConfig), :mod:`.order` (epoch order, DDP), :mod:`.store` (the
index and lazy per-process handles), :mod:`.batch` (one-buffer batches), :mod:`.convert`
(float ranges, tensors, devices), :mod:`.reader` (ShardReader, iterate_numpy) and
:mod:`.pytorch` (ShardDataset, ShardSampler, collate).  Importing this package does not import
torch: the names of :mod:`.pytorch` are loaded on first access (PEP 562), so the numpy path
works where torch is not installed.
"""

from ..faces.heatmaps import PRO_UIGAN
from .config import DTYPES, HEATMAP_SOURCES, IMAGE_KEYS, MEMORY_FORMATS, RANGES, DataError, LoaderConfig
from .convert import add_heatmaps, as_torch, collate_numpy, to_float
from .order import epoch_order
from .reader import ShardReader, iterate_numpy

_TORCH_NAMES = ("ShardDataset", "ShardSampler", "collate", "CollatedItems")


def __getattr__(name):  # PEP 562: torch is imported only when a torch name is asked for
    if name in _TORCH_NAMES:
        from . import pytorch

        return getattr(pytorch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The torch names are left out of __all__ so that ``import *`` does not import torch.
__all__ = ["LoaderConfig", "ShardReader", "epoch_order", "iterate_numpy", "collate_numpy", "to_float", "as_torch",
           "add_heatmaps", "DataError", "RANGES", "HEATMAP_SOURCES", "DTYPES", "MEMORY_FORMATS", "IMAGE_KEYS",
           "PRO_UIGAN"]
