"""Face masks (surgical, cloth, N95) and scarves, drawn from the jaw and nose landmarks.

Face mask (as MaskTheFace fits its templates to dlib points, but drawn, not pasted):

* top edge: from the jaw between points 1 and 2 (3 for N95), through a control point 0.2-0.3
  iod below the eye's lower lid, up to the nose bridge at ``lerp(28, 29, t)``, t ~ U(0, 0.6),
  and down the other side alike, so the eyes stay clear and the nose tip (30) is covered;
* sides and bottom: jaw points 2..14 pushed 0.03-0.1 iod outwards from the face centre, the
  chin (6..10) a further 0.1-0.25 iod (0.2-0.35 for N95) down the face;
* surgical: pleats (3-4 bands across the face), ear loops; cloth: a fabric texture (solid,
  stripes, plaid, dots, mottled); N95: a central seam and two head straps.

Scarf: the top edge is one smooth curve from jaw point 2 to 14 (pushed out with the scarf's
width) through ``lerp(nose base 33, lower lip 57, t)``, t ~ U(0.1, 1.0), wavy by +/- 0.04 iod; the scarf is 0.2-0.5 iod
wider than the jaw and runs off the bottom of the image; knit, plaid, stripes or solid,
with folds.
"""

from __future__ import annotations

import numpy as np

from . import palettes
from .draw import Draw, bulge, fabric, layer, light, line, poly, unit
from .frame import FaceFrame, bezier, push_out

MASK_STYLES = ("surgical", "cloth", "n95")
SCARF_STYLES = ("knit", "plaid", "stripes", "solid")


def _face_centre(f: FaceFrame) -> np.ndarray:
    return (f.lm[30] + f.lm[8]) / 2


def sample_face_mask(style: str, d: Draw, f: FaceFrame, size: int) -> dict:
    if style == "any":
        style = d.weighted({"surgical": 2.0, "cloth": 2.0, "n95": 1.0})
    lm = f.lm
    n95 = style == "n95"
    t = d.uniform(0.0, 0.6)
    top = lm[28] + (lm[29] - lm[28]) * t + f.v * (-0.04 * f.iod)
    side_r = (lm[2] + lm[3]) / 2 if n95 else (lm[1] + lm[2]) / 2
    side_l = (lm[14] + lm[13]) / 2 if n95 else (lm[15] + lm[14]) / 2
    below = d.uniform(0.2, 0.3)
    ctrl_r = f.at((lm[40] + lm[41]) / 2, -0.05, below)
    ctrl_l = f.at((lm[46] + lm[47]) / 2, 0.05, below)
    centre = _face_centre(f)
    push = d.uniform(0.03, 0.1) * f.iod
    chin = d.uniform(0.2, 0.35) if n95 else d.uniform(0.1, 0.25)
    jaw = push_out(lm[2:15], centre, push)
    weight = np.array([0, 0, 0, 0.3, 0.7, 1, 1, 1, 0.7, 0.3, 0, 0, 0])  # jaw 2..14: the chin hangs lower
    jaw = jaw + np.outer(weight * chin * f.iod, f.v)
    top_r = bezier(push_out([side_r], centre, push)[0], ctrl_r, top, 8)
    top_l = bezier(top, ctrl_l, push_out([side_l], centre, push)[0], 8)
    outline = np.concatenate([top_r, top_l[1:], jaw[::-1]])
    if n95:
        base = d.colour(palettes.N95, 6)
        tex = {"type": "fbm", "c0": palettes.shade_of(base, 0.93), "c1": palettes.shade_of(base, 1.04),
               "cell": [0.12 * f.iod] * 2, "octaves": 2, "gain": 0.5, "contrast": 1.2, "grain": 0.03}
    elif style == "surgical":
        base = d.colour(palettes.SURGICAL, 8)
        pleats = d.uniform(3.0, 4.0)
        height = float((lm[8] - top) @ f.v) + chin * f.iod
        tex = {"type": "stripes", "c0": list(base), "c1": palettes.shade_of(base, 0.88), "dir": unit(f.v),
               "period": max(height / pleats, 2.0), "duty": 0.25, "phase": d.u(), "grain": 0.02}
    else:
        base = d.colour(palettes.FABRIC, 12)
        tex = fabric(d, base, f.u, f.v, f.iod)
    shade = [bulge(d.uniform(0.15, 0.3), 0.35 * f.iod),
             light(centre, -f.v + d.uniform(-0.6, 0.6) * f.u, 0.8 * f.iod, d.uniform(0.06, 0.14))]
    layers = [layer([poly(outline)], tex, shade, 1.0, 0.6)]
    # loops / straps / seam: thin lines in the mask's colour (a shade darker)
    extras = []
    strap_c = palettes.shade_of(base, 0.85 if n95 else 0.97)
    w = max(1.0, 0.05 * f.iod)
    for side, corner_top, corner_low, ear in (("r", top_r[0], jaw[2], lm[0]), ("l", top_l[-1], jaw[-3], lm[16])):
        out_dir = -f.u if side == "r" else f.u
        ear_pt = ear + out_dir * (0.1 * f.iod)
        if float((ear_pt - corner_top) @ out_dir) <= 1.0:
            continue  # far side of a yawed face: the loop is hidden behind it
        if n95:  # head straps, seen from the front: short runs from the mask's sides back past the face contour
            extras.append(line([corner_top, corner_top + (out_dir * 0.3 - f.v * 0.12) * f.iod], w * 1.3))
            extras.append(line([corner_low, corner_low + (out_dir * 0.3 + f.v * 0.05) * f.iod], w * 1.3))
        else:
            mid = ear_pt + f.v * (0.25 * f.iod)
            extras.append(line(np.concatenate([bezier(corner_top, ear_pt, mid, 4),
                                               bezier(mid, ear_pt + f.v * (0.6 * f.iod), corner_low, 4)[1:]]), w))
    if n95:
        extras.append(line([top, (jaw[6] + jaw[5] + jaw[7]) / 3], w))
    if extras:
        layers.append(layer(extras, {"type": "solid", "c": strap_c}, (), 1.0, 0.4))
    return {"object": "face_mask", "style": style, "fallback": None, "layers": layers}


def sample_scarf(style: str, d: Draw, f: FaceFrame, size: int) -> dict:
    if style == "any":
        style = d.choice(SCARF_STYLES)
    lm = f.lm
    t = d.uniform(0.1, 1.0)
    mid = lm[33] + (lm[57] - lm[33]) * t
    wide = d.uniform(0.2, 0.5) * f.iod
    # the top edge: across the front at the height of `mid`, up the sides 0.12 iod above the jaw contour
    jaw = lm[2:15]
    a = (jaw - mid) @ f.u / f.iod
    b = np.minimum((jaw - mid) @ f.v / f.iod - 0.12, 0.0) + (d.rng.random(len(jaw)) * 2 - 1) * 0.03
    edge = f.at(mid, a, b)
    down = f.v * (2.0 * size)
    end_r, end_l = edge[0] - f.u * wide, edge[-1] + f.u * wide
    outline = np.concatenate([[end_r], edge, [end_l, end_l + down, end_r + down]])
    base = d.colour(palettes.FABRIC, 14)
    if style == "knit":
        tex = {"type": "stripes", "c0": list(base), "c1": palettes.shade_of(base, 0.8), "dir": unit(f.u),
               "period": d.uniform(0.07, 0.11) * f.iod, "duty": 0.4, "phase": d.u(), "grain": 0.08}
    elif style == "plaid":
        tex = fabric(d, base, f.u, f.v, f.iod, kinds=("plaid",))
    elif style == "stripes":
        tex = {"type": "stripes", "c0": list(base), "c1": d.colour(palettes.FABRIC, 14), "dir": unit(f.v),
               "period": d.uniform(0.3, 0.6) * f.iod, "duty": d.uniform(0.3, 0.5), "phase": d.u(), "grain": 0.05}
    else:
        tex = {"type": "solid", "c": list(base), "grain": 0.06}
    folds = {"type": "folds", "dir": unit(f.v + d.uniform(-0.4, 0.4) * f.u), "period": d.uniform(0.3, 0.5) * f.iod,
             "k": d.uniform(0.1, 0.22)}
    shade = [folds, bulge(0.2, 0.25 * f.iod), light(mid, -f.v, f.iod, 0.1)]
    return {"object": "scarf", "style": style, "fallback": None, "layers": [layer([poly(outline)], tex, shade, 1.0, 0.8)]}
