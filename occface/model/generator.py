"""Pro-UInet, the Pro-UIGAN generator (paper §III-B to §III-D).

Conventions
-----------
* Input: the occluded LR face, (B, 3, 16, 16) float RGB in [-1, 1]
  (``x = 2 * uint8 / 255 - 1``).
* Images out: one per UI-block, (B, 3, 32, 32), (B, 3, 64, 64) and
  (B, 3, 128, 128), each through tanh, so in [-1, 1].
* Heatmaps out: one stack per UI-block at the block's *input* side, where
  its CM-AM works: (B, L1, 16, 16), (B, L2, 32, 32), (B, L3, 64, 64) with
  (L1, L2, L3) = ``config.heatmap_channels``.  They are linear (no
  activation) and are trained with L_h towards Gaussian heatmaps in [0, 1].
* Landmark input to block 1 (``config.landmark_input``):
  "learned" - a prior estimator predicts (B, L1, 16, 16) from the LR input;
  its output is returned as ``prior`` so L_h can supervise it;
  "gt" - the caller passes ground-truth heatmaps (B, L1, 16, 16);
  "none" - block 1 has no CM-AM (P-FP ablation); its heatmaps are read from
  the face features alone.
  Blocks 2 and 3 take the previous block's heatmaps, upsampled x2
  (bilinear), as their landmark input: the geometry prior is refined block
  by block, as the paper's progressive strategy describes.
  With ``config.detach_prior`` / ``config.detach_heatmaps`` the learned
  prior and each block's heatmaps are passed on detached, so only L_h trains
  the landmark estimators (the returned tensors keep their gradients for L_h).

Each UI-block: F_C = ReLU(conv3x3(image)); F_L = ReLU(conv3x3(heatmaps));
(F_P, F_A) = CM-AM(F_C, F_L); heatmaps = conv3x3(F_P) (+ the learned template);
F_out = H_res(H_up(concat(F_P, F_A))) (Eq. 3); image = tanh(conv3x3(F_out)).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CrossModalAttention, conv3x3
from .config import BLOCK_INPUT_SIZES, LR_SIZE, ProUIGANConfig


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 plus identity (no normalisation)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(conv3x3(width, width), nn.ReLU(inplace=True),
                                  conv3x3(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TUM(nn.Module):
    """Transformative upsampling module, Eq. 3: H_res(H_up(x)).

    H_up doubles the side: a 4x4 stride-2 transposed convolution ("deconv",
    paper) or bilinear x2 followed by a 3x3 convolution ("bilinear", public
    code); then ReLU.  H_res is ``n_res`` residual blocks.
    """

    def __init__(self, cin: int, width: int, n_res: int, upsample: str = "deconv"):
        super().__init__()
        if upsample == "deconv":
            up = [nn.ConvTranspose2d(cin, width, 4, stride=2, padding=1)]
        else:
            up = [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                  conv3x3(cin, width)]
        self.up = nn.Sequential(*up, nn.ReLU(inplace=True))
        self.res = nn.Sequential(*(ResBlock(width) for _ in range(n_res)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(self.up(x))


class HeatmapHead(nn.Module):
    """Features (B, width, S, S) -> heatmaps (B, channels, S, S): a 3x3 convolution, plus a
    learned (channels, S, S) template when ``template`` (``ProUIGANConfig.heatmap_template``),
    zero until :meth:`ProUIGenerator.init_templates` sets it."""

    def __init__(self, width: int, channels: int, side: int, template: bool = True):
        super().__init__()
        self.conv = conv3x3(width, channels)
        self.template = nn.Parameter(torch.zeros(channels, side, side)) if template else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return h if self.template is None else h + self.template.to(h.dtype)


class ResidualHeatmapHead(nn.Module):
    """Features (B, width, S, S) and the block's landmark input (B, channels, S, S) -> heatmaps: the
    input plus a 3x3 convolution that starts at zero (``ProUIGANConfig.heatmap_residual``)."""

    def __init__(self, width: int, channels: int):
        super().__init__()
        self.conv = conv3x3(width, channels)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return landmarks.to(x.dtype) + self.conv(x)


class UIBlock(nn.Module):
    """One upsampling-and-inpainting block: CM-AM then TUM, 2x upscaling.

    ``forward(image, heatmaps)`` maps an image (B, 3, s, s) and landmark
    heatmaps (B, heatmaps_in, s, s) - or None when ``attention`` is False -
    to an image (B, 3, 2s, 2s) in [-1, 1] and heatmaps (B, heatmaps_out, s, s).
    """

    def __init__(self, width: int, n_res: int, heatmaps_in: int, heatmaps_out: int,
                 config: ProUIGANConfig, attention: bool = True, side: int = LR_SIZE):
        super().__init__()
        self.encode_face = nn.Sequential(conv3x3(3, width), nn.ReLU(inplace=True))
        if attention:
            self.encode_landmarks = nn.Sequential(conv3x3(heatmaps_in, width),
                                                  nn.ReLU(inplace=True))
            self.cmam = CrossModalAttention(width, config.attention, config.qk_dim,
                                            config.cosine_scale)
        else:
            self.encode_landmarks = self.cmam = None
        self.residual = bool(config.heatmap_residual and attention)
        self.heatmap_head = (ResidualHeatmapHead(width, heatmaps_out) if self.residual else
                             HeatmapHead(width, heatmaps_out, side, config.heatmap_template))
        self.tum = TUM(2 * width if attention else width, width, n_res, config.upsample)
        self.to_image = conv3x3(width, 3)

    def forward(self, image: torch.Tensor, heatmaps: torch.Tensor | None):
        f_c = self.encode_face(image)
        if self.cmam is None:
            return torch.tanh(self.to_image(self.tum(f_c))), self.heatmap_head(f_c)
        f_p, f_a = self.cmam(f_c, self.encode_landmarks(heatmaps))
        out = self.tum(torch.cat([f_p, f_a], dim=1))
        hm = self.heatmap_head(f_p, heatmaps) if self.residual else self.heatmap_head(f_p)
        return torch.tanh(self.to_image(out)), hm


class PriorEstimator(nn.Module):
    """Learned stand-in for FAN on the occluded 16x16 input: a conv stem,
    residual blocks and a 3x3 head giving (B, channels, 16, 16) heatmaps."""

    def __init__(self, channels: int, width: int = 64, n_res: int = 2, template: bool = True):
        super().__init__()
        self.net = nn.Sequential(conv3x3(3, width), nn.ReLU(inplace=True),
                                 *(ResBlock(width) for _ in range(n_res)),
                                 HeatmapHead(width, channels, LR_SIZE, template))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.net(lr)


def render_points(points: torch.Tensor, side: int, sigma: float, frame: int = 128) -> torch.Tensor:
    """(B, P, 2) points (x, y) in the ``frame`` crop -> (B, P, side, side) Gaussian heatmaps, peak 1 on
    each point, ``sigma`` in heatmap pixels; the mapping of occface.faces.heatmaps
    (``x_S = (x + 0.5) * S / frame - 0.5``), differentiable in the points (float32)."""
    p = (points.float() + 0.5) * (side / frame) - 0.5
    grid = torch.arange(side, dtype=torch.float32, device=points.device)
    gx = torch.exp(-(grid - p[..., 0:1]).square() / (2 * sigma ** 2))  # (B, P, side) along x
    gy = torch.exp(-(grid - p[..., 1:2]).square() / (2 * sigma ** 2))
    return gy[..., :, None] * gx[..., None, :]


class PointPrior(nn.Module):
    """Learned prior that regresses the 68 landmarks from the occluded 16x16 input
    (``prior_kind="points"``): a conv stem and residual blocks at 16x16, two stride-2
    convolutions to 4x4, a linear layer giving offsets from the mean training shape (zero at
    the start, so the first prediction is the mean shape), rendered as Gaussian heatmaps.

    ``points(lr)``: (B, 3, 16, 16) in [-1, 1] -> (B, 68, 2) (x, y) in the 128 frame."""

    #: offsets are predicted in units of this many 128-frame pixels (keeps the linear layer's
    #: outputs near 1 for typical deviations from the mean face)
    OFFSET_SCALE = 10.0

    def __init__(self, width: int = 64, n_res: int = 2, sigma: float = 1.0):
        super().__init__()
        self.sigma = sigma
        self.features = nn.Sequential(conv3x3(3, width), nn.ReLU(inplace=True),
                                      *(ResBlock(width) for _ in range(n_res)),
                                      nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.offsets = nn.Linear(2 * width * (LR_SIZE // 4) ** 2, 68 * 2)
        nn.init.zeros_(self.offsets.weight)
        nn.init.zeros_(self.offsets.bias)
        self.register_buffer("mean_shape", torch.zeros(68, 2))  # set by ProUIGenerator.init_mean_shape

    def points(self, lr: torch.Tensor) -> torch.Tensor:
        d = self.offsets(self.features(lr).flatten(1)).view(-1, 68, 2)
        return self.mean_shape.to(d.dtype) + self.OFFSET_SCALE * d

    def forward(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(heatmaps (B, 68, 16, 16) float32, points (B, 68, 2))."""
        pts = self.points(lr)
        return render_points(pts, LR_SIZE, self.sigma), pts


class GeneratorOutput(NamedTuple):
    """``images``: per block (B,3,32,32), (B,3,64,64), (B,3,128,128) in [-1, 1].
    ``heatmaps``: per block (B,L1,16,16), (B,L2,32,32), (B,L3,64,64).
    ``prior``: the learned prior estimator's (B,L1,16,16) heatmaps, or None.
    ``prior_points``: (B, 68, 2) landmarks in the 128 frame of a ``prior_kind="points"``
    prior (whose ``prior`` heatmaps are their rendering), else None.
    Blocks not run (``blocks < 3``) are absent from the tuples."""

    images: tuple[torch.Tensor, ...]
    heatmaps: tuple[torch.Tensor, ...]
    prior: torch.Tensor | None
    prior_points: torch.Tensor | None = None


class ProUIGenerator(nn.Module):
    """Pro-UInet: three UI-blocks, 16 -> 32 -> 64 -> 128 (see module doc)."""

    def __init__(self, config: ProUIGANConfig | None = None):
        super().__init__()
        self.config = config = config or ProUIGANConfig()
        hm = config.heatmap_channels
        if config.landmark_input != "learned":
            self.prior = None
        elif config.prior_kind == "points":
            self.prior = PointPrior(config.prior_width, config.prior_res_blocks, config.prior_sigma)
        else:
            self.prior = PriorEstimator(hm[0], config.prior_width, config.prior_res_blocks,
                                        config.heatmap_template)
        self.blocks = nn.ModuleList(
            UIBlock(config.widths[i], config.res_blocks[i],
                    hm[0] if i == 0 else hm[i - 1], hm[i], config,
                    attention=not (i == 0 and config.landmark_input == "none"),
                    side=BLOCK_INPUT_SIZES[i])
            for i in range(3))

    @torch.no_grad()
    def init_templates(self, mean_heatmaps) -> None:
        """Set every heatmap head's template (``config.heatmap_template``) to the mean
        ground-truth heatmaps of the training faces: ``mean_heatmaps`` per block,
        (L1, 16, 16), (L2, 32, 32), (L3, 64, 64); the learned prior takes block 1's."""
        for head, mean in zip((b.heatmap_head for b in self.blocks), mean_heatmaps):
            if getattr(head, "template", None) is not None:
                head.template.copy_(mean)
        if isinstance(self.prior, PriorEstimator) and self.prior.net[-1].template is not None:
            self.prior.net[-1].template.copy_(mean_heatmaps[0])

    @torch.no_grad()
    def init_mean_shape(self, mean_landmarks) -> None:
        """Set a ``prior_kind="points"`` prior's starting shape to the mean (68, 2) landmarks of the
        training faces (128 frame); other priors have none."""
        if isinstance(self.prior, PointPrior):
            self.prior.mean_shape.copy_(torch.as_tensor(mean_landmarks, dtype=torch.float32))

    def forward(self, lr: torch.Tensor, heatmaps: torch.Tensor | None = None,
                blocks: int = 3) -> GeneratorOutput:
        """``lr``: (B, 3, 16, 16) in [-1, 1].  ``heatmaps``: ground-truth
        (B, L1, 16, 16) block-1 landmark input, required when
        landmark_input is "gt" and ignored otherwise.  ``blocks``: run only
        the first 1, 2 or 3 UI-blocks (for the paper's staged pre-training)."""
        if lr.shape[-2:] != (LR_SIZE, LR_SIZE):
            raise ValueError(f"expected a (B, 3, {LR_SIZE}, {LR_SIZE}) input, got {tuple(lr.shape)}")
        if not 1 <= blocks <= 3:
            raise ValueError(f"blocks must be 1, 2 or 3, got {blocks}")
        mode = self.config.landmark_input
        prior = points = None
        if mode == "learned":
            if isinstance(self.prior, PointPrior):
                prior, points = self.prior(lr)
                prior = prior.to(lr.dtype)
            else:
                prior = self.prior(lr)
            landmarks = prior.detach() if self.config.detach_prior else prior
        elif mode == "gt":
            if heatmaps is None:
                raise ValueError('landmark_input="gt" needs ground-truth heatmaps (B, L1, 16, 16)')
            landmarks = heatmaps.to(lr.dtype)
        else:
            landmarks = None
        images, maps = [], []
        image = lr
        for i, block in enumerate(self.blocks[:blocks]):
            if i:
                prev = maps[-1].detach() if self.config.detach_heatmaps else maps[-1]
                landmarks = F.interpolate(prev, scale_factor=2, mode="bilinear",
                                          align_corners=False)
            image, hm = block(image, landmarks)
            images.append(image)
            maps.append(hm)
        return GeneratorOutput(tuple(images), tuple(maps), prior, points)
