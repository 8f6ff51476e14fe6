"""The resolved build configuration: frozen dataclasses, written into every shard and manifest.

Only parameters that change the bytes of a build live here.  Execution
details (worker count, partition index, progress bars) do not, so the same
config builds the same shards however it is run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def hr_size(self) -> int:
        return self.align.size
