"""Downstream face metrics with dlib: landmark NRMSE and identity distance of an output.

Landmark NRMSE: dlib's 68-point shape predictor runs on each output inside the face box
dlib's detector found on the source photo, mapped into the 128 frame with the stored
alignment (``meta/det_box``, ``meta/align_matrix``; the landmarks' bounding box when a
shard lacks them).  Error = mean point-to-point distance to the ground-truth landmarks
over the 68 points, divided by the ground-truth inter-ocular distance (outer eye corners
36, 45), x100.  Identity: Euclidean distance between dlib's ResNet face descriptors of the
output and of the ground truth; dlib's same-person threshold is 0.6.
"""

from __future__ import annotations

import numpy as np

from ..faces.dlib_models import face_descriptor_model, shape_predictor68
from .landmarks import nrmse

IDENTITY_THRESHOLD = 0.6


def face_box(det_box, align_matrix, landmarks) -> tuple[int, int, int, int]:
    """The face box (left, top, right, bottom) in the 128 frame: the source detection
    mapped by the alignment similarity (centre mapped, sides scaled), else the
    landmarks' bounding box."""
    if det_box is not None and align_matrix is not None and np.all(np.isfinite(det_box)):
        a = np.asarray(align_matrix, np.float64)
        b = np.asarray(det_box, np.float64)
        cx, cy = a @ np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 1.0])
        s = float(np.hypot(a[0, 0], a[0, 1]))
        w, h = (b[2] - b[0]) * s, (b[3] - b[1]) * s
        return (int(round(cx - w / 2)), int(round(cy - h / 2)),
                int(round(cx + w / 2)), int(round(cy + h / 2)))
    lm = np.asarray(landmarks, np.float64)
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    return int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))


def predict_landmarks(image: np.ndarray, box) -> tuple[np.ndarray, object]:
    """dlib 68 points (68, 2) on an (H, W, 3) uint8 RGB image inside ``box``, and the
    dlib shape object."""
    import dlib

    shape = shape_predictor68()(np.ascontiguousarray(image), dlib.rectangle(*box))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64), shape


def face_descriptor(image: np.ndarray, shape) -> np.ndarray:
    return np.array(face_descriptor_model().compute_face_descriptor(
        np.ascontiguousarray(image), shape), np.float64)


def score_one(task) -> dict:
    """NRMSE (and identity distance) of every method's image of one sample."""
    images, gt, box, landmarks, identity = task
    out = {}
    ref_pts, ref_shape = predict_landmarks(gt, box)
    ref_desc = face_descriptor(gt, ref_shape) if identity else None
    out["ground truth"] = (nrmse(ref_pts, landmarks), 0.0 if identity else None)
    for name, img in images.items():
        pts, shape = predict_landmarks(img, box)
        dist = (float(np.linalg.norm(face_descriptor(img, shape) - ref_desc))
                if identity else None)
        out[name] = (nrmse(pts, landmarks), dist)
    return out
