"""Sunglasses and eyeglasses: two lenses on the eye centres, a frame, a bridge and temple arms.

Sizes in iod (inter-ocular distance) units.  Each lens is centred on its eye centre (shifted
0-0.06 iod down the face), its half-width is ``A`` times that eye's ``eye_scale`` (clamped to
0.55-1.25, so the far lens of a yawed face is narrower, as the far eye is), half-height ``B``.

============  ==============  ==================  ===================  ==================
object        A (iod)         B / A               lens opacity          frame width (iod)
============  ==============  ==================  ===================  ==================
sunglasses    0.40-0.47       round 0.8-0.95,     0.88-0.97 (tinted,   0.05-0.08
                              wayfarer 0.55-0.7,  gradient or mirror)
                              aviator 0.75-0.9
eyeglasses    0.36-0.45       as above (+ cat-    0.04-0.2 (clear      0.03-0.055
                              eye)                tints): mask = frame
============  ==============  ==================  ===================  ==================

Fallback: a face whose landmarks cannot hold both lenses, i.e. a near-profile with
``|yaw| > 0.85`` or the far eye under half the near eye's width (beyond ~60 degrees of yaw;
the yawed LFW faces of the sample database reach |yaw| 0.7 with eye-width ratios >= 0.7 and
keep both lenses), gets only the near lens and its temple, and the params record
``"fallback": "near_lens_only"``.
"""

from __future__ import annotations

import numpy as np

from . import palettes
from .draw import Draw, bulge, layer, light, line, poly, solid
from .frame import FaceFrame, bezier, superellipse

STYLES = {"sunglasses": ("round", "wayfarer", "aviator"), "eyeglasses": ("round", "wayfarer", "aviator", "cat_eye")}
YAW_LIMIT = 0.85
EYE_RATIO_LIMIT = 0.5
RATIO = {"round": (0.8, 0.95), "wayfarer": (0.55, 0.7), "aviator": (0.75, 0.9), "cat_eye": (0.55, 0.7)}
POWER = {"round": 2.0, "wayfarer": 3.6, "aviator": 2.3, "cat_eye": 3.0}


def _lens(style: str, centre, a: float, b: float, out_dir, v) -> tuple[np.ndarray, callable]:
    """Lens outline (k, 2) px and a map from lens-local (x out, y down) in [-1, 1] to px."""
    out_dir, v = np.asarray(out_dir), np.asarray(v)
    unit = superellipse((0.0, 0.0), 1.0, 1.0, (1.0, 0.0), (0.0, 1.0), POWER[style])
    x, y = unit[:, 0].copy(), unit[:, 1].copy()
    if style == "wayfarer":
        x *= 1 + 0.12 * (-y)                       # top wider than the bottom
    elif style == "aviator":
        y = np.where(y > 0, y * (1 + 0.3 * np.clip(-x, 0, 1)), y)  # droops towards the nose
    elif style == "cat_eye":
        y = np.where((y < 0) & (x > 0), y * (1 + 0.35 * x), y)     # upper outer corner raised

    def to_px(lx, ly):
        return np.asarray(centre) + np.multiply.outer(np.asarray(lx) * a, out_dir) + np.multiply.outer(
            np.asarray(ly) * b, v)

    return to_px(x, y), to_px


def sample(obj: str, style: str, d: Draw, f: FaceFrame, size: int) -> dict:
    sun = obj == "sunglasses"
    if style == "any":
        style = d.choice(STYLES[obj])
    a0 = f.iod * (d.uniform(0.40, 0.47) if sun else d.uniform(0.36, 0.45))
    b0 = a0 * d.uniform(*RATIO[style])
    drop = d.uniform(0.0, 0.06)
    fallback = None
    sides = ["r", "l"]
    if abs(f.yaw) > YAW_LIMIT or min(f.eye_scale) < EYE_RATIO_LIMIT * max(f.eye_scale):
        fallback = "near_lens_only"
        sides = ["r"] if f.eye_scale[0] >= f.eye_scale[1] else ["l"]
    # materials
    frame_kind = d.choice(("solid", "tortoise", "metal"))
    fw = f.iod * (d.uniform(0.05, 0.08) if sun else d.uniform(0.03, 0.055))
    if frame_kind == "tortoise":
        c0, c1 = d.choice(palettes.TORTOISE)
        cell = f.iod * 0.12
        frame_tex = {"type": "fbm", "c0": list(c0), "c1": list(c1), "cell": [cell, cell], "octaves": 2,
                     "gain": 0.5, "contrast": 2.5}
    elif frame_kind == "metal":
        c = d.choice(palettes.FRAME[4:])
        frame_tex = {"type": "gradient", "c0": palettes.shade_of(c, 1.15), "c1": palettes.shade_of(c, 0.6),
                     "p0": list(f.at(f.eye_mid, 0, -0.3)), "p1": list(f.at(f.eye_mid, 0, 0.3))}
    else:
        frame_tex = solid(d.colour(palettes.FRAME[:4], 8))
    if sun:
        tint = d.choice(("gradient", "solid", "mirror"))
        lens_c = d.colour(palettes.LENS_MIRROR if tint == "mirror" else palettes.LENS_DARK, 8)
        lens_op = d.uniform(0.88, 0.97)
    else:
        tint = "clear"
        lens_c = d.colour(palettes.LENS_CLEAR, 6)
        lens_op = d.uniform(0.04, 0.2)
    hl_op = d.uniform(0.12, 0.35) if sun else d.uniform(0.08, 0.25)
    hl_tilt = d.uniform(-0.25, 0.25)
    lenses, rims, highlights, temples, inner_tops = [], [], [], [], {}
    for side in ("r", "l"):
        scale = float(np.clip(f.eye_scale[0 if side == "r" else 1], 0.55, 1.25))
        eye = f.eye_r if side == "r" else f.eye_l
        out_dir = -f.u if side == "r" else f.u
        centre = eye + f.v * (drop * f.iod)
        a = a0 * scale
        outline, to_px = _lens(style, centre, a, b0, out_dir, f.v)
        inner_tops[side] = to_px(-0.8, -0.55)
        if side not in sides:
            continue
        lenses.append(poly(outline))
        rims.append(line(outline, fw, closed=True))
        highlights.append(line(to_px(np.array([-0.55 + hl_tilt, 0.05 + hl_tilt]), np.array([0.35, -0.6])),
                               max(1.0, 0.16 * a)))
        start = to_px(0.97, -0.45)
        jaw = f.lm[0] if side == "r" else f.lm[16]
        reach = float((jaw - start) @ out_dir)
        if reach > 0.5:  # the arm runs back to the face contour at the ear (nothing to draw if the lens is past it)
            end = start + out_dir * (reach + 0.08 * f.iod) + f.v * (d.uniform(-0.02, 0.08) * f.iod)
            temples.append(line(np.stack([start, end]), fw * 1.1))
    if tint == "gradient":
        lens_tex = {"type": "gradient", "c0": palettes.shade_of(lens_c, 0.8), "c1": palettes.shade_of(lens_c, 1.9),
                    "p0": list(f.at(f.eye_mid, 0, -0.35 + drop)), "p1": list(f.at(f.eye_mid, 0, 0.35 + drop))}
    elif tint == "mirror":
        lens_tex = {"type": "gradient", "c0": palettes.shade_of(lens_c, 1.35), "c1": palettes.shade_of(lens_c, 0.55),
                    "p0": list(f.at(f.eye_mid, -0.5, -0.35)), "p1": list(f.at(f.eye_mid, 0.5, 0.35)), "grain": 0.04}
    else:
        lens_tex = solid(lens_c)
    layers = [
        layer(lenses, lens_tex, [light(f.eye_mid, -f.v - 0.5 * f.u, f.iod * 0.6, 0.12)], lens_op, 0.5),
        layer(highlights, solid((255, 255, 255)), (), hl_op, 0.9),
    ]
    frame_shapes = rims + temples
    if fallback is None:
        bridge = bezier(inner_tops["r"], f.at((inner_tops["r"] + inner_tops["l"]) / 2, 0, -0.12), inner_tops["l"], 6)
        frame_shapes.append(line(bridge, fw * 0.9))
    layers.append(layer(frame_shapes, frame_tex, [bulge(0.25, max(0.6, fw * 0.4))], 1.0, 0.45))
    return {"object": obj, "style": style, "tint": tint, "frame": frame_kind, "fallback": fallback,
            "layers": layers}
