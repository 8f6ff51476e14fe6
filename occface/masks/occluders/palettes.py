"""Documented colour palettes (RGB 0-255) the occluder samplers draw from.

Each sampled colour is a palette entry plus a small per-sample jitter (``jitter``), so two
draws of "navy cloth" are close but not equal.  The values are picked by eye to span what
the objects come in; none is measured from, or copied out of, an image set.
"""

from __future__ import annotations

# eyewear
LENS_DARK = [(18, 18, 20), (40, 28, 20), (22, 38, 28), (30, 34, 52), (55, 45, 40)]  # black, brown, green, blue-grey, smoke
LENS_MIRROR = [(70, 110, 160), (150, 155, 165), (170, 120, 60), (60, 130, 110)]    # blue, silver, gold, teal
LENS_CLEAR = [(235, 240, 245), (230, 225, 200), (210, 225, 240), (240, 225, 215)]  # clear, yellowish, bluish, rose
FRAME = [(15, 15, 15), (60, 40, 25), (25, 30, 60), (120, 20, 25), (200, 200, 205), (190, 160, 90)]  # black, brown, navy, red, silver, gold
TORTOISE = [((45, 25, 12), (150, 95, 40)), ((30, 18, 10), (110, 70, 30))]  # dark, light mottles

# face masks
SURGICAL = [(150, 195, 220), (170, 215, 200), (235, 238, 240), (235, 200, 210), (60, 60, 65)]  # blue, green, white, pink, black
N95 = [(238, 238, 232), (225, 228, 230), (205, 205, 200), (240, 235, 220)]  # white, light grey, grey, cream
FABRIC = [(25, 35, 70), (20, 20, 22), (120, 30, 35), (60, 90, 60), (200, 180, 150), (90, 90, 95),
          (170, 60, 90), (40, 100, 140), (230, 200, 60), (240, 240, 235)]  # navy, black, maroon, olive, beige, grey, plum, teal, mustard, white

# skin (hands), light to dark
SKIN = [(241, 200, 175), (234, 184, 152), (222, 168, 134), (198, 142, 106), (176, 120, 86),
        (148, 98, 68), (118, 78, 54), (92, 60, 42), (70, 46, 33)]

# hair
HAIR = [(22, 18, 16), (45, 32, 24), (78, 52, 32), (112, 78, 48), (160, 120, 70), (205, 170, 112),
        (125, 55, 30), (150, 146, 140), (210, 208, 200)]  # black .. platinum, auburn, grey, white

# props
CERAMIC = [(240, 240, 235), (30, 30, 32), (190, 40, 40), (40, 80, 150), (230, 190, 60), (90, 150, 110), (200, 170, 140)]
PHONE = [(25, 25, 28), (200, 200, 205), (190, 160, 130), (60, 70, 90), (150, 40, 50), (235, 235, 230)]
MIC_HEAD = [(170, 172, 178), (60, 60, 64), (195, 190, 180)]
MIC_HANDLE = [(25, 25, 27), (55, 55, 60), (150, 150, 155)]


def pick(palette, u: float):
    """One palette entry from one uniform double."""
    return palette[min(int(u * len(palette)), len(palette) - 1)]


def jitter(colour, u3, amount: float = 10.0) -> list[int]:
    """``colour`` + U(-amount, amount) per channel from three uniform doubles, clipped to 0..255."""
    return [int(min(255, max(0, round(c + (2 * x - 1) * amount)))) for c, x in zip(colour, u3)]


def shade_of(colour, factor: float) -> list[int]:
    """``colour`` scaled by ``factor`` (darker < 1 < lighter), clipped."""
    return [int(min(255, max(0, round(c * factor)))) for c in colour]
