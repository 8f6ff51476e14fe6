"""Hair over the forehead and eyes: a fringe, a side-swept fringe, or loose strands.

Heights are measured down the face (``v``) from the eye centres' midpoint, in iod; the brow
line ``b_brow`` is the mean height of points 17-26 (about -0.35 on aligned faces).

* ``fringe``: the lower edge runs temple to temple at ``b_brow + depth``, depth ~
  U(-0.2, 0.35) (over the upper lids at the long end), jagged: 14-22 clumps whose tips hang
  0.03-0.12 iod below the notches between them; the hair mass above it runs off the image,
  optionally with side locks down the face contour to jaw 3 / 13 (p 0.5); the crown is half an
  ellipse over the head, 0.15-0.35 iod wider than the temples on each side;
* ``side``: the edge slants from ``b_brow - 0.15`` on one side to 0.25-0.6 (over that eye) on
  the other;
* ``strands``: 3-6 loose locks of 4-8 hairs each (1 px, curved), from the top of the image
  across the forehead and eyes down to -0.2..0.8 (little area: most of the face stays visible).

Colour: a ``palettes.HAIR`` shade; the mass is fBm stretched along the hair (streaks, darker
and lighter tones), with 12-23 darker strands drawn over the edge.
"""

from __future__ import annotations

import numpy as np

from . import palettes
from .draw import Draw, bulge, layer, light, lines, poly
from .frame import FaceFrame, bezier, push_out

STYLES = ("fringe", "side", "strands")


def _strands(d: Draw, f: FaceFrame, mid, a0, a1, b0, b1, bend) -> np.ndarray:
    """(k, 9, 2) curved strands from (a0, b0) to (a1, b1) (arrays, iod around ``mid``), bowed by ``bend`` iod."""
    start, end = f.at(mid, a0, b0), f.at(mid, a1, b1)
    ctrl = (start + end) / 2 + np.asarray(bend)[:, None] * f.u * f.iod
    return bezier(start, ctrl, end, 8)


def sample(style: str, d: Draw, f: FaceFrame, size: int) -> dict:
    if style == "any":
        style = d.weighted({"fringe": 2.0, "side": 1.5, "strands": 1.0})
    lm = f.lm
    hair = d.colour(palettes.HAIR, 10)
    dark, bright = palettes.shade_of(hair, 0.7), palettes.shade_of(hair, 1.3)
    mid = f.eye_mid
    b_brow = float(((lm[17:27] - mid) @ f.v).mean()) / f.iod
    rand = d.rng.random
    layers = []
    if style == "strands":  # 1-2 locks per tone, 4-8 thin hairs each, falling across the forehead and eyes
        for colour in (dark, hair, bright):
            locks, per = 1 + d.index(2), 4 + d.index(5)
            lock = rand((locks, 3))  # position, reach, bend
            a = np.repeat(lock[:, 0] * 1.8 - 0.9, per)
            reach = np.repeat(lock[:, 1] * 0.8 - 0.1, per)  # down to -0.1..0.7 iod: eyes and cheeks, not the mouth
            bend = np.repeat(lock[:, 2] * 0.8 - 0.4, per)
            jit = rand((locks * per, 3))
            pts = _strands(d, f, mid, a + jit[:, 0] * 0.4 - 0.2, a + bend + jit[:, 1] * 0.36 - 0.18,
                           np.full(locks * per, -3.0), reach + jit[:, 2] * 0.2 - 0.1, bend * 0.8)
            layers.append(layer(lines(pts, 1.0), {"type": "solid", "c": colour}, (), 0.85, 0.3))
        return {"object": "hair", "style": style, "fallback": None, "layers": layers}
    if style == "fringe":
        depth = d.uniform(-0.2, 0.35)
        b_r = b_l = b_brow + depth
    else:
        hi, lo = b_brow - 0.15, d.uniform(0.25, 0.6)
        b_r, b_l = (hi, lo) if d.chance(0.5) else (lo, hi)
    centre = (lm[30] + lm[8]) / 2
    temple_r = push_out([f.at(lm[0], 0, -0.5)], centre, 0.1 * f.iod)[0]
    temple_l = push_out([f.at(lm[16], 0, -0.5)], centre, 0.1 * f.iod)[0]
    a_r = float((temple_r - mid) @ f.u) / f.iod
    a_l = float((temple_l - mid) @ f.u) / f.iod
    n = 14 + d.index(9)
    s_edge = np.arange(2 * n + 1) / (2 * n)
    jag = rand(2 * n + 1)
    tips = np.arange(2 * n + 1) % 2 == 1  # clump tips hang 0.03-0.12 below the line, notches up to 0.04 above
    b_edge = b_r + (b_l - b_r) * s_edge + np.where(tips, 0.03 + 0.09 * jag, -0.04 * jag)
    edge = f.at(mid, a_r + (a_l - a_r) * s_edge, b_edge)
    # the crown: half an ellipse over the head from temple to temple (0.15-0.35 iod of volume at the sides)
    volume = d.uniform(0.15, 0.35)
    head_c = f.at(mid, (a_r + a_l) / 2, -0.45)
    half_u, half_v = (a_l - a_r) / 2 + volume, d.uniform(1.5, 1.8)
    t = np.linspace(0, np.pi, 13)
    crown = f.at(head_c, half_u * np.cos(t), -half_v * np.sin(t))  # subject's left -> over the top -> right
    top_r = crown[-1]
    if d.chance(0.5):  # side locks framing the face: bands outside the jaw contour down to jaw 3 / 13
        lock = d.uniform(0.05, 0.2) * f.iod
        out_r, in_r = push_out(lm[[0, 1, 2, 3]], centre, lock), push_out(lm[[3, 2, 1, 0]], centre, 0.02 * f.iod)
        in_l, out_l = push_out(lm[[16, 15, 14, 13]], centre, 0.02 * f.iod), push_out(lm[[13, 14, 15, 16]], centre, lock)
        outline = np.concatenate([[top_r], out_r, in_r, [temple_r], edge, [temple_l], in_l, out_l, crown[:-1]])
    else:
        outline = np.concatenate([[top_r, temple_r], edge, [temple_l], crown[:-1]])
    cell = [max(1.0, 0.05 * f.iod), 0.6 * f.iod]
    tex = {"type": "fbm", "c0": dark, "c1": bright, "cell": cell, "octaves": 3, "gain": 0.55, "contrast": 1.6}
    layers.append(layer([poly(outline)], tex, [light(mid, -f.v, f.iod, 0.15), bulge(0.15, 0.2 * f.iod)], 1.0, 0.7))
    for colour in (dark,):  # loose hairs over the edge, from inside the mass to just past it
        k = 12 + d.index(12)
        r = rand((k, 5))
        a = a_r + (a_l - a_r) * r[:, 0]
        b = b_r + (b_l - b_r) * r[:, 0]
        pts = _strands(d, f, mid, a + r[:, 1] * 0.2 - 0.1, a + r[:, 2] * 0.24 - 0.12, b - 0.3 - 0.5 * r[:, 3],
                       b + 0.1 * r[:, 4], (r[:, 1] - 0.5) * 0.3)
        layers.append(layer(lines(pts, 1.0), {"type": "solid", "c": colour}, (), 0.75, 0.35))
    return {"object": "hair", "style": style, "fallback": None, "layers": layers}
