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
  block's input side (16, 32, 64), averaged over landmarks (Eq. 6).
* L_style: L1 between Gram matrices of VGG-16 pool1, pool2, pool3, each
  Gram normalised by K_n = 1/(C·H·W) (Eq. 7), summed over the three layers.
* L_adv: generator side of the log-loss GAN, -log D(fake) (Eqs. 10, 11), or
  least squares (D(fake) - 1)^2 as an option.  Discriminator side: Eqs. 8, 9.

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


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eqs. 12-14 (paper values) and the loss conventions."""

    alpha: float = 0.01    # L_f, every block
    psi: float = 0.01      # adversarial terms (block 1 local; block 3 local + global)
    gamma_a: float = 10.0  # L_style, block 1
    gamma_b: float = 10.0  # L_style, block 2
    gamma_c: float = 1.0   # L_style, block 3
    #: L_h on the learned prior estimator's output, added to L_net1.  Not in
    #: the paper (its FAN is pre-trained and frozen); only used with
    #: landmark_input="learned".
    prior: float = 1.0
    #: "log": the paper's log-loss GAN; "lsgan": least squares (public code).
    adversarial: str = "log"
    reduction: str = "mean"

    def __post_init__(self) -> None:
        if self.adversarial not in ADVERSARIAL_KINDS:
            raise ValueError(f"adversarial must be one of {ADVERSARIAL_KINDS}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}")

    @property
    def gammas(self) -> tuple[float, float, float]:
        return self.gamma_a, self.gamma_b, self.gamma_c


def _reduce(err: torch.Tensor, reduction: str) -> torch.Tensor:
    """mean over all elements, or sum per sample then mean over the batch."""
    return err.mean() if reduction == "mean" else err.flatten(1).sum(1).mean()


def mse_loss(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L_mse / L_f: squared error (Eqs. 4, 5)."""
    return _reduce((x - y).square(), reduction)


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L_h (Eq. 6) on (B, L, H, W) heatmaps.  "sum": per-heatmap squared L2
    norm, averaged over landmarks and batch; "mean": also over pixels."""
    err = (pred - target.to(pred.dtype)).square()
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
        total = total + _reduce((gram_matrix(f) - gram_matrix(target_feats[name])).abs(),
                                reduction)
    return total


def adversarial_g_loss(fake_logits: torch.Tensor, kind: str = "log") -> torch.Tensor:
    """Generator side: -log σ(D(fake)) (Eqs. 10, 11) or (D(fake) - 1)^2."""
    if kind == "log":
        return F.softplus(-fake_logits).mean()
    return (fake_logits - 1).square().mean()


def adversarial_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       kind: str = "log") -> torch.Tensor:
    """Discriminator side: -[log σ(D(real)) + log(1 - σ(D(fake)))]
    (Eqs. 8, 9) or (D(real) - 1)^2 + D(fake)^2."""
    if kind == "log":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    return (real_logits - 1).square().mean() + fake_logits.square().mean()


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

    ``vgg19`` must tap relu3_2 and ``vgg16`` pool1-3 (see
    :meth:`from_weights`).  Without them, L_f and L_style can only be
    dropped explicitly with ``without_vgg=True``; there is no fallback to
    random VGG weights.
    """

    def __init__(self, config: ProUIGANConfig | None = None,
                 weights: LossWeights | None = None, *,
                 vgg19: VGGFeatures | None = None, vgg16: VGGFeatures | None = None,
                 without_vgg: bool = False):
        super().__init__()
        self.config = config or ProUIGANConfig()
        self.weights = weights or LossWeights()
        if without_vgg:
            vgg19 = vgg16 = None
        elif vgg19 is None or vgg16 is None:
            raise ValueError("L_f and L_style need pretrained VGG-19 and VGG-16 "
                             "(occface.model.load_vgg); pass without_vgg=True to "
                             "train without them")
        self.vgg19 = vgg19
        self.vgg16 = vgg16

    @classmethod
    def from_weights(cls, config=None, weights=None, *, vgg16: dict | None = None,
                     vgg19: dict | None = None, without_vgg: bool = False) -> "ProUIGANLoss":
        """Build with VGGs loaded by :func:`load_vgg`; ``vgg16`` / ``vgg19``
        are its keyword arguments (path=, hub_dir=, allow_download=)."""
        if without_vgg:
            return cls(config, weights, without_vgg=True)
        return cls(config, weights,
                   vgg19=load_vgg("vgg19", FEATURE_TAPS, **(vgg19 or {})),
                   vgg16=load_vgg("vgg16", STYLE_TAPS, **(vgg16 or {})))

    def _perceptual(self, image: torch.Tensor, target: torch.Tensor, gamma: float,
                    terms: dict, tag: str) -> torch.Tensor:
        if self.vgg19 is None:
            return image.new_zeros(())
        red = self.weights.reduction
        x, y = imagenet_normalise(image), imagenet_normalise(target)
        with torch.no_grad():
            fy, sy = self.vgg19(y), self.vgg16(y)
        fx, sx = self.vgg19(x), self.vgg16(x)
        terms[f"{tag}/feature"] = feat = mse_loss(fx["relu3_2"], fy["relu3_2"], red)
        terms[f"{tag}/style"] = style = style_loss(sx, sy, red)
        return self.weights.alpha * feat + gamma * style

    def generator_loss(self, out: GeneratorOutput, hr: torch.Tensor,
                       heatmaps: Sequence[torch.Tensor],
                       local_d: nn.Module | None = None,
                       global_d: nn.Module | None = None) -> tuple[torch.Tensor, dict]:
        """L_G over the blocks present in ``out`` (1, 2 or 3 for staged
        pre-training).  ``hr``: (B, 3, 128, 128) in [-1, 1].  ``heatmaps``:
        ground truth per block, (B, L1, 16, 16), (B, L2, 32, 32),
        (B, L3, 64, 64).  Adversarial terms are included when the
        discriminators are given.  Returns (total, {name: detached term})."""
        w, red, kind = self.weights, self.weights.reduction, self.weights.adversarial
        targets = image_pyramid(hr)
        terms: dict[str, torch.Tensor] = {}
        total = hr.new_zeros(())
        for k, (image, hm) in enumerate(zip(out.images, out.heatmaps)):
            tag = f"block{k + 1}"
            target = targets[k].to(image.dtype)
            terms[f"{tag}/mse"] = mse = mse_loss(image, target, red)
            terms[f"{tag}/heatmap"] = heat = heatmap_loss(hm, heatmaps[k], red)
            net = mse + heat + self._perceptual(image, target, w.gammas[k], terms, tag)
            if k in (0, 2) and local_d is not None:
                terms[f"{tag}/adv_local"] = adv = adversarial_g_loss(
                    local_d(central_crop(image, self.config)), kind)
                net = net + w.psi * adv
            if k == 2 and global_d is not None:
                terms[f"{tag}/adv_global"] = adv = adversarial_g_loss(global_d(image), kind)
                net = net + w.psi * adv
            if k == 0 and out.prior is not None:
                terms["prior/heatmap"] = prior = heatmap_loss(out.prior, heatmaps[0], red)
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
        (Eq. 9) on block 3; generator outputs are detached."""
        kind = self.weights.adversarial
        targets = image_pyramid(hr)
        terms: dict[str, torch.Tensor] = {}
        total = hr.new_zeros(())
        if local_d is not None:
            for k in (0, 2):
                if k < len(out.images):
                    real = central_crop(targets[k], self.config)
                    fake = central_crop(out.images[k].detach(), self.config)
                    terms[f"block{k + 1}/d_local"] = d = adversarial_d_loss(
                        local_d(real), local_d(fake), kind)
                    total = total + d
        if global_d is not None and len(out.images) == 3:
            terms["block3/d_global"] = d = adversarial_d_loss(
                global_d(targets[2]), global_d(out.images[2].detach()), kind)
            total = total + d
        terms = {name: t.detach() for name, t in terms.items()}
        terms["total"] = total.detach()
        return total, terms
