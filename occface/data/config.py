"""What the loader produces: :class:`LoaderConfig` (frozen) and its option values."""

from __future__ import annotations

from dataclasses import dataclass

from .. import degrade, masks
from ..errors import DataError  # noqa: F401  (re-exported: the loader's error)
from ..faces import heatmaps as heatmaps_mod
from ..faces.occlude import FillConfig

RANGES = ("[0,1]", "[-1,1]")
HEATMAP_SOURCES = ("auto", "render", "stored")
DTYPES = ("float32", "uint8")
MEMORY_FORMATS = ("contiguous", "channels_last")
VERIFY_MODES = ("quick", "sha256")
IMAGE_KEYS = ("lr", "hr", "hr_occluded", "lr_clean")


@dataclass(frozen=True)
class LoaderConfig:
    """What the loader produces.  Frozen: equal configs give equal items.

    split: ``"train"``, ``"test"``, a tuple of splits, or ``None`` for every sample.
    heatmaps: specs ``"<grouping>@<size>"`` (``occface.faces.heatmaps``: all68, pu7, pu42, fhc4, parts5);
        ``()`` for none.  Default: the public Pro-UIGAN set (7 @16, 42 @32, 68 @64).
    range: ``"[-1,1]"`` (``x / 127.5 - 1``) or ``"[0,1]"`` (``x / 255``) for the images.
    heatmap_sigma: Gaussian sigma in heatmap pixels; ``None`` = the build's ``heatmap_sigma``.
    heatmap_source: ``"auto"`` (stored maps when the shard has that spec and sigma, else render),
        ``"render"`` (always render from landmarks: exact float32) or ``"stored"`` (error if absent).
    remask: ``None`` (the stored mask), a mask spec (``occface.masks`` dataclass or its dict), a
        preset or bundled-set name / JSON text as ``occface build --mask`` takes it (``"pconv"``,
        ``"square128-v1"``), or ``"build"`` (the build's own mask spec): draw a fresh mask every epoch.
    remask_seed: base seed of the re-mask (and re-degrade) draws; ``None`` = the build's seed.
    fill: fill for re-masked holes (``occface.faces.occlude.FillConfig``); ``None`` = the build's fill.
    redegrade: ``None`` (the stored degradation, re-applied to re-masked faces), a degradation
        spec (``occface.degrade.DegradeSpec``, its dict, a preset name such as ``"gfpgan"``), or
        ``"build"`` (the build's own chain): draw a fresh degradation of the LR every epoch
        (with ``remask_seed``); the HR-size copy too when the build has ``degrade_hr``.
    lr_clean: also return ``lr_clean`` (the downsampled clean HR).
    dtype: ``"float32"`` (items as documented) or ``"uint8"``: images 0..255, mask {0, 1} and
        heatmaps ``round(255 h)`` as uint8 (landmarks stay float32), 4x smaller and several
        times faster to produce; :func:`to_float` (numpy or torch, e.g. on the GPU) turns such
        an item or batch into exactly the float32 one (rendered heatmaps: the quantised values).
    memory_format: strides of the *batch* images (``lr``, ``hr``, ``hr_occluded``, ``lr_clean``;
        ``get_batch``, ``ShardDataset.__getitems__``): ``"contiguous"`` (B, 3, H, W) planes, or
        ``"channels_last"``: the same shape and values with ``torch.channels_last`` strides, i.e.
        the shard's (H, W, 3) bytes copied as they are (no deinterleave on the loader's CPU; the
        fastest transport, docs/data.md).  Items (``get_item``, ``ds[i]``) are always contiguous.
    verify: what opening a build checks against its manifest: ``"quick"`` (default: the manifest's
        own content digest, every listed shard present with the listed size, and every opened
        shard's sample count; milliseconds) or ``"sha256"`` (also re-hash every used shard).
        A mismatch is a :class:`DataError` naming the shard.
    """

    split: str | tuple[str, ...] | None = "train"
    heatmaps: tuple[str, ...] = ("pu7@16", "pu42@32", "all68@64")
    range: str = "[-1,1]"
    heatmap_sigma: float | None = None
    heatmap_source: str = "auto"
    remask: object = None
    remask_seed: int | None = None
    fill: FillConfig | None = None
    redegrade: object = None
    lr_clean: bool = False
    dtype: str = "float32"
    memory_format: str = "contiguous"
    verify: str = "quick"

    def __post_init__(self):
        if isinstance(self.heatmaps, str):
            object.__setattr__(self, "heatmaps", (self.heatmaps,))
        object.__setattr__(self, "heatmaps", tuple(self.heatmaps))
        for spec in self.heatmaps:
            heatmaps_mod.parse_spec(spec)
        if len(set(self.heatmaps)) != len(self.heatmaps):
            raise ValueError("duplicate heatmap specs")
        if isinstance(self.split, list):
            object.__setattr__(self, "split", tuple(self.split))
        if self.range not in RANGES:
            raise ValueError(f"range must be one of {RANGES}, got {self.range!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {self.memory_format!r}")
        if self.verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {self.verify!r}")
        if self.heatmap_source not in HEATMAP_SOURCES:
            raise ValueError(f"heatmap_source must be one of {HEATMAP_SOURCES}, got {self.heatmap_source!r}")
        if self.heatmap_sigma is not None and not self.heatmap_sigma > 0:
            raise ValueError("heatmap_sigma must be > 0")
        if isinstance(self.remask, dict):
            object.__setattr__(self, "remask", masks.spec_from_dict(self.remask))
        elif isinstance(self.remask, str) and self.remask != "build":
            # the forms a user types, as ``occface build --mask`` takes them: a preset or bundled
            # set name ("pconv", "square128-v1"), inline JSON, or "@spec.json"
            try:
                object.__setattr__(self, "remask", masks.from_text(self.remask))
            except ValueError as exc:
                raise ValueError(f"remask must be None, 'build', a mask spec or a preset name: {exc}") from None
        if isinstance(self.redegrade, dict):
            object.__setattr__(self, "redegrade", degrade.spec_from_dict(self.redegrade))
        elif isinstance(self.redegrade, str) and self.redegrade != "build":
            object.__setattr__(self, "redegrade", degrade.from_text(self.redegrade))
        elif self.redegrade is not None and not isinstance(self.redegrade, (str, degrade.DegradeSpec)):
            raise ValueError(f"redegrade must be None, a degradation spec or 'build', got {self.redegrade!r}")
        if self.remask_seed is not None and self.remask_seed < 0:
            raise ValueError("remask_seed must be >= 0")

    @property
    def redraws(self) -> bool:
        """True when items are re-drawn per epoch (``remask`` or ``redegrade``)."""
        return self.remask is not None or self.redegrade is not None

    def splits(self) -> tuple[str, ...] | None:
        if self.split is None:
            return None
        return (self.split,) if isinstance(self.split, str) else tuple(self.split)
