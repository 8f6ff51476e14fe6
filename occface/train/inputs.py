"""What the loop feeds on: the loader's uint8 batches, planned by step, turned into model inputs."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from ..data.convert import as_torch, to_float
from ..faces import heatmaps as heatmaps_mod
from ..runtime import move
from .config import TrainConfig
from .distributed import DistContext
from .schedule import batch_plan


def heatmap_note(cfg: TrainConfig, data: str) -> str | None:
    """One plain sentence when the build does not store the heatmaps this run trains on (so the
    loader renders them from the landmarks in its workers, every batch), else ``None``."""
    from ..format.manifest import load_manifest

    if cfg.heatmaps_on_device or not cfg.loader.heatmaps:
        return None
    bcfg = load_manifest(data)["config"]
    stored = tuple(bcfg.get("heatmaps", ()))
    sigma_ok = cfg.loader.heatmap_sigma is None or float(cfg.loader.heatmap_sigma) == float(bcfg["heatmap_sigma"])
    missing = [s for s in cfg.loader.heatmaps if s not in stored or not sigma_ok]
    if not missing:
        return None
    return (f"{data} stores heatmaps {', '.join(stored) or 'none'}, not {', '.join(missing)} that this model "
            f"trains on: the loader renders them from the landmarks in its workers on every batch (exact, "
            f"but CPU time); to store them, build with heatmaps {','.join(cfg.loader.heatmaps)}")


def prepare_batch(batch: dict, cfg: TrainConfig, device: torch.device, sigma: float = 1.0):
    """A loader batch -> (lr, hr, [heatmaps per block]) float32 on ``device``, [-1, 1].
    ``sigma``: heatmap sigma for ``cfg.heatmaps_on_device`` (the build's)."""
    b = to_float(move(batch, device, non_blocking=device.type == "cuda"), "[-1,1]")
    lr, hr = b["lr"], b["hr"]
    if cfg.heatmaps_on_device:
        hms = [heatmaps_mod.render_torch(b["landmarks"], *heatmaps_mod.parse_spec(s), sigma, hr.shape[-1])
               for s in cfg.model.heatmap_specs]
    else:
        hms = [b["heatmaps"][s] for s in cfg.model.heatmap_specs]
    if cfg.channels_last:
        lr, hr = (t.contiguous(memory_format=torch.channels_last) for t in (lr, hr))
        hms = [t.contiguous(memory_format=torch.channels_last) for t in hms]
    return lr, hr, hms


def mean_heatmaps(data, cfg: TrainConfig, sigma: float, n: int = 2048) -> list[torch.Tensor]:
    """The mean ground-truth heatmaps of (up to) ``n`` training faces of ``data``, evenly spaced
    over the train split in dataset order, per block: (L1, 16, 16), (L2, 32, 32), (L3, 64, 64),
    float32 (the heatmap templates' initial value).  A pure function of the data."""
    import numpy as np

    from ..evaluate.blocks import split_landmarks

    lm = split_landmarks(data, "train")
    if not len(lm):
        raise ValueError("no training faces to take the mean heatmaps from")
    lm = torch.from_numpy(np.ascontiguousarray(lm[np.linspace(0, len(lm) - 1, min(n, len(lm))).round().astype(int)]))
    out = []
    for spec in cfg.model.heatmap_specs:
        grouping, side = heatmaps_mod.parse_spec(spec)
        total = torch.zeros(heatmaps_mod.channels(grouping), side, side)
        for chunk in lm.split(256):
            total += heatmaps_mod.render_torch(chunk, grouping, side, sigma).sum(0)
        out.append(total / len(lm))
    return out


def mean_landmarks(data) -> torch.Tensor:
    """(68, 2) float32: the mean landmarks (128 frame) of the train split of ``data`` (a points
    prior's starting shape).  A pure function of the data."""
    from ..evaluate.blocks import split_landmarks
    from ..evaluate.landmarks import mean_shape

    lm = split_landmarks(data, "train")
    if not len(lm):
        raise ValueError("no training faces to take the mean shape from")
    return torch.from_numpy(mean_shape(lm).astype("float32"))


class _PlannedBatches(torch.utils.data.Dataset):
    """DataLoader view: item ``(epoch, position, n, indices)`` -> ((epoch, position, n),
    uint8 batch).  The epoch travels with the indices (re-masking draws that epoch's
    masks), so one DataLoader, with one set of workers, streams across epoch boundaries."""

    def __init__(self, reader, index=None):
        self.reader = reader
        self.index = index

    def __getitem__(self, plan):
        epoch, k, n, idx = plan
        if self.index is not None:
            idx = [int(self.index[i]) for i in idx]
        return (epoch, k, n), as_torch(self.reader.get_batch(list(idx), epoch))


class _Plan:
    def __init__(self, it):
        self.it = it

    def __iter__(self):
        return self.it


def repeat_index(counts: list[int], repeat: tuple[int, ...]):
    """The epoch's item list when source ``j`` (``counts[j]`` samples, in reader order) is
    listed ``repeat[j]`` times: an int64 array of reader indices; ``None`` for no repeats."""
    import numpy as np

    if not repeat or all(r == 1 for r in repeat):
        return None
    if len(repeat) != len(counts):
        raise ValueError(f"data_repeat has {len(repeat)} entries for {len(counts)} builds")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return np.concatenate([np.tile(np.arange(s, s + n, dtype=np.int64), r)
                           for s, n, r in zip(starts, counts, repeat)])


def loader(reader, cfg: TrainConfig, dist: DistContext, device: torch.device, epoch: int, pos: int,
           index=None):
    """Iterator of ((epoch, position, batches per epoch), uint8 batch) from (epoch, pos) on.
    ``index``: the epoch's items as reader indices (:func:`repeat_index`); None: every item once."""
    plan = _Plan(batch_plan(len(reader) if index is None else len(index), cfg, dist, epoch, pos))
    return iter(DataLoader(_PlannedBatches(reader, index), sampler=plan, batch_size=None,
                           collate_fn=_unpack, num_workers=cfg.num_workers,
                           pin_memory=device.type == "cuda",
                           generator=torch.Generator()))  # never touches the global RNG


def _unpack(item):
    return item
