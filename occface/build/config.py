"""The resolved build configuration: frozen dataclasses, written into every shard and manifest.

Only parameters that change the bytes of a build live here.  Execution
details (worker count, partition index, progress bars) do not, so the same
config builds the same shards however it is run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import degrade as degrade_mod
from .. import masks
from ..faces import heatmaps, resize
from ..faces.align import AlignConfig
from ..faces.detect import DetectConfig
from ..faces.occlude import FillConfig
from ..format.canonical import to_dict, to_json  # noqa: F401  (re-exported: the config's JSON form)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines a build's output bytes (besides the input photos).

    seed: base seed; every per-sample random draw derives from (seed, sample key, stage).
    shard_size: input records per shard (shards group records in key order, so
        membership is independent of workers and partitions).
    heatmaps: stored heatmap sets, each ``"<grouping>@<size>"`` (see occface.faces.heatmaps).
    degrade: the chain that forms the LR from the occluded HR (``occface.degrade``);
        ``degrade.NONE`` (default) is the plain ``resize_rule`` downsample.
    degrade_hr: also store ``hr_occluded`` degraded by the same draw, at the HR size
        (for inpainting / restoration models that take the HR-size input).
    store_alpha: store each occluder's alpha (``alpha``, uint8) next to the binary mask.
    """

    detect: DetectConfig = field(default_factory=DetectConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    mask: object = field(default_factory=masks.SquareMask)
    fill: FillConfig = field(default_factory=FillConfig)
    lr_size: int = 16
    resize_rule: str = "bilinear-aa"
    heatmaps: tuple[str, ...] = ("fhc4@64",)
    heatmap_sigma: float = 1.0
    seed: int = 0
    shard_size: int = 256
    degrade: object = field(default_factory=lambda: degrade_mod.NONE)
    degrade_hr: bool = False
    store_alpha: bool = False

    def __post_init__(self):
        if self.resize_rule not in resize.RULES:
            raise ValueError(f"resize_rule must be one of {resize.RULES}")
        for spec in self.heatmaps:
            heatmaps.parse_spec(spec)
        if len(set(self.heatmaps)) != len(self.heatmaps):
            raise ValueError("duplicate heatmap specs")
        if self.shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        if not 1 <= self.lr_size <= self.align.size:
            raise ValueError("lr_size must be in 1..align.size")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if isinstance(self.degrade, dict):
            object.__setattr__(self, "degrade", degrade_mod.spec_from_dict(self.degrade))
        if not isinstance(self.degrade, degrade_mod.DegradeSpec):
            raise TypeError(f"degrade must be an occface.degrade.DegradeSpec, got {self.degrade!r}")

    @property
    def hr_size(self) -> int:
        return self.align.size
