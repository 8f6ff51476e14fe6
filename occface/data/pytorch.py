"""torch glue: :class:`ShardDataset`, :class:`ShardSampler` and :func:`collate` (imports torch).

A thin layer over :class:`~occface.data.reader.ShardReader` (webdataset's ``pytorch.py``
idea): items become tensors sharing the reader's arrays, and the DataLoader's batched
fetch (``__getitems__``) builds one batch in one buffer, in shared memory inside workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, default_collate, get_worker_info

from .config import LoaderConfig
from .convert import as_torch
from .order import epoch_order
from .reader import ShardReader


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
        return as_torch(items)
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


_TORCH_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32,
                 np.dtype(np.int64): torch.int64, np.dtype(np.float64): torch.float64}


def _torch_batch(reader: ShardReader, indices, epoch: int) -> dict:
    """The DataLoader batch of ``indices``: one buffer (shared memory in a worker) filled by ``fill_batch``."""
    idx = reader.indices(indices)
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
            return as_torch(self.reader.get_batch([int(j) for j in i], e))
        return as_torch(self.reader.get_item(int(i), e))

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
