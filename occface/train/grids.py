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


ROW_NAMES = (("input", "occluded LR 16 px", "(x8 nearest)"), ("block 1", "32 px (x4)"), ("block 2", "64 px (x2)"),
             ("block 3", "128 px output"), ("ground truth", "clean HR 128 px"))


def labelled_grid(rows: list[torch.Tensor], step: int, stage: int, keys: list[str] | None = None,
                  note: str = "") -> np.ndarray:
    """The training picture as (H, W, 3) uint8 RGB: one row per stage of the generator (named at
    the left), one column per face (headed by its key), block 3 captioned with its PSNR, the step
    and stage (and ``note``, e.g. which faces and weights) in the title."""
    from .. import pictures
    from ..metrics import psnr

    to_u8 = lambda t: ((_upsample(t.detach().float().cpu()).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # noqa: E731
    u8 = [to_u8(r) for r in rows]
    n = u8[0].shape[0]
    p = psnr(u8[3].float(), u8[4].float()).tolist()
    cells = [[u8[r][j].permute(1, 2, 0).numpy() for j in range(n)] for r in range(len(u8))]
    captions = [[""] * n for _ in u8]
    captions[3] = [f"{v:.2f} dB" for v in p]
    columns = [k.split(":", 1)[-1] for k in keys] if keys else [f"face {j + 1}" for j in range(n)]
    title = f"step {step} (stage {stage}): input, UI-blocks 1-3 and ground truth{note}"
    footer = "Captions: PSNR of block 3 against the ground truth (dB, RGB 0-255). Smaller outputs enlarged (nearest)."
    return pictures.grid(cells, columns=columns, row_labels=[list(r) for r in ROW_NAMES], captions=captions,
                         title=title, footer=footer, gap=4, label_width=120)


@torch.no_grad()
def log_images(writer, out_dir: str, g: ProUIGenerator, batch: dict, cfg: TrainConfig,
               device: torch.device, step: int, sigma: float, faces: str = "test",
               weights: str = "") -> None:
    """TensorBoard picture (and grids/step-N.png): input LR, blocks 1-3, ground truth, labelled;
    ``faces`` (test / training) and ``weights`` (e.g. ", EMA weights") go into the title."""
    from .. import pictures
    from ..metrics import psnr
    from .schedule import stage_of

    was_training = g.training
    g.eval()
    lr, hr, hms = prepare_batch(batch, cfg, device, sigma)
    with autocast(device, cfg.amp):
        out = g(lr, hms[0], blocks=3)
    g.train(was_training)
    keys = batch.get("key") if isinstance(batch.get("key"), list) else None
    pic = labelled_grid([lr, *out.images, hr], step, stage_of(max(step - 1, 0), cfg), keys,
                        f"; {faces} faces{weights}")
    writer.add_image("grid/input_block1_block2_block3_gt", torch.from_numpy(pic).permute(2, 0, 1), step)
    to255 = lambda t: ((t.float().clamp(-1, 1) + 1) * 127.5).round().cpu()  # noqa: E731
    writer.add_scalar("grid/psnr_block3", float(psnr(to255(out.images[2]), to255(hr)).mean()), step)
    pictures.write_png(os.path.join(out_dir, "grids", f"step-{step:07d}.png"), pic)
