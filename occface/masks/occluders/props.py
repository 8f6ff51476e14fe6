"""Objects held near the mouth: a cup, a phone or a microphone.

All are tilted by -20..20 degrees from the face's vertical and placed from the mouth centre
``m`` (mean 48-59) and the face axes:

* ``cup``: a tapered body 1.0-1.35 iod wide (a mug is ~1.3 iod), 0.95-1.25 x as tall, its rim 0.0-0.25 iod above
  ``m`` and centred within +/- 0.3 iod of it, a handle ring on one side; ceramic colours,
  optionally a band of stripes or dots; cylindrical shading and a highlight;
* ``phone``: a rounded slab 0.9-1.15 iod wide, 1.9-2.1 x as tall, its upper third over the
  mouth, shifted +/- 0.35 iod sideways; back with a camera block, or the screen (dark, glare);
* ``microphone``: a mesh ball of radius 0.32-0.45 iod within 0.1-0.45 iod below ``m``, a
  ring, and a tapering handle off the image.
"""

from __future__ import annotations

import math

import numpy as np

from . import palettes
from .draw import Draw, bulge, layer, light, line, poly, solid, unit
from .frame import FaceFrame, ellipse, superellipse

STYLES = ("cup", "phone", "microphone")


def _axes(d: Draw, f: FaceFrame):
    a = math.radians(d.uniform(-20, 20))
    c, s = math.cos(a), math.sin(a)
    down = c * f.v + s * f.u
    across = np.array([down[1], -down[0]])  # = u when untilted
    return across, down


def _cup(d: Draw, f: FaceFrame, size: int):
    across, down = _axes(d, f)
    W = f.iod * d.uniform(1.0, 1.35)
    H = W * d.uniform(0.95, 1.25)
    rim = f.mouth + across * (d.uniform(-0.3, 0.3) * f.iod) - down * (d.uniform(0.0, 0.25) * f.iod)
    taper = d.uniform(0.8, 0.92)
    tl, tr = rim - across * (W / 2), rim + across * (W / 2)
    bl, br = rim + down * H - across * (W * taper / 2), rim + down * H + across * (W * taper / 2)
    body = np.array([tl, tr, br - down * (0.06 * H), br - across * (0.08 * W), bl + across * (0.08 * W),
                     bl - down * (0.06 * H)])
    base = d.colour(palettes.CERAMIC, 8)
    side = 1.0 if d.chance(0.5) else -1.0
    h_c = rim + down * (H * 0.45) + across * (side * W * 0.55)
    handle = ellipse(h_c, W * 0.22, H * 0.26, across, down, 16)
    tex = solid(base)
    if d.chance(0.4):
        band = d.colour(palettes.CERAMIC, 8)
        tex = {"type": "stripes", "c0": list(base), "c1": band, "dir": unit(down), "period": H * d.uniform(0.3, 0.5),
               "duty": 0.25, "phase": d.u()}
    shade = [light(rim + down * (H / 2), across * -side, W / 2, 0.22), bulge(0.2, 0.12 * W)]
    inside = ellipse(rim + down * (0.02 * H), W * 0.47, W * 0.09, across, down, 16)
    hl = [line([rim + across * (-side * W * 0.28) + down * (0.15 * H), rim + across * (-side * W * 0.24) + down * (0.8 * H)],
               max(1.0, 0.07 * W))]
    return [layer([line(handle, max(1.0, 0.09 * W), closed=True)], solid(palettes.shade_of(base, 0.9)),
                  [bulge(0.3, 0.05 * W)], 1.0, 0.5),
            layer([poly(body)], tex, shade, 1.0, 0.5),
            layer([poly(inside)], solid(palettes.shade_of(base, 0.45)), (), 0.9, 0.5),
            layer(hl, solid((255, 255, 255)), (), 0.35, 1.0)]


def _phone(d: Draw, f: FaceFrame, size: int):
    across, down = _axes(d, f)
    W = f.iod * d.uniform(0.9, 1.15)
    H = W * d.uniform(1.9, 2.1)
    centre = f.mouth + across * (d.uniform(-0.35, 0.35) * f.iod) + down * (H * d.uniform(0.15, 0.3))
    body = superellipse(centre, W / 2, H / 2, across, down, 6.0)
    case = d.colour(palettes.PHONE, 6)
    layers = [layer([poly(body)], solid(case), [light(centre, -down - across, H / 2, 0.15), bulge(0.2, 0.08 * W)],
                    1.0, 0.5)]
    if d.chance(0.5):  # screen side
        screen = superellipse(centre + down * (0.01 * H), W * 0.44, H * 0.45, across, down, 8.0)
        glare = [line([centre - across * (W * 0.3) - down * (H * 0.1), centre + across * (W * 0.25) - down * (H * 0.4)],
                      max(1.0, 0.2 * W))]
        layers += [layer([poly(screen)], {"type": "gradient", "c0": [10, 12, 20], "c1": [35, 45, 70],
                                          "p0": list(centre - down * (H / 2)), "p1": list(centre + down * (H / 2))},
                         (), 1.0, 0.4),
                   layer(glare, solid((255, 255, 255)), (), 0.18, 1.5)]
        face = "screen"
    else:  # back: a camera block with two lenses
        cam = superellipse(centre - down * (H * 0.32) - across * (W * 0.18), W * 0.2, W * 0.2, across, down, 5.0)
        lens = [poly(ellipse(centre - down * (H * (0.32 + s)) - across * (W * 0.18), W * 0.07, W * 0.07, across, down, 16))
                for s in (-0.045, 0.045)]
        layers += [layer([poly(cam)], solid(palettes.shade_of(case, 0.75)), (), 1.0, 0.4),
                   layer(lens, solid((20, 20, 24)), (), 1.0, 0.4)]
        face = "back"
    return layers, face


def _microphone(d: Draw, f: FaceFrame, size: int):
    across, down = _axes(d, f)
    R = f.iod * d.uniform(0.32, 0.45)
    head = f.mouth + down * (d.uniform(0.1, 0.45) * f.iod) + across * (d.uniform(-0.3, 0.3) * f.iod)
    handle_dir = down + across * d.uniform(-0.5, 0.5)
    handle_dir = handle_dir / np.hypot(*handle_dir)
    perp = np.array([-handle_dir[1], handle_dir[0]])
    top = head + handle_dir * (R * 0.85)
    far = top + handle_dir * (2.5 * size)
    handle = np.array([top - perp * (R * 0.5), top + perp * (R * 0.5), far + perp * (R * 0.3), far - perp * (R * 0.3)])
    metal = d.colour(palettes.MIC_HEAD, 6)
    mesh = {"type": "plaid", "c0": palettes.shade_of(metal, 1.05), "c1": palettes.shade_of(metal, 0.55),
            "c2": palettes.shade_of(metal, 0.55), "dir": unit(across + down), "period": max(2.0, R * 0.3),
            "duty": 0.25, "phase": d.u()}
    if d.chance(0.4):
        mesh = {"type": "dots", "c0": palettes.shade_of(metal, 1.05), "c1": palettes.shade_of(metal, 0.5),
                "dir": unit(across), "period": max(2.0, R * 0.28), "radius": max(0.6, R * 0.08)}
    ring = [line([top - perp * (R * 0.55), top + perp * (R * 0.55)], max(1.0, R * 0.2))]
    return [layer([poly(handle)], solid(d.colour(palettes.MIC_HANDLE, 5)),
                  [light(top, -perp, R, 0.25)], 1.0, 0.5),
            layer(ring, solid((40, 40, 44)), (), 1.0, 0.4),
            layer([poly(ellipse(head, R, R, across, down))], mesh, [bulge(0.45, 0.35 * R),
                                                                    light(head, -down - across, R, 0.25)], 1.0, 0.5)]


def sample(style: str, d: Draw, f: FaceFrame, size: int) -> dict:
    if style == "any":
        style = d.choice(STYLES)
    extra = {}
    if style == "cup":
        layers = _cup(d, f, size)
    elif style == "phone":
        layers, extra["side"] = _phone(d, f, size)
    else:
        layers = _microphone(d, f, size)
    return {"object": "object", "style": style, "fallback": None, "layers": layers, **extra}
