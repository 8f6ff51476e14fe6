"""Local-D and Global-D (paper §III-E).

Both are plain convolutional classifiers: 4x4 stride-2 convolutions with
LeakyReLU(0.2), a 3x3 convolution to one channel, and a spatial mean, so each
returns one real/fake *logit* per image, shape (B,).  Inputs are RGB in
[-1, 1], like the generator's outputs.

* Global-D sees the whole 128x128 face (block 3's output).
* Local-D sees the central facial region (eyes, nose, mouth): the box
  ``config.local_crop`` = (top, left, size) = (32, 32, 64) in the 128 frame,
  i.e. 64x64 on block 3's output and (8, 8, 16) -> 16x16 on block 1's 32x32
  output, as the paper states.  One Local-D serves both sizes (the spatial
  mean makes it size-agnostic), as the paper uses a single D^l.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ProUIGANConfig


class ConvDiscriminator(nn.Module):
    """Stride-2 conv stack -> 3x3 conv to 1 channel -> mean over positions."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            layers += [nn.Conv2d(cin, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            cin = w
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.min_side = 2 ** len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_side:
            raise ValueError(f"input side must be >= {self.min_side}, got {tuple(x.shape)}")
        return self.net(x).mean(dim=(1, 2, 3))


class GlobalDiscriminator(ConvDiscriminator):
    """Global-D on the whole (B, 3, 128, 128) face; returns (B,) logits."""

    def __init__(self, config: ProUIGANConfig | None = None):
        super().__init__((config or ProUIGANConfig()).global_d_widths)


class LocalDiscriminator(ConvDiscriminator):
    """Local-D on the central facial crop; returns (B,) logits.
    Use :func:`central_crop` to cut its input."""

    def __init__(self, config: ProUIGANConfig | None = None):
        super().__init__((config or ProUIGANConfig()).local_d_widths)


def central_crop(image: torch.Tensor, config: ProUIGANConfig | None = None) -> torch.Tensor:
    """The Local-D region of a square image of side 32, 64 or 128, using
    ``config.local_crop`` scaled to the image's side."""
    top, left, size = (config or ProUIGANConfig()).local_box(image.shape[-1])
    return image[..., top:top + size, left:left + size]
