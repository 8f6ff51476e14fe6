"""A hand over the mouth, an eye or a cheek: a parametric silhouette of palm + finger capsules.

* target point: mouth centre (mean 48-59), an eye centre, a cheek (midway between jaw 3 / 13
  and nose wing 31 / 35) or the chin (8);
* palm: a rounded box ``W`` = 0.85-1.1 iod across, ``H`` = 0.95-1.15 W along the hand, centred
  so that the target lies on the palm (its centre is -0.1..0.3 H behind the target along the
  hand); tapering towards a forearm that runs off the image;
* fingers: four capsules (width W / 4.6) from the knuckle line, lengths 0.66-0.92 W, spread
  2-8 degrees, each with one bend of up to 18 degrees, dark creases between them; a thumb
  from the side, 35-60 degrees out; a forearm 0.66 W wide;
* direction: up the face (-v) turned by -60..60 degrees (mouth, chin), or 10..60 degrees
  in towards the midline (eyes, cheeks: the forearm comes from that side, below); a left or
  a right hand;
* colour: a skin tone from ``palettes.SKIN`` with jitter, mottled (fBm), rounded shading.
"""

from __future__ import annotations

import math

import numpy as np

from . import palettes
from .draw import Draw, bulge, layer, light, line, poly
from .frame import FaceFrame, superellipse

TARGETS = ("mouth", "right_eye", "left_eye", "right_cheek", "left_cheek", "chin")


def _target(name: str, f: FaceFrame) -> np.ndarray:
    lm = f.lm
    return {
        "mouth": f.mouth,
        "right_eye": f.eye_r,
        "left_eye": f.eye_l,
        "right_cheek": (lm[3] + lm[31]) / 2,
        "left_cheek": (lm[13] + lm[35]) / 2,
        "chin": lm[8] + f.v * (-0.1 * f.iod),
    }[name]


def _turn(vec, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([c * vec[0] - s * vec[1], s * vec[0] + c * vec[1]])


def sample(style: str, d: Draw, f: FaceFrame, size: int) -> dict:
    target = style if style in TARGETS else d.weighted({"mouth": 3, "right_eye": 1, "left_eye": 1, "right_cheek": 1,
                                                       "left_cheek": 1, "chin": 1})
    t_pt = _target(target, f)
    up = -f.v
    if target in ("mouth", "chin"):
        turn = d.uniform(-60, 60)
    else:
        # fingers up and in towards the midline, so the forearm comes from the target's own side and below
        # (image coordinates: turning -v by a positive angle heads towards +x)
        inwards = 1.0 if target.startswith("right") else -1.0
        turn = inwards * d.uniform(10, 60) * (1 if f.u[0] >= 0 else -1)
    axis = _turn(up, turn)               # along the hand, wrist -> fingers
    across = np.array([-axis[1], axis[0]])
    lefthand = d.chance(0.5)
    W = f.iod * d.uniform(0.85, 1.1)
    H = W * d.uniform(0.95, 1.15)
    centre = t_pt - axis * (H * d.uniform(-0.1, 0.3))
    palm = superellipse(centre, W / 2, H / 2, across, axis, 3.0)
    rel = palm - centre
    along, side_off = rel @ axis, rel @ across
    narrow = 1 - 0.15 * np.clip(-along / (H / 2), 0, 1)  # narrower towards the wrist
    palm = centre + np.outer(side_off * narrow, across) + np.outer(along, axis)
    shapes = [poly(palm)]
    wrist = centre - axis * (H * 0.45)
    shapes.append(line([wrist, wrist - axis * (2.5 * size)], 0.66 * W))
    fw = W / 4.6
    lengths = [0.82, 0.92, 0.85, 0.66]
    spread = d.uniform(2.0, 8.0)
    bend = d.uniform(0.0, 18.0) * (1 if d.chance(0.5) else -1)
    order = [-1.5, -0.5, 0.5, 1.5]
    bases = []
    for k, pos in enumerate(order):
        base = centre + axis * (H * 0.38) + across * (pos * W / 4.1)
        ln = W * lengths[k] * d.uniform(0.9, 1.1)
        dir1 = _turn(axis, pos * spread)
        mid = base + dir1 * (ln * 0.55)
        tip = mid + _turn(dir1, bend) * (ln * 0.45)
        shapes.append(line([base, mid, tip], fw))
        bases.append((base, mid))
    thumb_side = 1.0 if lefthand else -1.0
    t_base = centre + across * (thumb_side * W * 0.42) - axis * (H * 0.15)
    t_dir = _turn(axis, -thumb_side * d.uniform(35, 60))
    t_len = W * d.uniform(0.5, 0.62)
    t_mid = t_base + t_dir * (t_len * 0.5)
    shapes.append(line([t_base, t_mid, t_mid + _turn(t_dir, -thumb_side * 12) * (t_len * 0.5)], fw * 1.15))
    skin = d.colour(palettes.SKIN, 8)
    tex = {"type": "fbm", "c0": palettes.shade_of(skin, 0.92), "c1": palettes.shade_of(skin, 1.05),
           "cell": [0.25 * f.iod] * 2, "octaves": 3, "gain": 0.5, "contrast": 1.3}
    shade = [bulge(d.uniform(0.22, 0.35), fw * 0.55), light(centre, axis + across * d.uniform(-1, 1), H, 0.1)]
    # creases between neighbouring fingers, from the knuckle line out: they make the fingers read as fingers
    creases = [line([(b0 + b1) / 2, (b0 + b1) / 2 + ((m0 - b0) + (m1 - b1)) * 0.6], max(1.0, fw * 0.16))
               for (b0, m0), (b1, m1) in zip(bases[:-1], bases[1:])]
    layers = [layer(shapes, tex, shade, 1.0, 0.55),
              layer(creases, {"type": "solid", "c": palettes.shade_of(skin, 0.55)}, (), 0.7, 0.45)]
    return {"object": "hand", "style": target, "hand": "left" if lefthand else "right", "fallback": None,
            "layers": layers}
