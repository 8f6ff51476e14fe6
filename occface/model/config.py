"""Configuration of the Pro-UIGAN reference model.

Every architectural choice is a field of the frozen :class:`ProUIGANConfig`.
The defaults follow the paper (Pro-UIGAN, Sec. III) wherever the paper states a
choice; where it is silent (widths, residual-block counts, kernel sizes) the
default is the public code's value and the field's comment says so.
:meth:`ProUIGANConfig.public_code` returns the configuration that mirrors the
public code's departures from the paper.

Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..faces import heatmaps as _heatmaps

#: Side of the occluded low-resolution input face.
LR_SIZE = 16
#: Side of the final hallucinated face.
HR_SIZE = 128
#: Input side of each UI-block; block ``k`` outputs twice its input side.
BLOCK_INPUT_SIZES = (16, 32, 64)
#: Output side of each UI-block.
BLOCK_OUTPUT_SIZES = (32, 64, 128)

ATTENTION_KINDS = ("cosine", "softmax")
COSINE_SCALES = ("mean", "sum")
UPSAMPLE_KINDS = ("deconv", "bilinear")
LANDMARK_INPUTS = ("learned", "gt", "none")
PRIOR_KINDS = ("heatmaps", "points")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_positive_triple(name: str, value: tuple, minimum: int = 1) -> None:
    if len(value) != 3 or any(int(v) != v or v < minimum for v in value):
        raise ValueError(f"{name} must be three integers >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class ProUIGANConfig:
    """Architecture of the generator (Pro-UInet) and both discriminators.

    Tuples with three entries are per UI-block (block 1 works at 16x16,
    block 2 at 32x32, block 3 at 64x64; each doubles the side).
    """

    #: Feature width of each block's CM-AM and TUM.  Paper: not stated.
    #: Default from the public code ("widths around 128/64/32").
    widths: tuple[int, int, int] = (128, 64, 32)
    #: Residual blocks after the TUM's 2x upsampling.  Paper: "residual
    #: blocks", count not stated.  Default from the public code (2 per TUM).
    res_blocks: tuple[int, int, int] = (2, 2, 2)
    #: Heatmap grouping (occface.faces.heatmaps.GROUPINGS) each block's CM-AM
    #: predicts, at the block's input side (16, 32, 64).  Paper: FAN's 68
    #: landmarks, L_h averaged over them, so "all68" at every block.  Public
    #: code: ("pu7", "pu42", "all68"), i.e. 7, 42 and 68 channels.
    heatmap_groupings: tuple[str, str, str] = ("all68", "all68", "all68")
    #: CM-AM attention.  "cosine": Eq. 1, normalised inner product (paper).
    #: "softmax": softmax over unscaled dot products (public code).
    attention: str = "cosine"
    #: Cosine attention only.  "mean" divides CM·V by N = H·W; "sum" is Eq. 2
    #: read literally.  The factor is a fixed rescaling of the value
    #: convolutions (same function class), chosen so the output does not
    #: grow with the number of positions (4096 at 64x64).
    cosine_scale: str = "mean"
    #: Width of 1x1 query/key projections; None uses F_L and F_C themselves
    #: as Q and K (paper).  The public code projects to 32 channels.
    qk_dim: int | None = None
    #: TUM upsampling: "deconv" (transposed convolution, paper) or
    #: "bilinear" (bilinear x2 + 3x3 convolution, public code).
    upsample: str = "deconv"
    #: Landmark input to block 1.  "learned": a prior estimator predicts
    #: 16x16 heatmaps from the occluded input and is trained with L_h on the
    #: ground-truth heatmaps (stands in for FAN, whose weights we cannot
    #: ship).  "gt": ground-truth heatmaps are fed (the paper's P+GT
    #: ablation).  "none": block 1 has no CM-AM (the paper's P-FP ablation).
    landmark_input: str = "learned"
    #: Width and residual-block count of the learned prior estimator.
    prior_width: int = 64
    prior_res_blocks: int = 2
    #: What the learned prior estimator predicts.  "heatmaps": a 3x3 head gives
    #: the 16x16 heatmaps directly.  "points": it regresses the 68 landmarks
    #: (offsets from the mean training shape, through two stride-2
    #: convolutions and a linear layer) and renders them as Gaussians of
    #: ``prior_sigma`` 16x16 pixels, differentiably, so L_h on the rendered
    #: heatmaps moves the points themselves.  Needs "all68" at block 1.  In
    #: short measured runs the heatmap MSE taught a convolutional head little
    #: beyond the mean face, while the same loss through rendered points
    #: halved the error in minutes (docs/model_card.md, "The landmark prior").
    prior_kind: str = "heatmaps"
    prior_sigma: float = 1.0
    #: Each block's heatmaps are its landmark input (the prior, or the previous
    #: block's heatmaps upsampled x2) plus its head's 3x3 convolution,
    #: initialised to zero, instead of a template plus the convolution: the
    #: geometry prior is refined block by block, and every block starts from
    #: the prior's landmarks.  Needs the same grouping at every block and a
    #: landmark input ("learned" or "gt").
    heatmap_residual: bool = False
    #: Stop-gradients that keep the image losses out of the landmark estimators.
    #: ``detach_prior``: the learned prior's heatmaps enter block 1 detached, so
    #: the prior estimator is trained by its L_h alone, like the paper's frozen,
    #: landmark-trained FAN.  ``detach_heatmaps``: block k's predicted heatmaps
    #: enter block k+1 detached, so each heatmap head is trained by its L_h
    #: alone.  Off by default: with the normalised L_h and the templates below,
    #: letting the image losses reach the heads gave the same landmark NME and
    #: a higher PSNR in a measured run (docs/model_card.md, "The landmark prior").
    detach_prior: bool = False
    detach_heatmaps: bool = False
    #: Every heatmap head (each block's and the learned prior's) adds a learned
    #: per-landmark, per-pixel template (C, S, S) to its convolution: the
    #: landmark-position prior of aligned faces.  The trainer initialises the
    #: templates to the mean ground-truth heatmap of the training faces, so
    #: the decoded landmarks start at the mean shape and the convolutions learn
    #: each face's deviation from it.  Not in the paper (its FAN is pre-trained).
    heatmap_template: bool = True
    #: Channels of the stride-2 convolutions of Global-D (whole 128x128 face)
    #: and Local-D (central crop).  Paper: not stated.
    global_d_widths: tuple[int, ...] = (64, 128, 256, 512)
    local_d_widths: tuple[int, ...] = (64, 128, 256)
    #: Local-D crop in the 128x128 frame as (top, left, size).  The paper
    #: states a 64x64 central facial region (eyes, nose, mouth) for block 3
    #: and 16x16 for block 1's 32x32 output: the same box scaled by 1/4.
    local_crop: tuple[int, int, int] = (32, 32, 64)

    def __post_init__(self) -> None:
        _check_positive_triple("widths", self.widths)
        _check_positive_triple("res_blocks", self.res_blocks, minimum=0)
        if len(self.heatmap_groupings) != 3 or any(
                g not in _heatmaps.GROUPINGS for g in self.heatmap_groupings):
            raise ValueError(f"heatmap_groupings must be three of {sorted(_heatmaps.GROUPINGS)}, "
                             f"got {self.heatmap_groupings!r}")
        _check_choice("attention", self.attention, ATTENTION_KINDS)
        _check_choice("cosine_scale", self.cosine_scale, COSINE_SCALES)
        _check_choice("upsample", self.upsample, UPSAMPLE_KINDS)
        _check_choice("landmark_input", self.landmark_input, LANDMARK_INPUTS)
        if self.qk_dim is not None and self.qk_dim < 1:
            raise ValueError(f"qk_dim must be None or >= 1, got {self.qk_dim}")
        if self.prior_width < 1 or self.prior_res_blocks < 0:
            raise ValueError("prior_width must be >= 1 and prior_res_blocks >= 0")
        _check_choice("prior_kind", self.prior_kind, PRIOR_KINDS)
        if self.prior_kind == "points" and self.heatmap_groupings[0] != "all68":
            raise ValueError('prior_kind="points" renders all 68 points: block 1 needs the "all68" grouping')
        if not self.prior_sigma > 0:
            raise ValueError(f"prior_sigma must be > 0, got {self.prior_sigma}")
        if self.heatmap_residual and (len(set(self.heatmap_groupings)) != 1 or self.landmark_input == "none"):
            raise ValueError("heatmap_residual needs one heatmap grouping for all blocks and a landmark input "
                             '("learned" or "gt")')
        if not self.global_d_widths or not self.local_d_widths:
            raise ValueError("discriminator widths must not be empty")
        top, left, size = self.local_crop
        if size % 8 or not (0 <= top and 0 <= left and top + size <= HR_SIZE
                            and left + size <= HR_SIZE) or top % 4 or left % 4:
            raise ValueError(
                "local_crop (top, left, size) must lie inside the 128x128 frame, "
                f"with size a multiple of 8 and top/left multiples of 4; got {self.local_crop}")

    @classmethod
    def public_code(cls, **overrides) -> "ProUIGANConfig":
        """The public code's choices: softmax attention over 32-channel
        projections, bilinear upsampling, (7, 42, 68) heatmaps."""
        fields = dict(attention="softmax", qk_dim=32, upsample="bilinear",
                      heatmap_groupings=("pu7", "pu42", "all68"))
        fields.update(overrides)
        return cls(**fields)

    @property
    def heatmap_channels(self) -> tuple[int, int, int]:
        """Channels of each block's heatmaps, e.g. (68, 68, 68)."""
        return tuple(_heatmaps.channels(g) for g in self.heatmap_groupings)

    @property
    def heatmap_specs(self) -> tuple[str, str, str]:
        """Shard dataset names of each block's ground truth, in the
        ``heatmaps/<grouping>@<side>`` form of docs/format.md, e.g.
        ("all68@16", "all68@32", "all68@64")."""
        return tuple(f"{g}@{s}" for g, s in zip(self.heatmap_groupings, BLOCK_INPUT_SIZES))

    def local_box(self, side: int) -> tuple[int, int, int]:
        """Local-D crop (top, left, size) scaled to an image of ``side``
        pixels: (32, 32, 64) at 128 becomes (8, 8, 16) at 32."""
        if HR_SIZE % side:
            raise ValueError(f"side must divide {HR_SIZE}, got {side}")
        f = HR_SIZE // side
        top, left, size = self.local_crop
        return top // f, left // f, size // f
