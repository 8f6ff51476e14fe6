"""Real face photos for the database-adapter tests.

Subjects are stood in for by photos that ship with scikit-image: LFW faces
from ``lfw_subset.npy`` (25x25 grey, enlarged with bicubic interpolation so
dlib's HOG finds them, as occface.db.sample does) and the astronaut's head,
transformed (flips, brightness, scale, padding) and written in each
database's exact layout.
"""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np
from PIL import Image


@functools.lru_cache(maxsize=1)
def _lfw() -> np.ndarray:
    from occface.db.sample import skimage_data_dir

    return np.load(os.path.join(skimage_data_dir(), "lfw_subset.npy"))


def lfw_face(i: int, side: int = 150) -> np.ndarray:
    """LFW face i (0..99 are faces) as (side, side, 3) uint8 RGB."""
    g = np.clip(np.rint(_lfw()[i] * 255.0), 0, 255).astype(np.uint8)
    g = cv2.resize(g, (side, side), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.repeat(g[..., None], 3, axis=2))


def astronaut_head() -> np.ndarray:
    """The astronaut's head (face box about x 59..146, y 63..150), without the suit patch HOG mistakes for a face."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[20:240, 120:330])


def vary(img: np.ndarray, k: int) -> np.ndarray:
    """A deterministic variant: mirror on odd k, brightness shift by k."""
    out = img[:, ::-1] if k % 2 else img
    return np.clip(out.astype(np.int16) + (k % 5) * 6 - 12, 0, 255).astype(np.uint8)


def place(canvas_hw: tuple[int, int], items, background: int = 96) -> np.ndarray:
    """Paste (img, x, y) items onto a flat grey canvas."""
    h, w = canvas_hw
    canvas = np.full((h, w, 3), background, np.uint8)
    for img, x, y in items:
        canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
    return canvas


def save(path: str, rgb: np.ndarray, quality: int = 92) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(rgb)
    if path.lower().endswith((".jpg", ".jpeg")):
        im.save(path, quality=quality)
    else:
        im.save(path)


def touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").close()


def beside(tmp_path, name: str):
    """A folder next to ``tmp_path`` (a database root): a build may not go inside the root it reads."""
    return tmp_path.parent / f"{tmp_path.name}-{name}"
