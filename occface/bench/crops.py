"""Tight face crops made from full photos: a reproducible stand-in for pre-cropped face sets.

Researchers often hold faces already cropped tightly (Yale B's cropped faces, 168x192; the
128x128 crops of earlier face-SR papers), on which the detectors struggle: the face fills the
frame, leaving HOG's sliding window no room, and harsh side lighting removes half the gradients.
:func:`tight_crop` makes such a crop from any photo with a detected face, so the aligned-input
mode can be measured against the landmarks found on the full photo.

Recipe, per photo:

* the face: the default detector on the full photo (the annotated face when references are
  given: the one whose box contains their centre; else the largest), 68 landmarks on the
  full photo;
* the crop: the face box (x0, y0, x1, y1), width w and height h, raised by 0.10 h above and
  lowered by 0.05 h below, as wide as the box (w x 1.15 h, the proportions of Yale B's cropped
  faces, 168 x 192, which run from cheek to cheek and from the brows' top to the chin), rounded
  to whole pixels and clipped to the photo;
* ``darken`` (Yale B-style harsh light): one side, left or right as drawn from
  ``rng_for(seed, key, "crop-light")``, is multiplied by a gain that falls smoothly from 1 at the
  lit edge to ``g`` at the dark edge, ``g`` drawn uniform in [0.03, 0.10] (the shadowed half of a
  Yale B face under light from the side is nearly black):
  ``gain(u) = g + (1 - g) * smoothstep(u)``, u = 0 at the dark edge, 1 at the lit edge;
* written as PNG (lossless), so a crop is the same bytes on every run.

The reference landmarks of a crop are the full-photo landmarks (and the ground truth, when
given) minus the crop's top-left corner.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..faces.decode import decode_image
from ..faces.detect import DetectConfig, detect_faces, with_landmarks
from ..seeding import rng_for

WIDEN, RAISE, LOWER = 0.0, 0.10, 0.05
DARK_GAIN = (0.03, 0.10)


def crop_box(box, shape) -> tuple[int, int, int, int]:
    """Crop rectangle ``(x0, y0, x1, y1)`` (exclusive ends) around a face box, clipped to ``shape``."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0 + 1, y1 - y0 + 1
    H, W = shape[:2]
    left = max(0, int(round(x0 - WIDEN * w)))
    right = min(W, int(round(x1 + 1 + WIDEN * w)))
    top = max(0, int(round(y0 - RAISE * h)))
    bottom = min(H, int(round(y1 + 1 + LOWER * h)))
    return left, top, right, bottom


def darken_side(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """``img`` with one side in shadow (see the module recipe); returns (image, the drawn parameters)."""
    side = "left" if rng.random() < 0.5 else "right"
    g = float(rng.uniform(*DARK_GAIN))
    w = img.shape[1]
    u = (np.arange(w) + 0.5) / w
    if side == "right":
        u = u[::-1]
    gain = g + (1.0 - g) * (u * u * (3.0 - 2.0 * u))
    shape = (1, w, 1) if img.ndim == 3 else (1, w)
    out = np.clip(np.rint(img.astype(np.float32) * gain.astype(np.float32).reshape(shape)), 0, 255).astype(np.uint8)
    return out, {"dark_side": side, "gain": round(g, 4)}


def tight_crop(rgb: np.ndarray, key: str, darken: bool = False, seed: int = 0,
               reference: np.ndarray | None = None, cfg: DetectConfig = DetectConfig()):
    """A tight crop of the face in ``rgb`` ((H, W, 3) uint8), or None when no face is found.

    Returns ``(crop, full_photo_landmarks_in_crop (68, 2), (x0, y0) of the crop, parameters)``; the
    parameters hold the crop rectangle (``box``), the full-photo face box in crop pixels (``face_box``)
    and the darkening drawn.
    ``reference`` ((68, 2) source pixels) picks the face that contains its centre.
    """
    faces = detect_faces(rgb, cfg, landmarks=False)
    if reference is not None:
        cx, cy = reference.mean(axis=0)
        faces = [f for f in faces if f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3]]
    if not faces:
        return None
    face = with_landmarks(rgb, faces[0])
    x0, y0, x1, y1 = crop_box(face.box, rgb.shape)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    params = {"box": [x0, y0, x1, y1], "face_box": [face.box[0] - x0, face.box[1] - y0, face.box[2] - x0,
                                                    face.box[3] - y0]}
    if darken:
        crop, drawn = darken_side(crop, rng_for(seed, key, "crop-light"))
        params.update(drawn)
    return crop, face.landmarks.astype(np.float64) - (x0, y0), (x0, y0), params


def make_tight_crops(photos_dir: str, files: list[str], out_dir: str, darken: bool = False, seed: int = 0,
                     truth: dict | None = None) -> dict:
    """Write a tight crop of every photo with a face into ``out_dir`` (``<name>.png``).

    Returns ``{"crops": {crop name: {"full_photo": (68, 2), "truth": (68, 2) | None, "params"}},
    "skipped": photos without a face, "recipe": ...}``; landmarks are in crop pixels.
    """
    out: dict[str, dict] = {}
    skipped = 0
    for rel in files:
        try:
            rgb = decode_image(os.path.join(photos_dir, rel))[0]
        except ValueError:
            skipped += 1
            continue
        ref = truth.get(rel) if truth else None
        got = tight_crop(rgb, rel, darken=darken, seed=seed, reference=ref)
        if got is None:
            skipped += 1
            continue
        crop, full_lm, (x0, y0), params = got
        name = os.path.splitext(rel)[0] + ".png"
        path = os.path.join(out_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not cv2.imwrite(path, cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")
        out[name] = {"full_photo": full_lm, "truth": None if ref is None else ref - (x0, y0), "params": params}
    sizes = np.array([[c["params"]["box"][2] - c["params"]["box"][0], c["params"]["box"][3] - c["params"]["box"][1]]
                      for c in out.values()]) if out else np.zeros((0, 2))
    return {
        "crops": out,
        "skipped": skipped,
        "recipe": f"face box widened {WIDEN} w each side, raised {RAISE} h, lowered {LOWER} h"
                  + (f"; one side darkened to gain {DARK_GAIN[0]}-{DARK_GAIN[1]}" if darken else ""),
        "median_size_wh": [int(v) for v in np.median(sizes, axis=0)] if len(sizes) else None,
    }
