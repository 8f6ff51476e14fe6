"""``occface hallucinate``: 128x128 faces from occluded 16x16 thumbnails.

Inputs, either

* occluded LR images: 16x16 RGB (or greyscale) files, as the build's ``lr``; or
* an HR photo plus a mask file: an aligned face crop like the build's ``hr`` (square; any
  other side is resized to 128 with the build's bilinear rule), and a mask image of the
  same size, nonzero = missing.  The hole is filled (``fill``: zeros by default, as the
  builds) and the occluded face is downsampled to 16x16 with ``occface.faces.resize.resize``,
  exactly as a build makes its LR.

For each input ``NAME.ext`` the output is ``OUT/NAME.png`` (128x128 RGB, block 3); with
``stages`` also ``NAME_block1.png`` (32x32) and ``NAME_block2.png`` (64x64), and for HR
inputs ``NAME_lr.png``, the occluded LR the model saw.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import OccfaceError
from ..faces import resize as resize_mod
from ..faces.occlude import FillConfig, apply_fill, sample_fill
from ..seeding import rng_for
from .inference import run_generator

LR_SIZE = 16
HR_SIZE = 128


class WouldOverwrite(OccfaceError):
    """An output file of ``hallucinate`` is one of its inputs."""


def planned_outputs(out_dir: str, lr_paths: Sequence[str], hr_paths: Sequence[str], stages: bool) -> list[str]:
    """Every file :func:`hallucinate` would write, in order."""
    out = []
    for p in lr_paths:
        name = os.path.splitext(os.path.basename(p))[0]
        out += [os.path.join(out_dir, f"{name}.png")]
        out += [os.path.join(out_dir, f"{name}_block{b}.png") for b in (1, 2)] if stages else []
    for p in hr_paths:
        name = os.path.splitext(os.path.basename(p))[0]
        out += [os.path.join(out_dir, f"{name}_lr.png"), os.path.join(out_dir, f"{name}.png")]
        out += [os.path.join(out_dir, f"{name}_block{b}.png") for b in (1, 2)] if stages else []
    return out


def check_no_overwrite(outputs: Sequence[str], inputs: Sequence[str]) -> None:
    """Raise :class:`WouldOverwrite` when an output path is an input file (same file, any spelling)."""
    seen = set()
    for o in outputs:
        if os.path.abspath(o) in seen:
            raise WouldOverwrite(f"two inputs would both be written to {o}; rename one of them")
        seen.add(os.path.abspath(o))
    inputs = [p for p in inputs if os.path.exists(p)]
    for o in outputs:
        for p in inputs:
            if os.path.exists(o) and os.path.samefile(o, p) or os.path.abspath(o) == os.path.abspath(p):
                raise WouldOverwrite(f"writing {o} would overwrite the input {p}; write into another folder")


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB (greyscale files are repeated over the channels)."""
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(img[..., ::-1])


def read_mask(path: str, size: int) -> np.ndarray:
    """(size, size) uint8 mask, 1 = missing (nonzero pixels of the file), nearest resize."""
    import cv2

    m = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise ValueError(f"cannot read mask {path}")
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
    return (m > 0).astype(np.uint8)


def occlude_and_downsample(hr: np.ndarray, mask: np.ndarray, fill: FillConfig = FillConfig(),
                           rule: str = "bilinear-aa", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(occluded HR, occluded 16x16 LR) for a (128, 128, 3) face and a (128, 128) mask."""
    params = sample_fill(fill, rng_for(seed, "hallucinate", "fill"))
    occ = apply_fill(hr, mask, params)
    return occ, resize_mod.resize(occ, LR_SIZE, rule)


def load_hr(path: str, rule: str = "bilinear-aa") -> np.ndarray:
    img = read_rgb(path)
    h, w = img.shape[:2]
    if h != w:
        raise ValueError(f"{path}: the HR photo must be a square, aligned face crop (got {w}x{h})")
    return img if h == HR_SIZE else resize_mod.resize(img, HR_SIZE, rule)


def hallucinate(checkpoint: str, out_dir: str, lr_paths: Sequence[str] = (),
                hr_paths: Sequence[str] = (), mask_paths: Sequence[str] = (), *,
                fill: FillConfig = FillConfig(), device: str = "cpu", amp: str = "none",
                stages: bool = False, batch_size: int = 256,
                log: Callable[[str], None] = print) -> list[str]:
    """Run the checkpoint's generator on every input; returns the written 128x128 PNGs."""
    import cv2

    from ..train.checkpoint import load_generator

    if len(hr_paths) != len(mask_paths):
        raise ValueError(f"every HR photo needs a mask file ({len(hr_paths)} photos, {len(mask_paths)} masks)")
    if not lr_paths and not hr_paths:
        raise ValueError("nothing to do: give occluded LR images, or HR photos with mask files")
    check_no_overwrite(planned_outputs(out_dir, lr_paths, hr_paths, stages),
                       [*lr_paths, *hr_paths, *mask_paths, checkpoint])
    g, info = load_generator(checkpoint, device)
    if g.config.landmark_input == "gt":
        raise ValueError("this checkpoint's generator needs ground-truth heatmaps "
                         '(landmark_input="gt"); hallucinate runs models with a learned or no prior')
    names, lrs = [], []
    for p in lr_paths:
        img = read_rgb(p)
        if img.shape[:2] != (LR_SIZE, LR_SIZE):
            raise ValueError(f"{p}: occluded LR inputs must be {LR_SIZE}x{LR_SIZE} "
                             f"(got {img.shape[1]}x{img.shape[0]}); for a photo give it as an HR photo with a mask")
        names.append(os.path.splitext(os.path.basename(p))[0])
        lrs.append(img)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for hp, mp in zip(hr_paths, mask_paths):
        hr = load_hr(hp)
        _, lr = occlude_and_downsample(hr, read_mask(mp, HR_SIZE), fill)
        name = os.path.splitext(os.path.basename(hp))[0]
        cv2.imwrite(os.path.join(out_dir, f"{name}_lr.png"), lr[..., ::-1].copy())
        names.append(name)
        lrs.append(lr)
    if len(set(names)) != len(names):
        raise ValueError("two inputs share a file name; outputs would overwrite each other")
    lr = np.stack(lrs)
    for start in range(0, len(lr), batch_size):
        outs = run_generator(g, lr[start:start + batch_size], device=device, amp=amp)
        for k, name in enumerate(names[start:start + batch_size]):
            path = os.path.join(out_dir, f"{name}.png")
            cv2.imwrite(path, outs[2][k][..., ::-1].copy())
            written.append(path)
            if stages:
                for b in (0, 1):
                    cv2.imwrite(os.path.join(out_dir, f"{name}_block{b + 1}.png"),
                                outs[b][k][..., ::-1].copy())
    log(f"{len(written)} face(s) -> {out_dir} (checkpoint step {info['step']})")
    return written
