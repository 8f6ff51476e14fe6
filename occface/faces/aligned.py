"""Pre-aligned input (``detector = "aligned"``): each photo is one face, already centred in the frame.

Sets such as Yale B's cropped faces, CelebA's aligned crops or the 128x128 crops of earlier face
super-resolution work leave a detector no room: the face fills the frame, so HOG's sliding window
does not fit, and harsh light removes half the gradients.  Here no detector runs; the 68-point
predictor runs inside a box derived from the frame, the box is refined from the predicted points,
and the result is aligned to the template as in any other build (landmarks, heatmaps and masks stay
consistent with detector builds).

**Box rule.**  dlib's predictor was trained on its HOG detector's boxes, so the box imitates one:

1. from the frame (W x H): a square of side ``f * min(W, H)`` centred at ``(cx * W, cy * H)``,
   ``(f, cx, cy) = DetectConfig.aligned_box``, default (0.85, 0.5, 0.54): dlib's HOG box on the
   tight LFW crops that ship with scikit-image measures 0.87 of the side, centred at (0.40, 0.51);
   on a crop cut to the box (:mod:`occface.bench.crops`) it is the whole width;
2. ``aligned_refine`` times (default 1): the box a HOG detection of the predicted face would have,
   from its points (:func:`box_from_landmarks`: side 3.56 R, centre the mean of points 17-67
   lowered by 0.05 R, R = root-mean-square distance of points 17-67 from their mean; fitted to
   dlib's HOG boxes and its own landmarks on 800 LFW photos), and the predictor again.

**Plausibility** (:func:`check`), on the final points; the first failed check rejects the photo as
``implausible_landmarks`` with the check's name and values:

* ``contrast``: the frame inside the final box is not blank: its grey levels (channel mean) spread by
  at least 10 between the 2nd and 98th percentiles;
* ``inside``: the eyes, nose and mouth (points 27-67) lie in the frame, within 2 % of its shorter side;
* ``eye_distance``: the distance between the eye centres is 0.12-0.70 of the frame width;
* ``roll``: the eye line is within 30 degrees of horizontal (the photos are upright);
* ``layout``: the image-left eye is on the left, and the mouth centre lies below the eye line by
  0.5-2.0 eye distances;
* ``tracking`` (only when ``DetectConfig.aligned_tracking`` > 0, e.g. 0.75; off by default): the
  points follow the face, not the box -- the predictor run once more from the final box shifted by
  5 % of its side right and down must move the points by at most that fraction of the shift (on a
  featureless frame they move with the box: ratio 1).  It guards a folder that may hold non-face
  frames, at one more predictor run per photo, but it also drops some harshly lit real faces
  (figures in docs/benchmarks.md).

dlib's predictor regresses from a mean face shape, so it returns an upright, plausible-looking face
in almost any box: the geometric checks catch points pushed out of the frame, a face far too small
for its frame and strongly rolled predictions, not a frame without a face (``contrast`` catches a
blank one, the optional ``tracking`` probe most others).

The predictor runs on the photo padded by a quarter of its longer side with its edge pixels repeated
(:func:`padded`), since dlib reads pixels outside an image as black, which pulls the points on a tight
crop.

The stored ``meta/det_box`` is the final box, ``det_score`` is ``1 - tracking ratio`` (1 without
the probe), ``detector`` is ``aligned``.  Cost: ``aligned_refine + 1`` predictor runs (2 by default), plus one for the probe.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import dlib_models
from .align import percentiles_of_ints

PREDICT_PAD = 0.25
INSIDE_TOL = 0.02
EYE_DISTANCE = (0.12, 0.70)
MAX_ROLL_DEG = 30.0
MOUTH_BELOW = (0.5, 2.0)
MIN_SPREAD = 10.0
PROBE_SHIFT = 0.05
MAX_TRACKING = 0.75  # the suggested aligned_tracking
BOX_SIDE_R, BOX_LOWER_R = 3.56, 0.05


def frame_box(shape: tuple[int, ...], rule: tuple[float, float, float]) -> tuple[float, float, float, float]:
    """The first box, from the frame alone: ``(x0, y0, x1, y1)`` (inclusive pixel bounds)."""
    h, w = shape[:2]
    f, cx, cy = rule
    side = f * min(w, h)
    x, y = cx * w - 0.5, cy * h - 0.5  # centre in pixel-centre coordinates
    return x - side / 2 + 0.5, y - side / 2 + 0.5, x + side / 2 - 0.5, y + side / 2 - 0.5


def box_from_landmarks(lm: np.ndarray) -> tuple[float, float, float, float]:
    """The box dlib's HOG detector would give a face with these 68 points (see the module doc)."""
    inner = np.asarray(lm, np.float64)[17:68]
    c = inner.mean(axis=0)
    r = float(np.sqrt(((inner - c) ** 2).sum(axis=1).mean()))
    side = BOX_SIDE_R * r
    x, y = c[0], c[1] + BOX_LOWER_R * r
    return x - side / 2 + 0.5, y - side / 2 + 0.5, x + side / 2 - 0.5, y + side / 2 - 0.5


def predict(img: np.ndarray, box) -> np.ndarray:
    """(68, 2) float32 landmarks of dlib's predictor inside ``box`` (rounded to whole pixels, as dlib takes it)."""
    import dlib

    rect = dlib.rectangle(*(int(round(v)) for v in box))
    shape = dlib_models.shape_predictor68()(img, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _eyes(lm):
    return lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)


def grey_spread(img: np.ndarray, box) -> float:
    """Grey levels (channel mean) between the 2nd and 98th percentile of ``img`` inside ``box`` (clipped).

    Equal to ``np.percentile(grey, [2, 98])``'s difference (linear interpolation), read from a histogram
    of the channel sums: a tenth of the cost of sorting the region's pixels."""
    h, w = img.shape[:2]
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2])) + 1), min(h, int(np.ceil(box[3])) + 1)
    region = img[y0:y1, x0:x1]
    if region.size == 0:
        return 0.0
    if region.ndim == 3:  # the mean of C uint8 values is (their integer sum) / C, exactly, in float64
        sums = region[..., 0].astype(np.uint16)  # (channel by channel: 8x faster than sum(axis=2) here)
        for c in range(1, region.shape[2]):
            sums += region[..., c]
        sums, div = sums.ravel(), float(region.shape[2])
    else:
        sums, div = region.ravel(), 1.0
    lo, hi = percentiles_of_ints(sums, (2.0, 98.0), div)
    return float(hi - lo)


def check(lm: np.ndarray, shape: tuple[int, ...], tracking: float = 0.0, max_tracking: float = 0.0,
          spread: float = 255.0) -> tuple[str, str] | None:
    """The first failed plausibility check as ``(name, detail)``, or None (see the module doc).

    ``lm`` (68, 2) in the pixels of a frame of ``shape``; ``spread``: :func:`grey_spread` in the box."""
    h, w = shape[:2]
    if spread < MIN_SPREAD:
        return "contrast", f"the frame is blank (grey levels spread {spread:.1f} < {MIN_SPREAD:g})"
    lm = np.asarray(lm, np.float64)
    tol = INSIDE_TOL * min(w, h)
    core = lm[27:68]
    if (core[:, 0] < -0.5 - tol).any() or (core[:, 0] > w - 0.5 + tol).any() or \
            (core[:, 1] < -0.5 - tol).any() or (core[:, 1] > h - 0.5 + tol).any():
        n = int(((core[:, 0] < -0.5 - tol) | (core[:, 0] > w - 0.5 + tol)
                 | (core[:, 1] < -0.5 - tol) | (core[:, 1] > h - 0.5 + tol)).sum())
        return "inside", f"{n} of the eye, nose and mouth points lie outside the {w}x{h} frame"
    left, right = _eyes(lm)
    v = right - left
    dist = float(np.hypot(*v))
    if not EYE_DISTANCE[0] <= dist / w <= EYE_DISTANCE[1]:
        return "eye_distance", f"eye distance {dist / w:.3f} of the width, outside {EYE_DISTANCE[0]}-{EYE_DISTANCE[1]}"
    roll = float(np.degrees(np.arctan2(v[1], v[0])))
    if abs(roll) > MAX_ROLL_DEG:
        return "roll", f"eye line at {roll:.1f} degrees, beyond {MAX_ROLL_DEG:g}"
    mouth = (lm[48] + lm[54]) / 2
    d = mouth - (left + right) / 2
    below = float(v[0] * d[1] - v[1] * d[0]) / dist ** 2  # > 0: below the eye line, in eye distances
    if v[0] <= 0 or not MOUTH_BELOW[0] <= below <= MOUTH_BELOW[1]:
        return "layout", f"mouth {below:.2f} eye distances below the eye line (expected {MOUTH_BELOW[0]}-{MOUTH_BELOW[1]})"
    if max_tracking and tracking > max_tracking:
        return "tracking", f"points moved {tracking:.2f} of a box shift (at most {max_tracking:g}): no face to follow"
    return None


def padded(img: np.ndarray) -> tuple[np.ndarray, int]:
    """``(img`` with its edge pixels repeated :data:`PREDICT_PAD` of its longer side outward, that margin)``.

    dlib's predictor reads every pixel it samples outside the image as 0, and on a tight crop it samples
    there often: black around the face pulls the points."""
    p = int(round(PREDICT_PAD * max(img.shape[:2])))
    return cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REPLICATE), p


def locate(img: np.ndarray, rule: tuple[float, float, float], refine: int, max_tracking: float = 0.0):
    """``(box, landmarks (68, 2) float32, tracking ratio, failed check or None)`` for a pre-aligned photo.

    ``img``: (H, W, 3) or (H, W) uint8.  Box and landmarks are in ``img``'s pixels.  Deterministic:
    ``refine + 2`` predictor runs (the frame's box, each refinement, the tracking probe);
    ``max_tracking = 0`` skips the probe and its check (tracking ratio reported as 0).
    """
    big, p = padded(img)

    def run(b):
        return predict(big, tuple(v + p for v in b)) - p

    box = frame_box(img.shape, rule)
    lm = run(box)
    for _ in range(refine):
        box = box_from_landmarks(lm)
        lm = run(box)
    spread = grey_spread(img, box)
    if not max_tracking:
        return box, lm, 0.0, check(lm, img.shape, 0.0, 0.0, spread)
    shift = PROBE_SHIFT * (box[2] - box[0] + 1)
    probe = run((box[0] + shift, box[1] + shift, box[2] + shift, box[3] + shift))
    tracking = float(np.linalg.norm(probe - lm, axis=1).mean()) / (shift * np.sqrt(2.0))
    return box, lm, tracking, check(lm, img.shape, tracking, max_tracking, spread)
