"""Face detection and 68-point landmarks with dlib.

Detectors: ``hog`` (dlib's frontal HOG + linear SVM, ~8 ms on 250x250),
``cnn`` (dlib's MMOD CNN, ~2 s on 512x512 on one core; finds profile and
small faces HOG misses) and ``hog+cnn`` (HOG first, CNN only when HOG finds
nothing).  Small faces: HOG runs at each upsample level of
``hog_upsample`` in turn and stops at the first level that finds a face, so
the 4x-slower upsampled pass is paid only by photos that need it.

Large photos (``max_side``): a face in a 2000 px photo is hundreds of pixels
wide, far above HOG's 80x80 window, so scanning the full image mostly wastes
work.  HOG therefore scans a *detection copy* first and falls back in fixed
steps, stopping at the first that finds a face:

1. the detection copy, at the first level of ``hog_upsample`` (only when the
   photo's longer side exceeds ``max_side``);
2. the photo at full resolution, at each level of ``hog_upsample`` in turn
   (exactly the search made with ``max_side = 0``);
3. the CNN detector, when the detector is ``hog+cnn``.

The detection copy is the photo reduced so that its longer side is
``max_side`` (area-averaged by an integer factor, then bilinear by less than
2x: :func:`bounded_copy`).  With ``max_side > 0`` HOG scans a single channel
at every step when the photo's three channels are equal (a greyscale photo:
no colour to lose, and dlib's HOG runs ~15 % faster on one channel).  Boxes
found on the copy are mapped back to source pixels exactly (:func:`map_box`);
the 68-point predictor always runs on the full-resolution photo, so landmarks
and the aligned crop are as sharp as with ``max_side = 0``.  ``Face.scale``
(``meta/det_scale``) records which scale found the face: copy pixels per
source pixel, 1.0 at full resolution.  Since the search stops at the first
step that finds any face, faces smaller than about ``80 * L / max_side``
source pixels (L = the longer side) are found only in photos where no larger
face is (this matters for ``multi_face = "all"``).  ``max_side = 0`` detects
on the photo itself, as before this option existed: same boxes, same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import dlib_models

DETECTORS = ("hog", "cnn", "hog+cnn", "aligned")  # aligned: no detector, see occface.faces.aligned
MULTI_FACE = ("largest", "all", "reject")


@dataclass(frozen=True)
class DetectConfig:
    detector: str = "hog"
    hog_upsample: tuple[int, ...] = (0, 1)  # tried in order until a face is found
    cnn_upsample: int = 0
    min_score: float = 0.0  # HOG adjust_threshold: dlib's own default; negative values admit weak false positives
    multi_face: str = "largest"
    min_face_px: int = 0  # reject faces whose box side is smaller (source pixels)
    cnn_max_side: int = 0  # >0: run the CNN on a copy downscaled to this longest side
    max_side: int = 640  # >0: HOG scans a detection copy of at most this longest side first; 0 = the photo itself
    aligned_box: tuple[float, float, float] = (0.85, 0.5, 0.54)  # aligned: first box (side / shorter side, cx / W, cy / H)
    aligned_refine: int = 1  # aligned: times the box is re-derived from the predicted points
    aligned_tracking: float = 0.0  # aligned: >0 = run the tracking probe and keep ratios up to this (e.g. 0.75)

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if self.multi_face not in MULTI_FACE:
            raise ValueError(f"multi_face must be one of {MULTI_FACE}, got {self.multi_face!r}")
        if not self.hog_upsample or any(u < 0 or u > 3 for u in self.hog_upsample):
            raise ValueError("hog_upsample needs levels in 0..3")
        f, cx, cy = self.aligned_box
        if not (0.1 <= f <= 1.5 and 0.0 < cx < 1.0 and 0.0 < cy < 1.0) or not 0 <= self.aligned_refine <= 5 \
                or self.aligned_tracking < 0:
            raise ValueError("aligned_box needs a side of 0.1-1.5 and a centre inside the frame; aligned_refine "
                             "0-5; aligned_tracking >= 0")
        if self.max_side < 0 or 0 < self.max_side < 80:
            raise ValueError(f"max_side must be 0 (off) or at least 80 (HOG's window), got {self.max_side}")


@dataclass(frozen=True)
class Face:
    """One detected face.  ``box`` = (x0, y0, x1, y1) in source pixels (inclusive pixel bounds, dlib's
    convention); ``landmarks`` (68, 2) float32 (x, y) (None until :func:`with_landmarks` runs the
    predictor, which only chosen faces pay for); ``scale``: detection-image pixels per source pixel
    of the image that found the face (1.0 = the photo at full resolution)."""

    box: tuple[float, float, float, float]
    score: float
    detector: str
    upsample: int
    landmarks: np.ndarray | None = None
    scale: float = 1.0

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def with_landmarks(rgb: np.ndarray, face: Face) -> Face:
    """The face with dlib's 68 landmarks filled in."""
    import dlib

    if face.landmarks is not None:
        return face
    rect = dlib.rectangle(*(int(round(v)) for v in face.box))
    shape = dlib_models.shape_predictor68()(rgb, rect)
    lm = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    return Face(face.box, face.score, face.detector, face.upsample, lm, face.scale)


def single_channel(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` ((H, W, 3) uint8) as one contiguous (H, W) channel when its three channels are equal
    (a greyscale photo), else ``rgb`` itself.  A strided sample is compared first, so a colour
    photo costs almost nothing; a grey one costs one ``cv2.split`` and two contiguous compares
    (comparing strided channel views directly cost ~5x more)."""
    if rgb.ndim == 2:
        return rgb
    view = rgb[::16, ::16]
    if not np.array_equal(view[..., :2], view[..., 1:]):  # r == g and g == b on the sample
        return rgb
    r, g, b = cv2.split(rgb)
    return r if np.array_equal(r, g) and np.array_equal(g, b) else rgb


def bounded_copy(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float, float]:
    """``(copy, sx, sy)``: ``img`` reduced so that its longer side is ``max_side`` (``img`` itself, with
    scales 1, when it is not larger).

    Two steps, both exact in geometry: area averaging by the integer factor ``k = L // max_side``
    (L = longer side) over the largest whole ``k x k`` blocks (the last ``< k`` rows / columns are
    left out), then bilinear to the final size (a ratio in (0.5, 1], where bilinear does not alias;
    OpenCV's general area resampling costs ~3x more on 2000 px photos).  The copy covers source
    pixels ``[0, W' / sx) x [0, H' / sy)`` in pixel-edge coordinates: ``sx = W' / (k * (W // k))``
    and ``sy = H' / (k * (H // k))`` are the exact per-axis scales.
    """
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img, 1.0, 1.0
    k = max(h, w) // max_side
    h1, w1 = h // k, w // k
    small = img if k == 1 else cv2.resize(img[: h1 * k, : w1 * k], (w1, h1), interpolation=cv2.INTER_AREA)
    s = max_side / max(h1, w1)
    w2 = max_side if w1 >= h1 else max(1, int(round(w1 * s)))
    h2 = max_side if h1 >= w1 else max(1, int(round(h1 * s)))
    if (w2, h2) != (w1, h1):
        small = cv2.resize(small, (w2, h2), interpolation=cv2.INTER_LINEAR)
    return small, w2 / (k * w1), h2 / (k * h1)


def map_box(rect: tuple[int, int, int, int], sx: float, sy: float) -> tuple[float, float, float, float]:
    """A box found on a copy scaled by (sx, sy) -> source pixels, exactly.

    Boxes hold inclusive pixel bounds (dlib): ``[l, r]`` covers the copy's span ``[l, r + 1)`` in
    pixel-edge coordinates, which is ``[l / sx, (r + 1) / sx)`` in the source, i.e. the inclusive
    source bounds ``l / sx`` and ``(r + 1) / sx - 1``.  Identity at scale 1.
    """
    l, t, r, b = rect
    if sx == 1.0 and sy == 1.0:
        return float(l), float(t), float(r), float(b)
    return l / sx, t / sy, (r + 1) / sx - 1.0, (b + 1) / sy - 1.0


def _rect(r) -> tuple[int, int, int, int]:
    return r.left(), r.top(), r.right(), r.bottom()


def hog_steps(shape: tuple[int, ...], cfg: DetectConfig) -> list[tuple[str, int]]:
    """The HOG search order for a photo of ``shape``: ``[("copy" | "full", upsample level), ...]``."""
    steps = [("full", up) for up in cfg.hog_upsample]
    if cfg.max_side and max(shape[:2]) > cfg.max_side:
        steps.insert(0, ("copy", cfg.hog_upsample[0]))
    return steps


def _hog(rgb, cfg):
    det = dlib_models.hog_detector()
    if not cfg.max_side:  # the photo itself at each level: the search made before max_side existed
        for up in cfg.hog_upsample:
            rects, scores, _ = det.run(rgb, up, cfg.min_score)
            if len(rects):
                return [(_rect(r), float(s), "hog", up, 1.0) for r, s in zip(rects, scores)]
        return []
    full = single_channel(rgb)
    for where, up in hog_steps(rgb.shape, cfg):
        if where == "copy":
            img, sx, sy = bounded_copy(full, cfg.max_side)
            scale = sx if rgb.shape[1] >= rgb.shape[0] else sy
        else:
            img, sx, sy, scale = full, 1.0, 1.0, 1.0
        rects, scores, _ = det.run(img, up, cfg.min_score)
        if len(rects):
            return [(map_box(_rect(r), sx, sy), float(s), "hog", up, scale) for r, s in zip(rects, scores)]
    return []


def _cnn(rgb, cfg):
    scale = 1.0
    img = rgb
    if cfg.cnn_max_side and max(rgb.shape[:2]) > cfg.cnn_max_side:
        scale = cfg.cnn_max_side / max(rgb.shape[:2])
        img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = []
    for d in dlib_models.cnn_detector()(img, cfg.cnn_upsample):
        r = _rect(d.rect)
        if scale != 1.0:  # (rounded to whole source pixels, as before max_side existed)
            r = tuple(float(int(round(v / scale))) for v in r)
        out.append((r, float(d.confidence), "cnn", cfg.cnn_upsample, scale))
    return out


def detect_faces(rgb: np.ndarray, cfg: DetectConfig, landmarks: bool = True) -> list[Face]:
    """All faces in ``rgb`` ((H, W, 3) uint8), largest first (ties: higher score, then top-left).

    ``landmarks=False`` skips the 68-point predictor (see :func:`with_landmarks`).
    """
    if cfg.detector == "aligned":
        raise ValueError("the aligned mode runs no detector: use occface.faces.aligned.locate")
    found = []
    if cfg.detector in ("hog", "hog+cnn"):
        found = _hog(rgb, cfg)
    if not found and cfg.detector in ("cnn", "hog+cnn"):
        found = _cnn(rgb, cfg)
    faces = [
        Face(box=tuple(float(v) for v in box), score=s, detector=name, upsample=up, scale=scale)
        for box, s, name, up, scale in found
    ]
    faces.sort(key=lambda f: (-f.area, -f.score, f.box[1], f.box[0]))
    if landmarks:
        faces = [with_landmarks(rgb, f) for f in faces]
    return faces


def select_faces(faces: list[Face], cfg: DetectConfig) -> tuple[list[Face], str | None]:
    """Apply the size floor and the several-faces policy.  Returns (kept faces, rejection reason or None)."""
    if not faces:
        return [], "no_face"
    if cfg.min_face_px:
        faces = [f for f in faces if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= cfg.min_face_px]
        if not faces:
            return [], "face_too_small"
    if len(faces) > 1:
        if cfg.multi_face == "reject":
            return [], "multiple_faces"
        if cfg.multi_face == "largest":
            return faces[:1], None
    return faces, None
