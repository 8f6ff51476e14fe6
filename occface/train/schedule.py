"""The schedule as pure functions of the global step: stages, learning rates, batch order."""

from __future__ import annotations

import math

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


def decay_factor(step: int, cfg: TrainConfig) -> float:
    """The LR decay multiplier at ``step`` within its stage (a pure function of the step).

    ``"none"``: 1.  ``"cosine"``: from 1 at the stage's first step to ``lr_decay_min`` at its
    last, half a cosine.  ``"step"``: ``lr_decay_gamma`` to the power of the number of
    ``lr_decay_milestones`` (fractions of the stage) already passed.
    """
    if cfg.lr_decay == "none":
        return 1.0
    start, end = stage_bounds(cfg)[stage_of(step, cfg) - 1]
    frac = min(max((step - start) / max(end - start - 1, 1), 0.0), 1.0)
    if cfg.lr_decay == "cosine":
        return cfg.lr_decay_min + (1.0 - cfg.lr_decay_min) * 0.5 * (1.0 + math.cos(math.pi * frac))
    passed = sum(1 for m in cfg.lr_decay_milestones if step - start >= m * (end - start))
    return cfg.lr_decay_gamma ** passed


def lr_at(step: int, cfg: TrainConfig) -> dict[str, float]:
    """Learning rate of every parameter group trained at ``step`` (a pure function).

    Groups: ``block1`` (with the landmark prior), ``block2``, ``block3``, ``local_d``,
    ``global_d``; only those the step's stage trains are present (a discriminator only when
    the loss uses its adversarial term).  Warm-up (linear, from each stage's start) and the
    decay (:func:`decay_factor`) multiply every group.
    """
    stage = stage_of(step, cfg)
    b1, b2, b3 = cfg.lrs
    local, glob = cfg.loss.uses_local_d, cfg.loss.uses_global_d
    if stage == 1:
        lrs = {"block1": b1}
        if cfg.stage1_adversarial and local:
            lrs["local_d"] = cfg.lr_d
    elif stage == 2:
        lrs = {"block1": b1, "block2": b2} if cfg.stage2_trains == "blocks12" else {"block2": b2}
    else:
        lrs = {"block1": b1, "block2": b2, "block3": b3}
        if local:
            lrs["local_d"] = cfg.lr_d
        if glob:
            lrs["global_d"] = cfg.lr_d
    scale = decay_factor(step, cfg)
    if cfg.warmup_steps:
        start = stage_bounds(cfg)[stage - 1][0]
        scale *= min(1.0, (step - start + 1) / cfg.warmup_steps)
    if scale != 1.0:
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
