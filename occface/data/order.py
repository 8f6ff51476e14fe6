"""Visiting order of an epoch: a pure function of (seed, epoch), partitioned over ranks."""

from __future__ import annotations

import numpy as np


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
