"""Degradation specs: one frozen dataclass per step, a chain of steps, named presets, text forms.

A spec says *which* steps run and within which ranges; it draws nothing.
:mod:`occface.degrade.chain` turns a spec and a generator into the applied parameters
and those parameters into pixels.  ``spec_to_dict`` / ``spec_from_dict`` are the JSON
form stored in every build's config; :func:`from_text` reads what a user types (a
preset name, inline JSON, or ``@file.json``).

Sizes are in pixels of the image the step receives: a chain starts on the 128 x 128
(occluded) HR face, ``Resize`` changes the size, and the chain ends with a resize to
the LR size (16 x 16 by default) using ``DegradeSpec.output``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

INTERPOLATIONS = ("linear", "area", "cubic", "nearest")  # OpenCV's, through albumentations
OUTPUTS = INTERPOLATIONS + ("build",)  # "build": the build's own resize_rule (occface.faces.resize)


def _range(name, value, lo=-math.inf, hi=math.inf, integer=False):
    """A (low, high) pair inside [lo, hi], as a tuple of floats (or ints)."""
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}") from None
    cast = int if integer else float
    if integer and (a != int(a) or b != int(b)):
        raise ValueError(f"{name} must hold integers, got {value!r}")
    a, b = cast(a), cast(b)
    if not (math.isfinite(a) and math.isfinite(b) and lo <= a <= b <= hi):
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {value!r}")
    return a, b


def _prob(p):
    if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    return float(p)


class Step:
    """Base of every step: a frozen dataclass whose ``op`` field names it; ``p`` = probability it runs."""

    def __post_init__(self):
        default = type(self).__dataclass_fields__["op"].default
        if self.op != default:
            raise ValueError(f"{type(self).__name__}.op must be {default!r}, got {self.op!r}")
        object.__setattr__(self, "p", _prob(self.p))


@dataclass(frozen=True)
class Blur(Step):
    """Gaussian blur with GFPGAN's kernel family (``AdvancedBlur``-like, beta = 1).

    With probability ``aniso_prob`` the kernel is anisotropic: sigma_x and sigma_y drawn
    independently from ``sigma``, rotated by theta ~ U(-pi, pi); otherwise isotropic
    (one sigma).  The kernel is sampled on a ``kernel_size`` grid (odd) and normalised.
    """

    kernel_size: int = 41
    sigma: tuple[float, float] = (0.1, 10.0)
    aniso_prob: float = 0.5
    p: float = 1.0
    op: str = "blur"

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.kernel_size, int) and self.kernel_size >= 3 and self.kernel_size % 2 == 1):
            raise ValueError(f"kernel_size must be an odd int >= 3, got {self.kernel_size!r}")
        object.__setattr__(self, "sigma", _range("sigma", self.sigma, 1e-3, 100.0))
        object.__setattr__(self, "aniso_prob", _prob(self.aniso_prob))


@dataclass(frozen=True)
class MotionBlur(Step):
    """Linear motion blur (``albumentations.MotionBlur``'s kernel): odd length in ``kernel_size``,
    angle U(0, 360) degrees, direction U(-1, 1) (-1 backward only, 0 symmetric, 1 forward only)."""

    kernel_size: tuple[int, int] = (3, 15)
    p: float = 1.0
    op: str = "motion_blur"

    def __post_init__(self):
        super().__post_init__()
        lo, hi = _range("kernel_size", self.kernel_size, 3, 101, integer=True)
        if lo % 2 == 0 or hi % 2 == 0:
            raise ValueError("motion blur kernel_size bounds must be odd")
        object.__setattr__(self, "kernel_size", (lo, hi))


@dataclass(frozen=True)
class Resize(Step):
    """Shrink (or enlarge) by a factor r ~ U(scale): the new side is ``int(side // r)`` (GFPGAN's rule), >= 1."""

    scale: tuple[float, float] = (0.8, 8.0)
    interpolation: str = "linear"
    p: float = 1.0
    op: str = "resize"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "scale", _range("scale", self.scale, 0.05, 64.0))
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")


@dataclass(frozen=True)
class Noise(Step):
    """Additive Gaussian noise, sigma ~ U(``sigma``) on the 0-255 scale, rounded to integers;
    with probability ``gray_prob`` one noise plane is shared by the three channels."""

    sigma: tuple[float, float] = (0.0, 20.0)
    gray_prob: float = 0.0
    p: float = 1.0
    op: str = "noise"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "sigma", _range("sigma", self.sigma, 0.0, 255.0))
        object.__setattr__(self, "gray_prob", _prob(self.gray_prob))


@dataclass(frozen=True)
class Jpeg(Step):
    """JPEG round trip (``albumentations.ImageCompression``), quality an integer uniform in ``quality``."""

    quality: tuple[int, int] = (60, 100)
    p: float = 1.0
    op: str = "jpeg"

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "quality", _range("quality", self.quality, 1, 100, integer=True))


@dataclass(frozen=True)
class ColorJitter(Step):
    """torchvision-style colour jitter (``albumentations.ColorJitter``): brightness, contrast and
    saturation factors ~ U(1 - x, 1 + x), hue shift ~ U(-h, h) (fraction of the circle), in a random order."""

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0
    p: float = 1.0
    op: str = "color_jitter"

    def __post_init__(self):
        super().__post_init__()
        for name in ("brightness", "contrast", "saturation"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0):
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        if not (isinstance(self.hue, (int, float)) and 0.0 <= self.hue <= 0.5):
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue!r}")


@dataclass(frozen=True)
class Gray(Step):
    """Grey conversion (ITU-R 601 weights, OpenCV's), kept as 3 channels."""

    p: float = 1.0
    op: str = "gray"


STEP_TYPES = {cls.__dataclass_fields__["op"].default: cls for cls in (Blur, MotionBlur, Resize, Noise, Jpeg,
                                                                       ColorJitter, Gray)}


@dataclass(frozen=True)
class DegradeSpec:
    """A chain: ``steps`` run in order on the HR-size image, then a resize to the LR size with ``output``.

    ``output``: an OpenCV interpolation (``linear``, ``area``, ``cubic``, ``nearest``), or
    ``"build"`` for the build's own ``resize_rule`` (occface's exact bilinear; what ``none`` uses).
    ``name``: a label stored with every sample (``custom`` for specs typed as JSON).
    """

    steps: tuple = ()
    output: str = "area"
    name: str = "custom"

    def __post_init__(self):
        steps = tuple(self.steps)
        for s in steps:
            if not isinstance(s, Step):
                raise TypeError(f"not a degradation step: {s!r}")
        object.__setattr__(self, "steps", steps)
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")

    @property
    def is_none(self) -> bool:
        """True for the identity chain (today's LR: the build's bilinear downsample)."""
        return not self.steps and self.output == "build"


NONE = DegradeSpec((), output="build", name="none")

# GFPGAN v1's training degradation (options/train_gfpgan_v1.yml: blur_kernel_size 41, kernel_list
# [iso, aniso] with kernel_prob [0.5, 0.5], blur_sigma [0.1, 10], downsample_range [0.8, 8],
# noise_range [0, 20], jpeg_range [60, 100]) in the pixels of occface's 128 HR frame, ending with a
# resize to the 16-px LR instead of back to the HR size (docs/degrade.md).
GFPGAN = DegradeSpec(
    (Blur(41, (0.1, 10.0), 0.5), Resize((0.8, 8.0), "linear"), Noise((0.0, 20.0)), Jpeg((60, 100))),
    output="area", name="gfpgan",
)
# A mild camera: slight defocus, the LR taken at 16 px, faint sensor noise, high-quality JPEG.
LIGHT = DegradeSpec(
    (Blur(21, (0.1, 2.0), 0.2), Resize((8.0, 8.0), "area"), Noise((0.0, 4.0)), Jpeg((80, 100))),
    output="area", name="light",
)
# A poor camera: strong defocus or shake, fewer pixels than the LR, strong noise and JPEG, colour casts.
HEAVY = DegradeSpec(
    (Blur(41, (1.0, 6.0), 0.5), MotionBlur((5, 15), p=0.3), Resize((6.0, 12.0), "linear"),
     Noise((4.0, 20.0), gray_prob=0.3), Jpeg((30, 75)), ColorJitter(0.25, 0.25, 0.3, 0.02, p=0.5)),
    output="linear", name="heavy",
)
PRESETS = {s.name: s for s in (NONE, GFPGAN, LIGHT, HEAVY)}


# ----------------------------------------------------------------------------- spec <-> dict


def step_to_dict(step: Step) -> dict:
    out = {"op": step.op}
    for f in dataclasses.fields(step):
        if f.name != "op":
            v = getattr(step, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def step_from_dict(d: dict) -> Step:
    d = dict(d)
    op = d.pop("op", None)
    if op not in STEP_TYPES:
        raise ValueError(f"unknown degradation step {op!r}; known: {sorted(STEP_TYPES)}")
    cls = STEP_TYPES[op]
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown fields for {op}: {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def spec_to_dict(spec: DegradeSpec) -> dict:
    """Plain JSON-able dict of a chain; inverse of :func:`spec_from_dict`."""
    if not isinstance(spec, DegradeSpec):
        raise TypeError(f"not a degradation spec: {spec!r}")
    return {"name": spec.name, "output": spec.output, "steps": [step_to_dict(s) for s in spec.steps]}


def spec_from_dict(d: dict) -> DegradeSpec:
    """Chain from :func:`spec_to_dict`'s output (or a user's JSON: ``{"steps": [...], "output": ...}``)."""
    if not isinstance(d, dict):
        raise ValueError(f"a degradation spec is a JSON object, got {type(d).__name__}")
    unknown = set(d) - {"name", "output", "steps"}
    if unknown:
        raise ValueError(f"unknown fields for a degradation spec: {sorted(unknown)}")
    steps = d.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise ValueError("steps must be a list of objects, each with an 'op'")
    return DegradeSpec(tuple(step_from_dict(s) for s in steps), output=d.get("output", "area"),
                       name=d.get("name", "custom"))


def spec_from_name(name: str) -> DegradeSpec:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown degradation preset {name!r}; known: {sorted(PRESETS)}") from None


def from_text(text: str) -> DegradeSpec:
    """A chain from what a user types: a preset name (:data:`PRESETS`), inline JSON or ``@path``
    to a JSON file.  Raises ``ValueError`` with a one-line reason."""
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"cannot read degradation spec {text[1:]!r}: {exc.strerror}") from None
    try:
        if text.lstrip().startswith("{"):
            return spec_from_dict(json.loads(text))
        return spec_from_name(text.strip())
    except json.JSONDecodeError as exc:
        raise ValueError(f"degradation spec is not valid JSON: {exc}") from None
    except TypeError as exc:
        raise ValueError(f"bad degradation spec: {exc}") from None
