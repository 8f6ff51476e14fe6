"""The schedule as pure functions of the global step: stages, learning rates, batch order."""

from __future__ import annotations

import numpy as np

from ..data.order import epoch_order
from ..errors import DataError
from .config import TrainConfig
from .distributed import DistContext


def stage_bounds(cfg: TrainConfig) -> list[tuple[int, int]]:
    """[start, end) global steps of stages 1, 2, 3."""
    ends = np.cumsum(cfg.stage_steps).tolist()
    return [(e - s, e) for s, e in zip(cfg.stage_steps, ends)]


def stage_of(step: int, cfg: TrainConfig) -> int:
    """Stage (1, 2, 3) that global step ``step`` belongs to (3 once the run is done)."""
    for k, (_, end) in enumerate(stage_bounds(cfg)):
        if step < end:
            return k + 1
    return 3


def lr_at(step: int, cfg: TrainConfig) -> dict[str, float]:
    """Learning rate of every parameter group trained at ``step`` (a pure function).

    Groups: ``block1`` (with the landmark prior), ``block2``, ``block3``, ``local_d``,
    ``global_d``; only those the step's stage trains are present.
    """
    stage = stage_of(step, cfg)
    b1, b2, b3 = cfg.lrs
    if stage == 1:
        lrs = {"block1": b1}
        if cfg.stage1_adversarial:
            lrs["local_d"] = cfg.lr_d
    elif stage == 2:
        lrs = {"block1": b1, "block2": b2} if cfg.stage2_trains == "blocks12" else {"block2": b2}
    else:
        lrs = {"block1": b1, "block2": b2, "block3": b3, "local_d": cfg.lr_d, "global_d": cfg.lr_d}
    if cfg.warmup_steps:
        start = stage_bounds(cfg)[stage - 1][0]
        scale = min(1.0, (step - start + 1) / cfg.warmup_steps)
        lrs = {k: v * scale for k, v in lrs.items()}
    return lrs


def batch_plan(n: int, cfg: TrainConfig, dist: DistContext, epoch: int = 0, pos: int = 0):
    """This rank's batches from (epoch, pos) on, forever: (epoch, position, batches per
    epoch, dataset indices).

    ``epoch_order(n, seed, epoch, rank, world_size, drop_last=True)`` gives rank r the slice
    ``perm[r::w]`` of the epoch's permutation; it is cut into batches of B/w, so global
    batch k is ``perm[k*B:(k+1)*B]`` whatever w is, and an epoch has ``n // B`` steps.
    """
    per_rank = cfg.batch_size // dist.world_size
    while True:
        order = epoch_order(n, seed=cfg.seed, epoch=epoch, rank=dist.rank, world_size=dist.world_size,
                            shuffle=True, drop_last=True).tolist()
        n_batches = len(order) // per_rank
        if n_batches == 0:
            raise DataError(f"{n} training samples cannot fill one batch of {cfg.batch_size}")
        for k in range(pos, n_batches):
            yield epoch, k, n_batches, tuple(order[k * per_rank:(k + 1) * per_rank])
        epoch, pos = epoch + 1, 0
