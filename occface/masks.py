"""Occlusion masks on the 128x128 HR face.  Convention: 1 = missing.

Every mask kind is a frozen dataclass *spec* plus two functions:

* ``sample_params(spec, rng, landmarks=None, size=128) -> dict``: draws every
  random choice from the explicit generator ``rng`` and returns a
  JSON-serialisable dict that always holds ``"kind"``;
* ``render(params, size=128) -> np.ndarray``: a pure function of the params,
  returning a ``(size, size)`` uint8 array with values in {0, 1}.

The build stores the params with each sample, so every mask can be rebuilt
exactly from them (or from ``(seed, key)`` via ``occface.seeding``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SquareMask:
    """Axis-aligned square, side uniform in [min_side, max_side], uniform position (Pro-UIGAN)."""

    min_side: int = 16
    max_side: int = 64
    kind: str = "square"


def sample_params(spec, rng: np.random.Generator, landmarks: np.ndarray | None = None, size: int = 128) -> dict:
    """Draw the random parameters of one mask of kind ``spec``.

    ``landmarks``: (68, 2) float (x, y) in the ``size`` frame, for kinds that follow the face.
    """
    if isinstance(spec, SquareMask):
        side = int(rng.integers(spec.min_side, spec.max_side + 1))
        x0 = int(rng.integers(0, size - side + 1))
        y0 = int(rng.integers(0, size - side + 1))
        return {"kind": "square", "x0": x0, "y0": y0, "side": side}
    raise TypeError(f"unknown mask spec {spec!r}")


def render(params: dict, size: int = 128) -> np.ndarray:
    """Render sampled params to a (size, size) uint8 mask, 1 = missing."""
    kind = params["kind"]
    mask = np.zeros((size, size), np.uint8)
    if kind == "square":
        x0, y0, s = params["x0"], params["y0"], params["side"]
        mask[y0 : y0 + s, x0 : x0 + s] = 1
        return mask
    raise ValueError(f"unknown mask kind {kind!r}")


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of missing pixels."""
    return float(np.count_nonzero(mask)) / mask.size
