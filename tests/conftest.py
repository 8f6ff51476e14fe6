"""Shared fixtures: real face photos that ship with scikit-image, and real builds."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from occface.db.sample import skimage_data_dir


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut.png (public domain), (512, 512, 3) uint8 RGB, one face."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def lfw_faces() -> np.ndarray:
    """The 100 real LFW faces of scikit-image's lfw_subset, enlarged 4x (bicubic): (100, 100, 100, 3) uint8."""
    faces = np.load(os.path.join(skimage_data_dir(), "lfw_subset.npy"))[:100]
    gray = np.clip(np.rint(faces * 255), 0, 255).astype(np.uint8)
    big = np.stack([cv2.resize(g, (100, 100), interpolation=cv2.INTER_CUBIC) for g in gray])
    return np.repeat(big[..., None], 3, axis=3)
