"""Small helpers the occluder samplers share: drawing random values, building layers and textures."""

from __future__ import annotations

import numpy as np

from . import palettes
from .paint import to_fixed, to_fixed_many


class Draw:
    """Every random value of one occluder, taken from one generator in call order."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def u(self) -> float:
        return float(self.rng.random())

    def u3(self) -> list[float]:
        return self.rng.random(3).tolist()

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.u()

    def chance(self, p: float) -> bool:
        return self.u() < p

    def index(self, n: int) -> int:
        return min(int(self.u() * n), n - 1)

    def choice(self, seq):
        return seq[self.index(len(seq))]

    def weighted(self, weights: dict):
        total = sum(weights.values())
        x, acc = self.u() * total, 0.0
        for k, w in weights.items():
            acc += w
            if x < acc:
                return k
        return k

    def seed(self) -> int:
        return int(self.rng.integers(0, 2**63 - 1))

    def colour(self, palette, amount: float = 10.0) -> list[int]:
        return palettes.jitter(palettes.pick(palette, self.u()), self.u3(), amount)


def poly(points) -> dict:
    return {"poly": to_fixed(points)}


def line(points, width: float, closed: bool = False) -> dict:
    return {"line": to_fixed(points), "w": max(1, int(round(width))), "closed": bool(closed)}


def lines(points, width: float, closed: bool = False) -> list[dict]:
    """One stroke shape per polyline of ``points`` (k, n, 2), converted to 1/16 px at once."""
    w = max(1, int(round(width)))
    return [{"line": pts, "w": w, "closed": bool(closed)} for pts in to_fixed_many(points)]


def layer(shapes, tex: dict, shade=(), opacity: float = 1.0, soft: float = 0.6) -> dict:
    out = {"shapes": list(shapes), "tex": tex, "opacity": float(opacity), "soft": float(soft)}
    if shade:
        out["shade"] = list(shade)
    return out


def solid(c) -> dict:
    return {"type": "solid", "c": list(c)}


def unit(vec) -> list[float]:
    vec = np.asarray(vec, np.float64)
    n = float(np.hypot(*vec)) or 1.0
    return [float(vec[0] / n), float(vec[1] / n)]


def light(frame_or_origin, direction, extent: float, k: float) -> dict:
    """Shading brighter towards ``direction`` from ``origin`` (px), +/- ``k`` at ``extent`` px."""
    return {"type": "light", "o": [float(x) for x in frame_or_origin], "dir": unit(direction),
            "extent": float(max(extent, 1.0)), "k": float(k)}


def bulge(k: float, sigma: float) -> dict:
    return {"type": "bulge", "k": float(k), "sigma": float(max(sigma, 0.5))}


def fabric(d: Draw, base, u_dir, v_dir, iod: float, kinds=("solid", "stripes", "plaid", "dots", "fbm")) -> dict:
    """A cloth texture: solid with grain, stripes, plaid, polka dots or mottled (fBm), scaled to the face."""
    kind = d.choice(kinds)
    other = d.colour(palettes.FABRIC, 14)
    grain = d.uniform(0.03, 0.08)
    if kind == "solid":
        return {"type": "solid", "c": list(base), "grain": grain}
    if kind == "stripes":
        return {"type": "stripes", "c0": list(base), "c1": other, "dir": unit(d.choice((u_dir, v_dir))),
                "period": d.uniform(0.12, 0.3) * iod, "duty": d.uniform(0.25, 0.5), "phase": d.u(), "grain": grain}
    if kind == "plaid":
        return {"type": "plaid", "c0": list(base), "c1": other, "c2": d.colour(palettes.FABRIC, 14),
                "dir": unit(u_dir), "period": d.uniform(0.2, 0.4) * iod, "duty": d.uniform(0.15, 0.3),
                "phase": d.u(), "grain": grain}
    if kind == "dots":
        period = d.uniform(0.15, 0.3) * iod
        return {"type": "dots", "c0": list(base), "c1": other, "dir": unit(u_dir), "period": period,
                "radius": period * d.uniform(0.18, 0.32), "grain": grain}
    cell = d.uniform(0.15, 0.35) * iod
    return {"type": "fbm", "c0": list(base), "c1": other, "cell": [cell, cell], "octaves": 3, "gain": 0.5,
            "contrast": d.uniform(1.5, 3.0), "grain": grain}
