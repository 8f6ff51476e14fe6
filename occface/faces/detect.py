"""Face detection and 68-point landmarks with dlib.

Detectors: ``hog`` (dlib's frontal HOG + linear SVM, ~8 ms on 250x250),
``cnn`` (dlib's MMOD CNN, ~2 s on 512x512 on one core; finds profile and
small faces HOG misses) and ``hog+cnn`` (HOG first, CNN only when HOG finds
nothing).  Small faces: HOG runs at each upsample level of
``hog_upsample`` in turn and stops at the first level that finds a face, so
the 4x-slower upsampled pass is paid only by photos that need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dlib_models

DETECTORS = ("hog", "cnn", "hog+cnn")
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

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if self.multi_face not in MULTI_FACE:
            raise ValueError(f"multi_face must be one of {MULTI_FACE}, got {self.multi_face!r}")
        if not self.hog_upsample or any(u < 0 or u > 3 for u in self.hog_upsample):
            raise ValueError("hog_upsample needs levels in 0..3")


@dataclass(frozen=True)
class Face:
    """One detected face.  ``box`` = (x0, y0, x1, y1) in source pixels; ``landmarks`` (68, 2) float32 (x, y)
    (None until :func:`with_landmarks` runs the predictor, which only chosen faces pay for)."""

    box: tuple[float, float, float, float]
    score: float
    detector: str
    upsample: int
    landmarks: np.ndarray | None = None

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
    return Face(face.box, face.score, face.detector, face.upsample, lm)


def _hog(rgb, cfg):
    det = dlib_models.hog_detector()
    for up in cfg.hog_upsample:
        rects, scores, _ = det.run(rgb, up, cfg.min_score)
        if len(rects):
            return [(r, float(s), "hog", up) for r, s in zip(rects, scores)]
    return []


def _cnn(rgb, cfg):
    import cv2
    import dlib

    scale = 1.0
    img = rgb
    if cfg.cnn_max_side and max(rgb.shape[:2]) > cfg.cnn_max_side:
        scale = cfg.cnn_max_side / max(rgb.shape[:2])
        img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = []
    for d in dlib_models.cnn_detector()(img, cfg.cnn_upsample):
        r = d.rect
        if scale != 1.0:
            r = dlib.rectangle(
                int(round(r.left() / scale)), int(round(r.top() / scale)),
                int(round(r.right() / scale)), int(round(r.bottom() / scale)),
            )
        out.append((r, float(d.confidence), "cnn", cfg.cnn_upsample))
    return out


def detect_faces(rgb: np.ndarray, cfg: DetectConfig, landmarks: bool = True) -> list[Face]:
    """All faces in ``rgb`` ((H, W, 3) uint8), largest first (ties: higher score, then top-left).

    ``landmarks=False`` skips the 68-point predictor (see :func:`with_landmarks`).
    """
    found = []
    if cfg.detector in ("hog", "hog+cnn"):
        found = _hog(rgb, cfg)
    if not found and cfg.detector in ("cnn", "hog+cnn"):
        found = _cnn(rgb, cfg)
    faces = [
        Face(
            box=(float(r.left()), float(r.top()), float(r.right()), float(r.bottom())),
            score=s,
            detector=name,
            upsample=up,
        )
        for r, s, name, up in found
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
