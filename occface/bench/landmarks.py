"""Landmark accuracy of a finished build against reference points (used by ``occface bench build``).

References are 68-point shapes in source pixels of each photo (0-based, pixel centres at integer
positions, as dlib and occface use): ground truth read from ``.pts`` files, or landmarks from
another run.  Each reference is mapped through the sample's stored ``meta/align_matrix`` into the
crop frame and compared with the stored ``landmarks``.

* **Detection rate**: photos with a kept sample *of the reference face* (its ``meta/det_box``
  contains the centre of the reference points) over all photos with a reference.  A sample of
  another face in the photo counts as ``wrong_face``, not as detected.
* **NRMSE**: mean point-to-point distance over the 68 points divided by the distance between
  the outer eye corners (points 36 and 45) of the reference, in percent (the 300-W
  "inter-ocular" normalisation).  Both distances are measured in the crop frame, where the
  similarity transform scales them alike, so the figure equals the one in source pixels.
"""

from __future__ import annotations

import os
import re

import h5py
import numpy as np

from ..evaluate.landmarks import nrmse
from ..faces.align import transform_points
from ..format.manifest import load_manifest

_NUM = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")

#: 300-W ``.pts`` files count pixels from 1 (the annotation tools' Matlab convention); subtracting
#: this converts them to the 0-based pixel-centre convention of dlib and occface.
PTS_ORIGIN = 1.0


def read_pts(path: str, origin: float = PTS_ORIGIN) -> np.ndarray:
    """(68, 2) float64 points in 0-based source pixels from a ``.pts`` file.

    Accepts the 300-W form (``version: 1`` / ``n_points: 68`` / ``{`` / 68 ``x y`` rows / ``}``) and
    a bare file of 68 ``x y`` rows.  ``origin`` is subtracted from every coordinate.
    """
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            t = line.strip()
            if not t or t in "{}" or ":" in t:
                continue
            nums = _NUM.findall(t)
            if len(nums) != 2:
                raise ValueError(f"{path}: expected 'x y' rows, got {t!r}")
            rows.append((float(nums[0]), float(nums[1])))
    if len(rows) != 68:
        raise ValueError(f"{path}: expected 68 points, found {len(rows)}")
    return np.array(rows, np.float64) - origin


def _samples(build_dirs):
    """(source, det_box, align_matrix, landmarks, pad_fraction) of every sample in one build or several."""
    for build_dir in [build_dirs] if isinstance(build_dirs, str) else build_dirs:
        m = load_manifest(build_dir)
        for e in sorted(m["shards"], key=lambda e: e["index"]):
            with h5py.File(os.path.join(build_dir, e["file"]), "r") as f:
                if not int(f.attrs["num_samples"]):
                    continue
                sources = f["meta/source"].asstr()[...]
                boxes, mats, lms = f["meta/det_box"][...], f["meta/align_matrix"][...], f["landmarks"][...]
                pads = f["meta/pad_fraction"][...]
            yield from zip(sources, boxes, mats, lms, pads)


def box_iou(a, b) -> float:
    """Intersection over union of two boxes with inclusive pixel bounds ``(x0, y0, x1, y1)``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    inter = ix * iy
    return inter / (area(a) + area(b) - inter)


def build_accuracy(build_dir, refs: dict[str, np.ndarray], boxes: dict | None = None) -> dict:
    """Detection rate and NRMSE of a build (a folder, or a list of folders of one build made in parts)
    against ``refs`` ({source path: (68, 2) source pixels}).

    Returns ``{"photos", "detected", "wrong_face", "rate_pct", "nrmse_mean", "nrmse_median",
    "per_photo": {source: nrmse}}`` (NRMSE in percent, over the detected photos); with ``boxes``
    ({source: reference box}) also ``box_iou_mean``, the mean IoU of ``meta/det_box`` with them.
    Also ``padded_pct`` and ``pad_fraction_mean``: the share of the detected photos' crops that reach
    past the photo, and the mean padded fraction of a crop (``meta/pad_fraction``).
    """
    per_photo: dict[str, float] = {}
    ious, pads = [], []
    wrong = set()
    for source, box, mat, lm, pad in _samples(build_dir):
        ref = refs.get(source)
        if ref is None:
            continue
        cx, cy = ref.mean(axis=0)
        if not (box[0] <= cx <= box[2] and box[1] <= cy <= box[3]):
            wrong.add(source)
            continue
        per_photo[source] = nrmse(lm.astype(np.float64), transform_points(mat, ref))
        pads.append(float(pad))
        wrong.discard(source)
        if boxes and source in boxes:
            ious.append(box_iou(box, boxes[source]))
    wrong -= set(per_photo)
    errs = np.array(list(per_photo.values()))
    n = len(refs)
    extra = {"box_iou_mean": round(float(np.mean(ious)), 3)} if ious else {}
    return extra | {
        "photos": n,
        "detected": len(per_photo),
        "wrong_face": len(wrong),
        "rate_pct": round(100.0 * len(per_photo) / n, 2) if n else None,
        "nrmse_mean": round(float(errs.mean()), 3) if errs.size else None,
        "nrmse_median": round(float(np.median(errs)), 3) if errs.size else None,
        "padded_pct": round(100.0 * float(np.mean(np.array(pads) > 0)), 2) if pads else None,
        "pad_fraction_mean": round(float(np.mean(pads)), 4) if pads else None,
        "per_photo": per_photo,
    }


def common_nrmse(results: dict[str, dict]) -> dict[str, float | None]:
    """Mean NRMSE of each result over the photos that every result detected (a like-for-like figure)."""
    sets = [set(r["per_photo"]) for r in results.values()]
    common = set.intersection(*sets) if sets else set()
    return {name: (round(float(np.mean([r["per_photo"][s] for s in common])), 3) if common else None)
            for name, r in results.items()} | {"photos": len(common)}
