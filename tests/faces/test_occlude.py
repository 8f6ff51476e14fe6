"""Fill modes: only the holes change, and each mode puts what it says there."""

import numpy as np
import pytest

from occface.faces.occlude import FillConfig, apply_fill, sample_fill
from occface.seeding import rng_for


@pytest.fixture
def face_and_mask(astronaut):
    hr = np.ascontiguousarray(astronaut[101:228, 150:277])  # 127x127: odd on purpose
    mask = np.zeros(hr.shape[:2], np.uint8)
    mask[20:61, 33:90] = 1
    return hr, mask


@pytest.mark.parametrize("mode", ["zeros", "mean", "constant", "noise"])
def test_only_holes_change(face_and_mask, mode):
    hr, mask = face_and_mask
    params = sample_fill(FillConfig(mode, value=77), rng_for(3, "k", "fill"))
    out = apply_fill(hr, mask, params)
    assert out.dtype == np.uint8 and out.shape == hr.shape
    assert (out[mask == 0] == hr[mask == 0]).all()
    holes = out[mask == 1]
    if mode == "zeros":
        assert (holes == 0).all()
    elif mode == "constant":
        assert (holes == 77).all()
    elif mode == "mean":
        assert np.abs(holes[0].astype(float) - hr[mask == 0].mean(0)).max() <= 0.5
        assert (holes == holes[0]).all()
    else:
        assert holes.std() > 50  # uniform 0..255 noise has std ~74
        again = apply_fill(hr, mask, sample_fill(FillConfig(mode), rng_for(3, "k", "fill")))
        assert (again == out).all()  # same (seed, key) -> same noise


def test_bad_fill_config():
    with pytest.raises(ValueError):
        FillConfig("blur")
    with pytest.raises(ValueError):
        FillConfig("constant", value=300)
