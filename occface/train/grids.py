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
from .schedule import stage_of


def _upsample(img: torch.Tensor, size: int = HR_SIZE) -> torch.Tensor:
    return img if img.shape[-1] == size else F.interpolate(img.float(), size=(size, size), mode="nearest")


ROW_NAMES = ("occluded LR (x8)", "block 1 (32 px)", "block 2 (64 px)", "block 3 (128 px)", "ground truth")
LABEL_WIDTH = 132
HEADER = 22


def image_grid(rows: list[torch.Tensor], pad: int = 2, names: tuple[str, ...] | None = None,
               title: str | None = None) -> torch.Tensor:
    """Rows of (N, 3, h, w) images in [-1, 1] -> one (3, H, W) uint8 image: row r holds
    ``rows[r]`` (each upsampled to 128 with nearest neighbour), with ``pad`` px of white.
    ``names``: a label per row, drawn in a column on the left; ``title``: a header line."""
    import cv2

    rows = [_upsample(r.detach().float().cpu()) for r in rows]
    n, s = rows[0].shape[0], HR_SIZE
    left = LABEL_WIDTH if names else 0
    top = HEADER if title else 0
    canvas = np.full((top + len(rows) * (s + pad) + pad, left + n * (s + pad) + pad, 3), 255, np.uint8)
    if title:
        cv2.putText(canvas, title, (4, 15), cv2.FONT_HERSHEY_PLAIN, 1.0, (0, 0, 0), 1, cv2.LINE_AA)
    for i, r in enumerate(rows):
        u8 = ((r.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        y = top + pad + i * (s + pad)
        if names:
            cv2.putText(canvas, names[i], (4, y + s // 2 + 4), cv2.FONT_HERSHEY_PLAIN, 0.85, (0, 0, 0), 1,
                        cv2.LINE_AA)
        for j in range(n):
            x = left + pad + j * (s + pad)
            canvas[y:y + s, x:x + s] = u8[j]
    return torch.from_numpy(canvas).permute(2, 0, 1).contiguous()


@torch.no_grad()
def log_images(writer, out_dir: str, g: ProUIGenerator, batch: dict, cfg: TrainConfig,
               device: torch.device, step: int, sigma: float, faces: str = "test",
               weights: str = "") -> None:
    """TensorBoard grid (and grids/step-N.png): input LR, blocks 1-3, ground truth, one row
    each, labelled, with the step and the block-3 PSNR in the header."""
    import cv2

    from ..metrics import psnr

    was_training = g.training
    g.eval()
    lr, hr, hms = prepare_batch(batch, cfg, device, sigma)
    with autocast(device, cfg.amp):
        out = g(lr, hms[0], blocks=3)
    g.train(was_training)
    to255 = lambda t: ((t.float().clamp(-1, 1) + 1) * 127.5).round().cpu()  # noqa: E731
    p3 = float(psnr(to255(out.images[2]), to255(hr)).mean())
    grid = image_grid([lr, *out.images, hr], names=ROW_NAMES,
                      title=f"step {step} (stage {stage_of(step, cfg)}{weights}): {faces} faces, "
                            f"block 3 PSNR {p3:.2f} dB")
    writer.add_image("grid/input_block1_block2_block3_gt", grid, step)
    writer.add_scalar("grid/psnr_block3", p3, step)
    os.makedirs(os.path.join(out_dir, "grids"), exist_ok=True)
    cv2.imwrite(os.path.join(out_dir, "grids", f"step-{step:07d}.png"),
                np.ascontiguousarray(grid.permute(1, 2, 0).numpy()[..., ::-1]))
