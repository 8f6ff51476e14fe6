"""The training run's configuration: :class:`TrainConfig` (frozen; its JSON is in every checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.config import LoaderConfig
from ..errors import OccfaceError
from ..model import LossWeights, ProUIGANConfig
from ..runtime import AMP_MODES

STAGE2_TRAINS = ("block2", "blocks12")
LR_DECAYS = ("none", "cosine", "step")
#: TrainConfig fields that do not change the trained weights (on one device); they may
#: differ when a run is resumed.  Every other field must equal the checkpoint's.
EXECUTION_FIELDS = ("device", "num_workers", "ckpt_every", "log_every", "image_every",
                    "grid_size", "compile", "vgg16", "vgg19", "vgg_hub_dir", "vgg_download", "keep_every", "val_every",
                    "val_images")


class NonFiniteLoss(OccfaceError):
    """A loss became NaN or inf; the run stopped without writing a checkpoint."""


class RunExists(OccfaceError, FileExistsError):
    """The output directory already holds a run and resuming was not asked for."""


class ConfigMismatch(OccfaceError, ValueError):
    """``resume`` found a checkpoint written with a different config or data."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.  Frozen; ``to_dict`` gives its JSON.

    ``stage_steps``: optimiser steps of stages 1, 2, 3 (0 skips a stage).
    ``batch_size``: the *global* batch (split evenly over the ranks).
    ``lrs``: Adam learning rates of UI-blocks 1, 2, 3 (block 1's group includes the
    learned landmark prior); ``lr_d`` of both discriminators (paper: not stated).
    ``warmup_steps``: linear warm-up at the start of every stage (0: none).
    ``lr_decay``: ``"none"``, ``"cosine"`` (to ``lr_decay_min`` x the rate at each stage's
    end) or ``"step"`` (x ``lr_decay_gamma`` at each of ``lr_decay_milestones``, fractions
    of the stage); see :func:`occface.train.schedule.decay_factor`.
    ``ema_decay``: keep an exponential moving average of the generator's weights
    (``ema = d * ema + (1 - d) * w`` after every step, over every stage); the checkpoints'
    ``generator.pt``, the periodic validation and the exported weights use it.  ``None``: off.
    ``grad_clip``: clip the global gradient norm of the generator (and separately of the
    discriminators) to this value before every step; ``None``: off.
    ``keep_every``: also keep the generator of every N-th step as ``generator-step{N}.pt``
    (0: never), to compare runs at equal budgets.
    ``data_repeat``: how many times each build given to :func:`~occface.train.train` is listed
    in an epoch, in the order given (``()``: once each), e.g. ``(1, 4)`` to weight a small
    colour build four times beside a large greyscale one; repeats of a sample within an epoch
    share that epoch's re-drawn mask.
    ``val_every`` / ``val_images``: every N steps (0: never) score the first ``val_images``
    faces of the data's test split (PSNR / SSIM per block, landmark NME of the prior) into
    TensorBoard.
    ``loader``: ``None`` derives the paper's inputs from ``model``: the train split, the
    model's heatmap sets, ``[-1,1]``, uint8 batches converted on the device.
    ``heatmaps_on_device``: render the model's ground-truth heatmaps from the landmarks on
    the training device (``occface.faces.heatmaps.render_torch``, exact float32, the build's
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
    lr_decay: str = "none"
    lr_decay_min: float = 0.0
    lr_decay_gamma: float = 0.1
    lr_decay_milestones: tuple[float, ...] = (0.5, 0.75)
    ema_decay: float | None = None
    grad_clip: float | None = None
    stage1_adversarial: bool = True
    stage2_trains: str = "block2"
    seed: int = 0
    data_repeat: tuple[int, ...] = ()
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
    vgg_download: bool = False
    keep_every: int = 0
    val_every: int = 0
    val_images: int = 256

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
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {self.lr_decay!r}")
        object.__setattr__(self, "lr_decay_milestones", tuple(float(m) for m in self.lr_decay_milestones))
        if not 0 <= self.lr_decay_min <= 1 or not 0 < self.lr_decay_gamma <= 1 or any(
                not 0 < m < 1 for m in self.lr_decay_milestones):
            raise ValueError("lr_decay_min must be in [0, 1], lr_decay_gamma in (0, 1] and the "
                             "milestones fractions of a stage in (0, 1)")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")
        object.__setattr__(self, "data_repeat", tuple(int(r) for r in self.data_repeat))
        if any(r < 1 for r in self.data_repeat):
            raise ValueError(f"data_repeat entries must be >= 1, got {self.data_repeat!r}")
        if self.keep_every < 0:
            raise ValueError("keep_every must be >= 0")
        if self.val_every < 0 or self.val_images < 1:
            raise ValueError("val_every must be >= 0 and val_images >= 1")
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
