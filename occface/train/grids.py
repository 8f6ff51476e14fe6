"""Pictures of training: the image grid written to TensorBoard and ``grids/step-N.png``."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from ..model import ProUIGenerator
from ..model.config import HR_SIZE
from ..runtime import autocast
from .config import TrainConfig
from .inputs import prepare_batch

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


@torch.no_grad()
def log_images(writer, out_dir: str, g: ProUIGenerator, batch: dict, cfg: TrainConfig,
               device: torch.device, step: int, sigma: float) -> None:
    """TensorBoard grid (and grids/step-N.png): input LR, blocks 1-3, ground truth."""
    import cv2

    from ..metrics import psnr

    was_training = g.training
    g.eval()
    lr, hr, hms = prepare_batch(batch, cfg, device, sigma)
    with autocast(device, cfg.amp):
        out = g(lr, hms[0], blocks=3)
    g.train(was_training)
    grid = image_grid([lr, *out.images, hr])
    writer.add_image("grid/input_block1_block2_block3_gt", grid, step)
    to255 = lambda t: ((t.float().clamp(-1, 1) + 1) * 127.5).round().cpu()  # noqa: E731
    writer.add_scalar("grid/psnr_block3", float(psnr(to255(out.images[2]), to255(hr)).mean()), step)
    os.makedirs(os.path.join(out_dir, "grids"), exist_ok=True)
    cv2.imwrite(os.path.join(out_dir, "grids", f"step-{step:07d}.png"),
                np.ascontiguousarray(grid.permute(1, 2, 0).numpy()[..., ::-1]))
