"""Training the Pro-UIGAN reference model (``occface train-ref``; docs/training.md).

The paper's three steps (seeds/000 §III-G), as consecutive stages of one run:

1. pre-train UI-block 1 (and the learned landmark prior) with L_net1 (Eq. 12), whose
   ψ·L_adv^l term needs Local-D: Local-D is trained on block 1's 16x16 central crops
   alongside (``stage1_adversarial=False`` drops the term instead);
2. pre-train UI-block 2 with L_net2 (Eq. 13); block 1 is initialised and frozen
   (``stage2_trains="blocks12"`` trains it too);
3. train the whole generator with L_G (Eq. 15) and Local-D / Global-D with Eqs. 8, 9.
   Per-block learning rates 1e-4, 1e-4, 1e-3 (``lrs``); Adam.

Each stage starts with fresh Adam states.  The step counter runs across stages: steps
``[0, s1)`` are stage 1, ``[s1, s1+s2)`` stage 2, then stage 3.  A stage of 0 steps is
skipped.  Per step: generator forward; discriminator update on the detached outputs;
generator update against the updated (frozen) discriminators.

Data order is a pure function of ``(seed, epoch)`` (``occface.data.epoch_order``): global
batch ``k`` of an epoch is ``perm[k*B:(k+1)*B]`` whatever the number of ranks, so a
checkpoint stores only ``(epoch, position)``.  Nothing in a step draws random numbers;
torch's CPU (and CUDA) generator states are saved and restored all the same.

Checkpoints (plain dicts, :func:`save_checkpoint` = ``torch.save`` to a temporary file,
fsync, ``os.replace``): ``last.pt`` every ``ckpt_every`` steps, at a stop and at the end
of every stage; ``stage{k}.pt`` at the end of stage ``k``; ``generator.pt`` (the generator
and the metadata only, for ``validate`` / ``hallucinate``) whenever ``last.pt`` is written.
A non-finite loss stops the run with :class:`NonFiniteLoss` before anything is written, so
``last.pt`` is always the last good state.  ``run.json`` holds the resolved config, the data manifest's
SHA-256 and the versions; every checkpoint holds the same.

The library reads no environment variables: the CLI maps torchrun's ``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT`` onto
:func:`init_distributed` and the VGG variables onto ``TrainConfig.vgg16`` / ``vgg19`` /
``vgg_hub_dir``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .config import to_dict
from .data import LoaderConfig, to_float
from .model import (GlobalDiscriminator, LocalDiscriminator, LossWeights, ProUIGANConfig,
                    ProUIGANLoss, ProUIGenerator)
from .model.config import HR_SIZE

CHECKPOINT_FORMAT = "occface-train-checkpoint"
CHECKPOINT_VERSION = 1
AMP_MODES = ("none", "bf16")
STAGE2_TRAINS = ("block2", "blocks12")
#: TrainConfig fields that do not change the trained weights (on one device); they may
#: differ when a run is resumed.  Every other field must equal the checkpoint's.
EXECUTION_FIELDS = ("device", "num_workers", "ckpt_every", "log_every", "image_every",
                    "grid_size", "compile", "vgg16", "vgg19", "vgg_hub_dir")


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or inf; the run stopped without writing a checkpoint."""


class ConfigMismatch(ValueError):
    """``resume`` found a checkpoint written with a different config or data."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.  Frozen; ``to_dict`` gives its JSON.

    ``stage_steps``: optimiser steps of stages 1, 2, 3 (0 skips a stage).
    ``batch_size``: the *global* batch (split evenly over the ranks).
    ``lrs``: Adam learning rates of UI-blocks 1, 2, 3 (block 1's group includes the
    learned landmark prior); ``lr_d`` of both discriminators (paper: not stated).
    ``warmup_steps``: linear warm-up at the start of every stage (0: none).
    ``loader``: ``None`` derives the paper's inputs from ``model``: the train split, the
    model's heatmap sets, ``[-1,1]``, uint8 batches converted on the device.
    ``heatmaps_on_device``: render the model's ground-truth heatmaps from the landmarks on
    the training device (``occface.data.render_heatmaps_torch``, exact float32, the build's
    sigma) instead of loading them: smaller shards, less loader work.
    """

    model: ProUIGANConfig = field(default_factory=ProUIGANConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    loader: LoaderConfig | None = None
    stage_steps: tuple[int, int, int] = (10_000, 10_000, 40_000)
    batch_size: int = 64
    lrs: tuple[float, float, float] = (1e-4, 1e-4, 1e-3)
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    stage1_adversarial: bool = True
    stage2_trains: str = "block2"
    seed: int = 0
    amp: str = "none"
    channels_last: bool = False
    no_vgg: bool = False
    heatmaps_on_device: bool = False
    # --- execution (EXECUTION_FIELDS): may change on resume
    device: str = "cpu"
    num_workers: int = 0
    ckpt_every: int = 1000
    log_every: int = 10
    image_every: int = 500
    grid_size: int = 8
    compile: bool = False
    vgg16: str | None = None
    vgg19: str | None = None
    vgg_hub_dir: str | None = None

    def __post_init__(self):
        steps = tuple(int(s) for s in self.stage_steps)
        if len(steps) != 3 or min(steps) < 0:
            raise ValueError(f"stage_steps must be three integers >= 0, got {self.stage_steps!r}")
        object.__setattr__(self, "stage_steps", steps)
        object.__setattr__(self, "lrs", tuple(float(v) for v in self.lrs))
        object.__setattr__(self, "betas", tuple(float(v) for v in self.betas))
        if len(self.lrs) != 3 or min(self.lrs) <= 0 or self.lr_d <= 0:
            raise ValueError("lrs must be three positive rates and lr_d positive")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.stage2_trains not in STAGE2_TRAINS:
            raise ValueError(f"stage2_trains must be one of {STAGE2_TRAINS}")
        if min(self.ckpt_every, self.log_every, self.image_every) < 1 or self.warmup_steps < 0:
            raise ValueError("ckpt_every, log_every and image_every must be >= 1, warmup_steps >= 0")
        if self.loader is None:
            object.__setattr__(self, "loader", LoaderConfig(
                split="train", heatmaps=() if self.heatmaps_on_device else self.model.heatmap_specs,
                range="[-1,1]", dtype="uint8"))
        if self.loader.range != "[-1,1]":
            raise ValueError('the generator works on [-1, 1]: loader.range must be "[-1,1]"')
        missing = [s for s in self.model.heatmap_specs if s not in self.loader.heatmaps]
        if missing and not self.heatmaps_on_device:
            raise ValueError(f"loader.heatmaps lacks the model's ground-truth heatmaps {missing}")

    @property
    def total_steps(self) -> int:
        return sum(self.stage_steps)


# ----------------------------------------------------------------------------- schedule

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


def _generator_groups(g: ProUIGenerator) -> dict[str, list[torch.nn.Parameter]]:
    block1 = list(g.blocks[0].parameters()) + (list(g.prior.parameters()) if g.prior is not None else [])
    return {"block1": block1, "block2": list(g.blocks[1].parameters()),
            "block3": list(g.blocks[2].parameters())}


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str, state: dict) -> None:
    """``torch.save`` to ``path + ".tmp"``, fsync, then ``os.replace``: a reader sees the
    old file or the new one, never a partial one."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    with contextlib.suppress(OSError):  # make the rename durable
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """A checkpoint written by :func:`train` (``weights_only`` loading)."""
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an occface training checkpoint")
    return ckpt


def model_config_from_dict(d: dict) -> ProUIGANConfig:
    """:class:`ProUIGANConfig` from its ``to_dict`` form (lists back to tuples)."""
    names = {f.name for f in dataclasses.fields(ProUIGANConfig)}
    return ProUIGANConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in d.items() if k in names})


def load_generator(path: str, device="cpu") -> tuple[ProUIGenerator, dict]:
    """The generator of a checkpoint (``last.pt``, ``stage{k}.pt`` or the generator-only
    ``generator.pt``), in eval mode on ``device``, and the checkpoint's metadata (step,
    stage, config, manifest hash; no tensors)."""
    ckpt = load_checkpoint(path)
    g = ProUIGenerator(model_config_from_dict(ckpt["config"]["model"]))
    g.load_state_dict(ckpt["generator"])
    info = {k: ckpt.get(k) for k in ("step", "stage", "config", "manifest_sha256",
                                     "occface_version", "epoch")}
    info["path"] = os.path.abspath(path)
    return g.to(device).eval(), info


def manifest_sha256(data: str) -> str:
    """SHA-256 of the build's manifest.json (``data``: build directory or manifest path)."""
    path = os.path.join(data, "manifest.json") if os.path.isdir(data) else data
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def build_heatmap_sigma(data: str, cfg: TrainConfig) -> float:
    """Heatmap sigma for rendering on the device: the loader's, else the build's."""
    if cfg.loader.heatmap_sigma is not None:
        return float(cfg.loader.heatmap_sigma)
    path = os.path.join(data, "manifest.json") if os.path.isdir(data) else data
    with open(path) as fh:
        return float(json.load(fh)["config"]["heatmap_sigma"])


def _math_config(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in EXECUTION_FIELDS}


def _check_resume(ckpt: dict, cfg_dict: dict, sha: str, path: str) -> None:
    want, have = _math_config(cfg_dict), _math_config(ckpt["config"])
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diff:
        lines = [f"  {k}: checkpoint {have.get(k)!r} vs now {want.get(k)!r}" for k in diff]
        raise ConfigMismatch(f"{path} was written with another config; only {EXECUTION_FIELDS} "
                             "may change on resume:\n" + "\n".join(lines))
    if ckpt["manifest_sha256"] != sha:
        raise ConfigMismatch(f"{path} was trained on other data (manifest sha256 "
                             f"{ckpt['manifest_sha256'][:12]}... vs {sha[:12]}...)")


# ----------------------------------------------------------------------------- distributed

@dataclass(frozen=True)
class DistContext:
    """This process's place in a torch.distributed job (process group already initialised)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def init_distributed(rank: int, world_size: int, local_rank: int, master_addr: str,
                     master_port: int | str, device: str = "cpu") -> DistContext:
    """Initialise torch.distributed explicitly (NCCL on CUDA, gloo on CPU).  The CLI passes
    torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT."""
    import torch.distributed as tdist

    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    tdist.init_process_group(backend, init_method=f"tcp://{master_addr}:{master_port}",
                             rank=rank, world_size=world_size)
    return DistContext(rank, world_size, local_rank)


# ----------------------------------------------------------------------------- helpers

def _move(batch: dict, device: torch.device) -> dict:
    nb = device.type == "cuda"
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=nb)
        elif isinstance(v, dict):
            v = {s: t.to(device, non_blocking=nb) for s, t in v.items()}
        out[k] = v
    return out


def prepare_batch(batch: dict, cfg: TrainConfig, device: torch.device, sigma: float = 1.0):
    """A loader batch -> (lr, hr, [heatmaps per block]) float32 on ``device``, [-1, 1].
    ``sigma``: heatmap sigma for ``cfg.heatmaps_on_device`` (the build's)."""
    b = to_float(_move(batch, device), "[-1,1]")
    lr, hr = b["lr"], b["hr"]
    if cfg.heatmaps_on_device:
        from . import heatmaps as heatmaps_mod
        from .data import render_heatmaps_torch

        hms = [render_heatmaps_torch(b["landmarks"], *heatmaps_mod.parse_spec(s), sigma, hr.shape[-1])
               for s in cfg.model.heatmap_specs]
    else:
        hms = [b["heatmaps"][s] for s in cfg.model.heatmap_specs]
    if cfg.channels_last:
        lr, hr = (t.contiguous(memory_format=torch.channels_last) for t in (lr, hr))
        hms = [t.contiguous(memory_format=torch.channels_last) for t in hms]
    return lr, hr, hms


def as_torch(batch: dict) -> dict:
    """A numpy batch (``ShardReader.get_batch``) with its arrays as tensors sharing memory."""
    out = {}
    for k, v in batch.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(v)
        elif isinstance(v, dict):
            v = {s: torch.from_numpy(a) for s, a in v.items()}
        out[k] = v
    return out


def _upsample(img: torch.Tensor, size: int = HR_SIZE) -> torch.Tensor:
    return img if img.shape[-1] == size else F.interpolate(img.float(), size=(size, size), mode="nearest")


def image_grid(rows: list[torch.Tensor], pad: int = 2) -> torch.Tensor:
    """Rows of (N, 3, h, w) images in [-1, 1] -> one (3, H, W) uint8 image: row r holds
    ``rows[r]`` (each upsampled to 128 with nearest neighbour), with ``pad`` px of white."""
    rows = [_upsample(r.detach().float().cpu()) for r in rows]
    n, s = rows[0].shape[0], HR_SIZE
    grid = torch.full((3, len(rows) * (s + pad) + pad, n * (s + pad) + pad), 255, dtype=torch.uint8)
    for i, r in enumerate(rows):
        u8 = ((r.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        for j in range(n):
            y, x = pad + i * (s + pad), pad + j * (s + pad)
            grid[:, y:y + s, x:x + s] = u8[j]
    return grid


def _autocast(device: torch.device, amp: str):
    return (torch.autocast(device.type, dtype=torch.bfloat16) if amp == "bf16"
            else contextlib.nullcontext())


def batch_plan(n: int, cfg: TrainConfig, dist: DistContext, epoch: int = 0, pos: int = 0):
    """This rank's batches from (epoch, pos) on, forever: (epoch, position, batches per
    epoch, dataset indices).

    ``ShardSampler(n, seed, rank, world_size, drop_last=True)`` gives rank r the slice
    ``perm[r::w]`` of the epoch's permutation; it is cut into batches of B/w, so global
    batch k is ``perm[k*B:(k+1)*B]`` whatever w is, and an epoch has ``n // B`` steps.
    """
    from .data import DataError, ShardSampler

    per_rank = cfg.batch_size // dist.world_size
    sampler = ShardSampler(n, seed=cfg.seed, rank=dist.rank, world_size=dist.world_size,
                           shuffle=True, drop_last=True)
    while True:
        sampler.set_epoch(epoch)
        order = list(iter(sampler))
        n_batches = len(order) // per_rank
        if n_batches == 0:
            raise DataError(f"{n} training samples cannot fill one batch of {cfg.batch_size}")
        for k in range(pos, n_batches):
            yield epoch, k, n_batches, tuple(order[k * per_rank:(k + 1) * per_rank])
        epoch, pos = epoch + 1, 0


class _PlannedBatches(torch.utils.data.Dataset):
    """DataLoader view: item ``(epoch, position, n, indices)`` -> ((epoch, position, n),
    uint8 batch).  The epoch travels with the indices (re-masking draws that epoch's
    masks), so one DataLoader, with one set of workers, streams across epoch boundaries."""

    def __init__(self, reader):
        self.reader = reader

    def __getitem__(self, plan):
        epoch, k, n, idx = plan
        return (epoch, k, n), as_torch(self.reader.get_batch(list(idx), epoch))


class _Plan:
    def __init__(self, it):
        self.it = it

    def __iter__(self):
        return self.it


def _loader(reader, cfg: TrainConfig, dist: DistContext, device: torch.device, epoch: int, pos: int):
    """Iterator of ((epoch, position, batches per epoch), uint8 batch) from (epoch, pos) on."""
    from torch.utils.data import DataLoader

    plan = _Plan(batch_plan(len(reader), cfg, dist, epoch, pos))
    return iter(DataLoader(_PlannedBatches(reader), sampler=plan, batch_size=None,
                           collate_fn=_unpack, num_workers=cfg.num_workers,
                           pin_memory=device.type == "cuda",
                           generator=torch.Generator()))  # never touches the global RNG


def _unpack(item):
    return item


def _agree(bad: torch.Tensor, time_up: bool, ddp: bool, device) -> tuple[bool, bool]:
    """(any rank saw a non-finite loss, any rank's time is up): one MAX all-reduce."""
    flags = torch.stack([bad.to(torch.int32), torch.tensor(int(time_up), dtype=torch.int32, device=device)])
    if ddp:
        import torch.distributed as tdist

        tdist.all_reduce(flags, op=tdist.ReduceOp.MAX)
    a, b = flags.tolist()
    return bool(a), bool(b)


def _tb_writer(out_dir: str):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(os.path.join(out_dir, "tb"))


# ----------------------------------------------------------------------------- train

def train(cfg: TrainConfig, data: str, out_dir: str, *, dist: DistContext | None = None,
          resume: bool = False, stop_at_step: int | None = None, max_seconds: float | None = None,
          progress: bool | None = None, log: Callable[[str], None] = print) -> dict:
    """Train (or, with ``resume``, continue) a run in ``out_dir`` on the build ``data``.

    ``dist``: this process's rank (None: one process).  ``stop_at_step`` / ``max_seconds``:
    stop early, after writing ``last.pt`` (a later ``resume`` continues bit-exactly on CPU).
    ``resume`` with no checkpoint in ``out_dir`` starts from scratch.  Returns a summary
    (steps, seconds, images/s, last checkpoint, peak GPU memory, last losses).
    """
    from .data import ShardReader

    dist = dist or DistContext()
    if cfg.batch_size % dist.world_size:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {dist.world_size} ranks")
    main = dist.rank == 0
    ddp = dist.world_size > 1
    device = torch.device(cfg.device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    os.makedirs(out_dir, exist_ok=True)
    last_path = os.path.join(out_dir, "last.pt")
    cfg_dict = to_dict(cfg)
    sha = manifest_sha256(data)
    sigma = build_heatmap_sigma(data, cfg)

    # ---- models, losses (seeded: identical on every rank)
    torch.manual_seed(cfg.seed)
    g = ProUIGenerator(cfg.model)
    local_d, global_d = LocalDiscriminator(cfg.model), GlobalDiscriminator(cfg.model)
    vgg = {"path": None, "hub_dir": cfg.vgg_hub_dir}
    criterion = ProUIGANLoss.from_weights(
        cfg.model, cfg.loss, without_vgg=cfg.no_vgg,
        vgg16={**vgg, "path": cfg.vgg16}, vgg19={**vgg, "path": cfg.vgg19})
    mem = torch.channels_last if cfg.channels_last else torch.contiguous_format
    for m in (g, local_d, global_d, criterion):
        m.to(device=device, memory_format=mem)

    # ---- state: fresh or resumed
    step, epoch, pos, opt_state = 0, 0, 0, None
    ckpt = None
    if os.path.exists(last_path):
        if not resume:
            raise FileExistsError(f"{out_dir} already holds a run ({last_path}); pass resume=True "
                                  "(--resume) to continue it, or choose a fresh output directory")
        ckpt = load_checkpoint(last_path)
        _check_resume(ckpt, cfg_dict, sha, last_path)
        g.load_state_dict(ckpt["generator"])
        local_d.load_state_dict(ckpt["discriminators"]["local"])
        global_d.load_state_dict(ckpt["discriminators"]["global"])
        step, epoch, pos = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["position"])
        opt_state = ckpt["optimizers"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            with contextlib.suppress(RuntimeError, IndexError):
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
        if main:
            log(f"resuming {last_path} at step {step} (stage {stage_of(step, cfg)}, epoch {epoch}, "
                f"batch {pos})")
    elif resume and main:
        log(f"no checkpoint in {out_dir}: starting from scratch")
    run_info = {"format": "occface-train-run", "config": cfg_dict, "data": os.path.abspath(data),
                "manifest_sha256": sha, "occface_version": __version__,
                "torch_version": str(torch.__version__), "world_size": dist.world_size}
    if main:
        run_json = os.path.join(out_dir, "run.json")
        if ckpt is None or not os.path.exists(run_json):
            tmp = run_json + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(run_info, fh, indent=1, sort_keys=True)
            os.replace(tmp, run_json)

    reader = ShardReader(data, cfg.loader)
    grid_batch = None
    writer = None
    if main:
        writer = _tb_writer(out_dir)
        test = ShardReader(data, dataclasses.replace(cfg.loader, split="test", remask=None))
        shown = test if len(test) else reader  # the grid shows test faces when there are any
        grid_batch = as_torch(shown.get_batch(list(range(min(cfg.grid_size, len(shown))))))
        log(f"training on {len(reader)} samples ({data}), global batch {cfg.batch_size} over "
            f"{dist.world_size} rank(s), device {device}, amp {cfg.amp}, stages {cfg.stage_steps}, "
            f"VGG {'off (--no-vgg)' if cfg.no_vgg else 'on'}")

    total = cfg.total_steps
    bounds = stage_bounds(cfg)
    state = {"stage": None, "opt_g": None, "opt_d": None, "g_run": None, "ld_run": None,
             "gd_run": None}
    groups = _generator_groups(g)

    def setup_stage(stage: int, saved: dict | None):
        lrs = lr_at(bounds[stage - 1][0], cfg)
        for name, ps in groups.items():
            for p in ps:
                p.requires_grad_(name in lrs)
        local_d.requires_grad_("local_d" in lrs)
        global_d.requires_grad_("global_d" in lrs)
        fused = {"fused": True} if device.type == "cuda" else {}
        opt_g = torch.optim.Adam([{"params": groups[n], "lr": lrs[n], "name": n}
                                  for n in ("block1", "block2", "block3") if n in lrs],
                                 betas=cfg.betas, **fused)
        d_groups = [{"params": list(m.parameters()), "lr": lrs[n], "name": n}
                    for n, m in (("local_d", local_d), ("global_d", global_d)) if n in lrs]
        opt_d = torch.optim.Adam(d_groups, betas=cfg.betas, **fused) if d_groups else None
        if saved is not None and saved.get("stage") == stage:
            opt_g.load_state_dict(saved["g"])
            if opt_d is not None:
                opt_d.load_state_dict(saved["d"])
        g_run, ld_run, gd_run = g, local_d, global_d
        if ddp:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            g_run = DDP(g, device_ids=ids)
            ld_run = DDP(local_d, device_ids=ids) if "local_d" in lrs else None
            gd_run = DDP(global_d, device_ids=ids) if "global_d" in lrs else None
        if cfg.compile:
            g_run = torch.compile(g_run)
        state.update(stage=stage, opt_g=opt_g, opt_d=opt_d, g_run=g_run, ld_run=ld_run,
                     gd_run=gd_run, d_on=[n for n in ("local_d", "global_d") if n in lrs])

    def checkpoint(paths: list[str], epoch_: int, pos_: int, losses: dict):
        if not main:
            return
        opt_d = state["opt_d"]
        cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        st = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": step,
              "stage": stage_of(step, cfg), "epoch": epoch_, "position": pos_,
              "generator": g.state_dict(),
              "discriminators": {"local": local_d.state_dict(), "global": global_d.state_dict()},
              "optimizers": {"stage": state["stage"], "g": state["opt_g"].state_dict(),
                             "d": opt_d.state_dict() if opt_d is not None else None},
              "rng": {"torch": torch.get_rng_state(), "cuda": cuda_rng},
              "config": cfg_dict, "manifest_sha256": sha, "occface_version": __version__,
              "torch_version": str(torch.__version__), "world_size": dist.world_size,
              "losses": losses}
        for p in paths:
            save_checkpoint(p, st)
        # the generator alone (what validate / hallucinate need; ~11 MB at the default widths)
        save_checkpoint(os.path.join(out_dir, "generator.pt"),
                        {k: v for k, v in st.items()
                         if k not in ("discriminators", "optimizers", "rng")})

    from tqdm.auto import tqdm

    show = main and (progress if progress is not None else True)
    bar = tqdm(total=total, initial=step, disable=not show, unit="step", dynamic_ncols=True)
    bad = torch.zeros((), dtype=torch.int32, device=device)
    t_start = time.perf_counter()
    t_log, steps_since_log, steps_run = t_start, 0, 0
    last_losses: dict = {}
    last_ips = float("nan")
    last_good = step if ckpt is not None else None
    stopped = False
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batches = _loader(reader, cfg, dist, device, epoch, pos) if step < total else iter(())
    try:
        for (epoch_, pos_, n_batches), batch in batches:
            stage = stage_of(step, cfg)
            if state["stage"] != stage:
                setup_stage(stage, opt_state)
                opt_state = None
                if main:
                    log(f"stage {stage}: steps {bounds[stage - 1][0]}..{bounds[stage - 1][1]}, "
                        f"lr {lr_at(step, cfg)}")
            lrs = lr_at(step, cfg)
            for opt in (state["opt_g"], state["opt_d"]):
                if opt is not None:
                    for grp in opt.param_groups:
                        grp["lr"] = lrs[grp["name"]]
            lr_img, hr, hms = prepare_batch(batch, cfg, device, sigma)
            blocks = stage  # stage k runs UI-blocks 1..k
            ld = local_d if "local_d" in state["d_on"] else None
            gd = global_d if "global_d" in state["d_on"] else None
            with _autocast(device, cfg.amp):
                out = state["g_run"](lr_img, hms[0], blocks=blocks)
            d_terms = {}
            if state["opt_d"] is not None:
                for m in (ld, gd):
                    if m is not None:
                        m.requires_grad_(True)
                with _autocast(device, cfg.amp):
                    d_loss, d_terms = criterion.discriminator_loss(
                        out, hr, state["ld_run"] if ld is not None else None,
                        state["gd_run"] if gd is not None else None)
                state["opt_d"].zero_grad(set_to_none=True)
                d_loss.backward()
                state["opt_d"].step()
                for m in (ld, gd):
                    if m is not None:
                        m.requires_grad_(False)
                bad |= ~torch.isfinite(d_loss.detach())
            with _autocast(device, cfg.amp):
                g_loss, g_terms = criterion.generator_loss(out, hr, hms, ld, gd)
            state["opt_g"].zero_grad(set_to_none=True)
            g_loss.backward()
            state["opt_g"].step()
            bad |= ~torch.isfinite(g_loss.detach())

            step += 1
            steps_run += 1
            steps_since_log += 1
            epoch_next, pos_next = (epoch_, pos_ + 1) if pos_ + 1 < n_batches else (epoch_ + 1, 0)
            bar.update(1)
            stage_end = step == bounds[stage - 1][1]
            stop_step = stop_at_step is not None and step >= stop_at_step
            stop = False
            if (step % cfg.log_every == 0 or step % cfg.ckpt_every == 0 or stage_end
                    or step == total or stop_step):
                # every step's losses went into `bad`; look at it (all ranks agree) before
                # logging or writing anything
                time_up = max_seconds is not None and time.perf_counter() - t_start >= max_seconds
                any_bad, time_up = _agree(bad, time_up, ddp, device)
                if any_bad:
                    where = (f"last good checkpoint: {last_path} (step {last_good})"
                             if last_good is not None else "no checkpoint was written")
                    raise NonFiniteLoss(f"non-finite loss (NaN or inf) at a step in "
                                        f"({step - steps_since_log}, {step}]; stopped; {where}")
                stop = stop_step or time_up
                now = time.perf_counter()
                ips = last_ips = steps_since_log * cfg.batch_size / max(now - t_log, 1e-9)
                last_losses = {f"g/{k}": float(v) for k, v in g_terms.items()}
                last_losses.update({f"d/{k}": float(v) for k, v in d_terms.items()})
                if main:
                    for k, v in last_losses.items():
                        writer.add_scalar(f"loss/{k}", v, step)
                    for k, v in lrs.items():
                        writer.add_scalar(f"lr/{k}", v, step)
                    writer.add_scalar("speed/images_per_s", ips, step)
                    writer.add_scalar("stage", stage, step)
                    if device.type == "cuda":
                        writer.add_scalar("gpu/max_memory_gib",
                                          torch.cuda.max_memory_allocated(device) / 2**30, step)
                    bar.set_postfix(stage=stage, loss=f"{last_losses['g/total']:.4f}",
                                    img_s=f"{ips:.0f}")
                t_log, steps_since_log = now, 0
            save_now = step % cfg.ckpt_every == 0 or stage_end or stop or step == total
            if main and (step % cfg.image_every == 0 or stage_end or step == total):
                _log_images(writer, out_dir, g, grid_batch, cfg, device, step, sigma)
            if save_now:
                paths = [last_path]
                if stage_end:
                    paths.append(os.path.join(out_dir, f"stage{stage}.pt"))
                checkpoint(paths, epoch_next, pos_next, last_losses)
                last_good = step
                if main:
                    mem = (f", GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
                           if device.type == "cuda" else "")
                    log(f"step {step}/{total} (stage {stage}, epoch {epoch_}): loss "
                        f"{last_losses.get('g/total', float('nan')):.4f}, {last_ips:.1f} images/s"
                        f"{mem}; wrote {', '.join(os.path.basename(p) for p in paths)}")
            if stop and step < total:
                stopped = True
                if main:
                    why = "stop_at_step" if stop_step else "max_seconds"
                    log(f"stopping at step {step} ({why}); continue with resume=True (--resume)")
                break
            if step >= total:
                break
    finally:
        bar.close()
        batches = None  # the DataLoader iterator's __del__ stops its workers
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - t_start
    summary = {"steps": step, "steps_run": steps_run, "seconds": seconds,
               "steps_per_s": steps_run / seconds if seconds else 0.0,
               "images_per_s": steps_run * cfg.batch_size / seconds if seconds else 0.0,
               "stopped": stopped, "done": step >= total,
               "checkpoint": last_path if last_good is not None else None,
               "losses": last_losses,
               "max_gpu_memory_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                                      if device.type == "cuda" else None)}
    if main:
        log(f"{steps_run} steps in {seconds:.1f}s: {summary['steps_per_s']:.2f} steps/s, "
            f"{summary['images_per_s']:.1f} images/s (global batch {cfg.batch_size}); "
            f"step {step}/{total}; checkpoint {summary['checkpoint']}")
    return summary


@torch.no_grad()
def _log_images(writer, out_dir: str, g: ProUIGenerator, batch: dict, cfg: TrainConfig,
                device: torch.device, step: int, sigma: float) -> None:
    """TensorBoard grid (and grids/step-N.png): input LR, blocks 1-3, ground truth."""
    import cv2

    from .metrics import psnr

    was_training = g.training
    g.eval()
    lr, hr, hms = prepare_batch(batch, cfg, device, sigma)
    with _autocast(device, cfg.amp):
        out = g(lr, hms[0], blocks=3)
    g.train(was_training)
    grid = image_grid([lr, *out.images, hr])
    writer.add_image("grid/input_block1_block2_block3_gt", grid, step)
    to255 = lambda t: ((t.float().clamp(-1, 1) + 1) * 127.5).round().cpu()  # noqa: E731
    writer.add_scalar("grid/psnr_block3", float(psnr(to255(out.images[2]), to255(hr)).mean()), step)
    os.makedirs(os.path.join(out_dir, "grids"), exist_ok=True)
    cv2.imwrite(os.path.join(out_dir, "grids", f"step-{step:07d}.png"),
                np.ascontiguousarray(grid.permute(1, 2, 0).numpy()[..., ::-1]))
