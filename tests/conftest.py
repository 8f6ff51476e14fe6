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


PROUIGAN_HEATMAPS = ("all68@16", "all68@32", "all68@64")  # what the default Pro-UIGAN config reads
TINY_PROUIGAN = dict(widths=(8, 6, 4), res_blocks=(1, 1, 1), prior_width=8, prior_res_blocks=1,
                     global_d_widths=(4, 4, 4, 4), local_d_widths=(4, 4, 4))  # seconds-fast CPU model


@pytest.fixture(scope="session")
def prouigan_build(tmp_path_factory) -> str:
    """The sample database (real LFW faces + astronaut) with 68-point heatmaps at 16/32/64: ~84 train / 10 test."""
    from occface import build as B
    from occface.build import BuildConfig
    from occface.db import SampleSource

    out = str(tmp_path_factory.mktemp("prouigan") / "build")
    B.build(SampleSource(), BuildConfig(heatmaps=PROUIGAN_HEATMAPS), out, workers=1, progress=False,
            log=lambda s: None)
    return out
