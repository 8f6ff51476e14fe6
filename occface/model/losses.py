"""Pro-UIGAN objectives (paper §III-F/G, Eqs. 4-15).

Per block (a = block 1, b = block 2, c = block 3):

    L_net1 = L_mse + α L_f + L_h + γa L_style + ψ L_adv^l                 (12)
    L_net2 = L_mse + α L_f + L_h + γb L_style                             (13)
    L_net3 = L_mse + α L_f + L_h + γc L_style + ψ (L_adv^l + L_adv^g)     (14)
    L_G    = L_net1 + L_net2 + L_net3                                     (15)

with α = ψ = 0.01, γa = γb = 10, γc = 1 (:class:`LossWeights`).

Terms
-----
* L_mse: squared error between a block's image and the ground truth at that
  block's side (128x128 HR downsampled with antialiased bilinear to 32, 64).
* L_f: squared error between VGG-19 relu3_2 features.
* L_h: squared error between predicted and ground-truth heatmaps at the
  block's input side (16, 32, 64), averaged over landmarks (Eq. 6).  By
  default (``LossWeights.heatmap_norm="target"``) it is divided by the
  targets' energy, so an all-zero prediction scores exactly 1 at every block,
  and weighted by ``LossWeights.heatmap`` (docs/model_card.md has the runs
  behind both).  ``block{k}/heatmap_zero`` logs that all-zero baseline.
* L_style: L1 between Gram matrices of VGG-16 pool1, pool2, pool3, each
  Gram normalised by K_n = 1/(C·H·W) (Eq. 7), summed over the three layers.
* L_adv: generator side of the log-loss GAN, -log D(fake) (Eqs. 10, 11), or
  least squares (D(fake) - 1)^2 as an option.  Discriminator side: Eqs. 8, 9.

Table III's loss sets are :data:`VARIANTS` (``LossWeights.preset``).  Every
term is computed in float32, whatever precision the forward passes ran in.

Reduction (``LossWeights.reduction``): "mean" (default) averages every
squared/absolute error over its elements, as the name L_mse says; "sum"
reads the norms of Eqs. 4-7 literally - sum over pixels (Eq. 6: per
heatmap, then the mean over landmarks) or Gram entries per image - then
averages over the batch.

VGG inputs: images in [-1, 1] are mapped to [0, 1] and ImageNet-normalised
(:func:`occface.model.vgg.imagenet_normalise`) before either VGG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..faces.heatmaps import GROUPINGS
from .config import BLOCK_INPUT_SIZES, BLOCK_OUTPUT_SIZES, ProUIGANConfig
from .discriminators import central_crop
from .generator import GeneratorOutput
from .vgg import (FEATURE_TAPS, STYLE_TAPS, VGGFeatures, imagenet_normalise, load_vgg)

ADVERSARIAL_KINDS = ("log", "lsgan")
REDUCTIONS = ("mean", "sum")
HEATMAP_NORMS = ("target", "none")

#: The loss sets of the paper's Table III, as field overrides of :class:`LossWeights`.
#: lg-minus: L_mse + L_h; lg-plus: + L_f on blocks 2 and 3; lg-star: + L_f on every
#: block; lg-dagger: + L_style + L_adv^l; full: + L_adv^g (Eqs. 12-15).
VARIANTS: dict[str, dict] = {
    "lg-minus": dict(feature_blocks=(), style=False, local_adversarial=False,
                     global_adversarial=False),
    "lg-plus": dict(feature_blocks=(2, 3), style=False, local_adversarial=False,
                    global_adversarial=False),
    "lg-star": dict(feature_blocks=(1, 2, 3), style=False, local_adversarial=False,
                    global_adversarial=False),
    "lg-dagger": dict(feature_blocks=(1, 2, 3), style=True, local_adversarial=True,
                      global_adversarial=False),
    "full": dict(feature_blocks=(1, 2, 3), style=True, local_adversarial=True,
                 global_adversarial=True),
}


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eqs. 12-14 (paper values), which terms are on, and the loss conventions.

    ``variant`` names the Table III loss set the term switches came from
    (:meth:`preset`); it is recorded with the weights in every checkpoint.
    """

    alpha: float = 0.01    # L_f, every block listed in feature_blocks
    psi: float = 0.01      # adversarial terms (block 1 local; block 3 local + global)
    gamma_a: float = 10.0  # L_style, block 1
    gamma_b: float = 10.0  # L_style, block 2
    gamma_c: float = 1.0   # L_style, block 3
    #: Weight of every block's L_h (the paper: 1).
    heatmap: float = 1.0
    #: L_h on the learned prior estimator's output, added to L_net1.  Not in
    #: the paper (its FAN is pre-trained and frozen); only used with
    #: landmark_input="learned".
    prior: float = 1.0
    #: "target": L_h = sum of squared errors / sum of squared targets over the
    #: batch's heatmaps, so predicting all zeros scores exactly 1 at every
    #: block whatever the side and sigma (sparse sigma=1 targets make the plain
    #: element mean 1-10 % of L_mse, too small to train the heads).  "none":
    #: Eq. 6 reduced by ``reduction``.
    heatmap_norm: str = "target"
    #: Blocks (1-3) whose L_net has the feature term alpha * L_f.
    feature_blocks: tuple[int, ...] = (1, 2, 3)
    #: Style term gamma * L_style on every block.
    style: bool = True
    #: psi * L_adv^l (blocks 1 and 3, Local-D) and psi * L_adv^g (block 3, Global-D).
    local_adversarial: bool = True
    global_adversarial: bool = True
    #: "log": the paper's log-loss GAN; "lsgan": least squares (public code).
    adversarial: str = "log"
    reduction: str = "mean"
    variant: str = "full"

    def __post_init__(self) -> None:
        if self.adversarial not in ADVERSARIAL_KINDS:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL_KINDS}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}")
        if self.heatmap_norm not in HEATMAP_NORMS:
            raise ValueError(f"heatmap_norm must be one of {HEATMAP_NORMS}")
        object.__setattr__(self, "feature_blocks", tuple(int(b) for b in self.feature_blocks))
        if any(b not in (1, 2, 3) for b in self.feature_blocks):
            raise ValueError(f"feature_blocks must be blocks 1-3, got {self.feature_blocks!r}")
        if self.variant not in VARIANTS and self.variant != "custom":
            raise ValueError(f"variant must be one of {tuple(VARIANTS)} or 'custom'")
        weights = (self.alpha, self.psi, self.gamma_a, self.gamma_b, self.gamma_c,
                   self.heatmap, self.prior)
        if any(not w >= 0 for w in weights):
            raise ValueError(f"loss weights must be >= 0, got {weights}")

    @classmethod
    def preset(cls, variant: str = "full", **overrides) -> "LossWeights":
        """The Table III loss set ``variant`` (``VARIANTS``) with the paper's weights,
        then ``overrides`` (weights, reduction, adversarial kind ...)."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
        return cls(**{**VARIANTS[variant], "variant": variant, **overrides})

    @property
    def gammas(self) -> tuple[float, float, float]:
        return self.gamma_a, self.gamma_b, self.gamma_c

    @property
    def uses_vgg19(self) -> bool:
        """L_f is on somewhere (needs VGG-19)."""
        return bool(self.feature_blocks) and self.alpha > 0

    @property
    def uses_vgg16(self) -> bool:
        """L_style is on somewhere (needs VGG-16)."""
        return self.style and any(g > 0 for g in self.gammas)

    @property
    def uses_local_d(self) -> bool:
        return self.local_adversarial and self.psi > 0

    @property
    def uses_global_d(self) -> bool:
        return self.global_adversarial and self.psi > 0


def _fp32(device: torch.device):
    """Autocast off: loss arithmetic in float32 whatever the forward pass ran in."""
    return torch.autocast(device.type, enabled=False)


def _reduce(err: torch.Tensor, reduction: str) -> torch.Tensor:
    """mean over all elements, or sum per sample then mean over the batch."""
    return err.mean() if reduction == "mean" else err.flatten(1).sum(1).mean()


def mse_loss(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L_mse / L_f: squared error (Eqs. 4, 5), computed in float32."""
    with _fp32(x.device):
        return _reduce((x.float() - y.float()).square(), reduction)


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean",
                 norm: str = "none") -> torch.Tensor:
    """L_h (Eq. 6) on (B, L, H, W) heatmaps, in float32.

    ``norm="target"``: sum of squared errors over the batch / sum of squared
    targets, so an all-zero prediction gives exactly 1 (``reduction`` unused).
    ``norm="none"``: "sum" is the per-heatmap squared L2 norm averaged over
    landmarks and batch; "mean" also averages over pixels."""
    with _fp32(pred.device):
        p, t = pred.float(), target.float()
        err = (p - t).square()
        if norm == "target":
            return err.sum() / t.square().sum().clamp_min(1e-12)
        return err.mean() if reduction == "mean" else err.sum(dim=(2, 3)).mean()


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) = φ φᵀ / (C·H·W), computed in float32."""
    b, c, h, w = f.shape
    with torch.autocast(f.device.type, enabled=False):
        flat = f.float().reshape(b, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def style_loss(feats: dict[str, torch.Tensor], target_feats: dict[str, torch.Tensor],
               reduction: str = "mean") -> torch.Tensor:
    """L_style (Eq. 7): L1 between Gram matrices, summed over the taps."""
    total = 0.0
    for name, f in feats.items():
        with _fp32(f.device):
            total = total + _reduce((gram_matrix(f) - gram_matrix(target_feats[name])).abs(),
                                    reduction)
    return total


def adversarial_g_loss(fake_logits: torch.Tensor, kind: str = "log") -> torch.Tensor:
    """Generator side: -log σ(D(fake)) (Eqs. 10, 11) or (D(fake) - 1)^2, in float32."""
    with _fp32(fake_logits.device):
        fake = fake_logits.float()
        if kind == "log":
            return F.softplus(-fake).mean()
        return (fake - 1).square().mean()


def adversarial_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       kind: str = "log") -> torch.Tensor:
    """Discriminator side: -[log σ(D(real)) + log(1 - σ(D(fake)))]
    (Eqs. 8, 9) or (D(real) - 1)^2 + D(fake)^2, in float32."""
    with _fp32(real_logits.device):
        real, fake = real_logits.float(), fake_logits.float()
        if kind == "log":
            return F.softplus(-real).mean() + F.softplus(fake).mean()
        return (real - 1).square().mean() + fake.square().mean()


def image_pyramid(hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets of the three blocks: (B,3,128,128) -> sides 32, 64, 128
    (antialiased bilinear)."""
    return tuple(hr if s == hr.shape[-1] else
                 F.interpolate(hr, size=(s, s), mode="bilinear", align_corners=False,
                               antialias=True)
                 for s in BLOCK_OUTPUT_SIZES)


def heatmap_pyramid(heatmaps: torch.Tensor, config: ProUIGANConfig | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ground-truth heatmaps per block from one "all68" stack (B, 68, H, W):
    each block's grouping (a channel is the max over its points, as in
    occface.faces.heatmaps) resized to the block's input side (16, 32, 64) with
    antialiased bilinear interpolation.  Resizing blurs and lowers the
    Gaussian peaks; heatmaps rendered at each side (the shard datasets
    ``config.heatmap_specs``) are preferable when the data provide them."""
    config = config or ProUIGANConfig()
    if heatmaps.shape[1] != 68:
        raise ValueError(f"expected 68 heatmap channels, got {heatmaps.shape[1]}")
    out = []
    for side, grouping in zip(BLOCK_INPUT_SIZES, config.heatmap_groupings):
        hm = torch.stack([heatmaps[:, g].amax(dim=1) for g in GROUPINGS[grouping]], dim=1)
        if hm.shape[-1] != side:
            hm = F.interpolate(hm, size=(side, side), mode="bilinear", align_corners=False,
                               antialias=hm.shape[-1] > side)
        out.append(hm)
    return tuple(out)


class ProUIGANLoss(nn.Module):
    """L_G (Eq. 15) and the discriminator objectives (Eqs. 8, 9).

    ``vgg19`` must tap relu3_2 and ``vgg16`` pool1-3 (see :meth:`from_weights`);
    each is needed only when the weights use its term (``LossWeights.uses_vgg19``
    / ``uses_vgg16``).  Without them, L_f and L_style can only be dropped
    explicitly with ``without_vgg=True``; there is no fallback to random VGG
    weights.

    Precision: the forward passes (generator, VGG, discriminators) run in
    whatever autocast context the caller set; every loss term is computed in
    float32 from float32 copies of their outputs and targets.
    """

    def __init__(self, config: ProUIGANConfig | None = None,
                 weights: LossWeights | None = None, *,
                 vgg19: VGGFeatures | None = None, vgg16: VGGFeatures | None = None,
                 without_vgg: bool = False):
        super().__init__()
        self.config = config or ProUIGANConfig()
        self.weights = w = weights or LossWeights()
        if without_vgg:
            vgg19 = vgg16 = None
        else:
            if w.uses_vgg19 and vgg19 is None:
                raise ValueError("L_f needs a pretrained VGG-19 (occface.model.load_vgg); "
                                 "pass without_vgg=True to train without it")
            if w.uses_vgg16 and vgg16 is None:
                raise ValueError("L_style needs a pretrained VGG-16 (occface.model.load_vgg); "
                                 "pass without_vgg=True to train without it")
        self.vgg19 = vgg19 if w.uses_vgg19 else None
        self.vgg16 = vgg16 if w.uses_vgg16 else None

    @classmethod
    def from_weights(cls, config=None, weights=None, *, vgg16: dict | None = None,
                     vgg19: dict | None = None, without_vgg: bool = False) -> "ProUIGANLoss":
        """Build with the VGGs the weights need, loaded by :func:`load_vgg`; ``vgg16`` /
        ``vgg19`` are its keyword arguments (path=, hub_dir=, allow_download=)."""
        weights = weights or LossWeights()
        if without_vgg:
            return cls(config, weights, without_vgg=True)
        return cls(config, weights,
                   vgg19=load_vgg("vgg19", FEATURE_TAPS, **(vgg19 or {})) if weights.uses_vgg19 else None,
                   vgg16=load_vgg("vgg16", STYLE_TAPS, **(vgg16 or {})) if weights.uses_vgg16 else None)

    @property
    def uses_local_d(self) -> bool:
        return self.weights.uses_local_d

    @property
    def uses_global_d(self) -> bool:
        return self.weights.uses_global_d

    def _perceptual(self, k: int, image: torch.Tensor, target: torch.Tensor,
                    terms: dict, tag: str) -> torch.Tensor:
        w, red = self.weights, self.weights.reduction
        total = image.new_zeros((), dtype=torch.float32)
        want_f = self.vgg19 is not None and (k + 1) in w.feature_blocks
        want_s = self.vgg16 is not None and w.gammas[k] > 0
        if not (want_f or want_s):
            return total
        x, y = imagenet_normalise(image), imagenet_normalise(target)
        if want_f:
            with torch.no_grad():
                fy = self.vgg19(y)["relu3_2"]
            terms[f"{tag}/feature"] = feat = mse_loss(self.vgg19(x)["relu3_2"], fy, red)
            total = total + w.alpha * feat
        if want_s:
            with torch.no_grad():
                sy = self.vgg16(y)
            terms[f"{tag}/style"] = style = style_loss(self.vgg16(x), sy, red)
            total = total + w.gammas[k] * style
        return total

    def generator_loss(self, out: GeneratorOutput, hr: torch.Tensor,
                       heatmaps: Sequence[torch.Tensor],
                       local_d: nn.Module | None = None,
                       global_d: nn.Module | None = None) -> tuple[torch.Tensor, dict]:
        """L_G over the blocks present in ``out`` (1, 2 or 3 for staged
        pre-training).  ``hr``: (B, 3, 128, 128) in [-1, 1].  ``heatmaps``:
        ground truth per block, (B, L1, 16, 16), (B, L2, 32, 32),
        (B, L3, 64, 64).  Adversarial terms are included when the weights use
        them and the discriminators are given.  Returns (total, {name: detached
        term}); ``block{k}/heatmap_zero`` is L_h of an all-zero prediction (the
        baseline a learning prior must beat; 1 with ``heatmap_norm="target"``)."""
        w, red, kind = self.weights, self.weights.reduction, self.weights.adversarial
        targets = image_pyramid(hr.float())
        terms: dict[str, torch.Tensor] = {}
        total = hr.new_zeros((), dtype=torch.float32)
        for k, (image, hm) in enumerate(zip(out.images, out.heatmaps)):
            tag = f"block{k + 1}"
            target = targets[k]
            terms[f"{tag}/mse"] = mse = mse_loss(image, target, red)
            terms[f"{tag}/heatmap"] = heat = heatmap_loss(hm, heatmaps[k], red, w.heatmap_norm)
            with torch.no_grad():
                terms[f"{tag}/heatmap_zero"] = heatmap_loss(
                    torch.zeros_like(heatmaps[k], dtype=torch.float32), heatmaps[k], red,
                    w.heatmap_norm)
            net = mse + w.heatmap * heat + self._perceptual(k, image, target, terms, tag)
            if k in (0, 2) and local_d is not None and w.uses_local_d:
                terms[f"{tag}/adv_local"] = adv = adversarial_g_loss(
                    local_d(central_crop(image, self.config)), kind)
                net = net + w.psi * adv
            if k == 2 and global_d is not None and w.uses_global_d:
                terms[f"{tag}/adv_global"] = adv = adversarial_g_loss(global_d(image), kind)
                net = net + w.psi * adv
            if k == 0 and out.prior is not None:
                terms["prior/heatmap"] = prior = heatmap_loss(out.prior, heatmaps[0], red,
                                                              w.heatmap_norm)
                net = net + w.prior * prior
            terms[f"{tag}/total"] = net
            total = total + net
        terms = {name: t.detach() for name, t in terms.items()}
        terms["total"] = total.detach()
        return total, terms

    def discriminator_loss(self, out: GeneratorOutput, hr: torch.Tensor,
                           local_d: nn.Module | None = None,
                           global_d: nn.Module | None = None) -> tuple[torch.Tensor, dict]:
        """L_D^l (Eq. 8) on the central crops of blocks 1 and 3, plus L_D^g
        (Eq. 9) on block 3; generator outputs are detached.  Only the
        discriminators the weights use are trained."""
        kind, w = self.weights.adversarial, self.weights
        targets = image_pyramid(hr.float())
        terms: dict[str, torch.Tensor] = {}
        total = hr.new_zeros((), dtype=torch.float32)
        if local_d is not None and w.uses_local_d:
            for k in (0, 2):
                if k < len(out.images):
                    real = central_crop(targets[k], self.config)
                    fake = central_crop(out.images[k].detach(), self.config)
                    terms[f"block{k + 1}/d_local"] = d = adversarial_d_loss(
                        local_d(real), local_d(fake), kind)
                    total = total + d
        if global_d is not None and w.uses_global_d and len(out.images) == 3:
            terms["block3/d_global"] = d = adversarial_d_loss(
                global_d(targets[2]), global_d(out.images[2].detach()), kind)
            total = total + d
        terms = {name: t.detach() for name, t in terms.items()}
        terms["total"] = total.detach()
        return total, terms
