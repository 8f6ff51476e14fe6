"""One photo record in, training samples (or one rejection) out: the per-photo pipeline.

Per photo (:func:`process_record`, or :func:`process_records` for a run of photos taken stage by
stage): decode -> detect + 68 landmarks -> per chosen face
:func:`make_sample`: align to the template (bilinear) -> mask + fill (a hole) or an occluder
painted over the face -> the LR: bilinear downsample, or a degradation chain -> heatmaps.  Every random draw comes from ``rng_for(seed, sample key, stage)``.
"""

from __future__ import annotations

import json

import numpy as np

from .. import degrade, masks
from ..db.base import Record, Source
from ..faces import heatmaps, resize
from ..faces.align import align_crop, alignment_matrix, transform_points
from ..faces.decode import DecodeError
from ..faces import aligned
from ..faces.detect import Face, detect_faces, select_faces, with_landmarks
from ..faces.occlude import apply_fill, sample_fill
from ..seeding import rng_for
from .config import BuildConfig


def make_sample(rgb: np.ndarray, face, key: str, cfg: BuildConfig) -> dict:
    """One training pair from one detected face.  Pure given (rgb, face, key, cfg)."""
    m = alignment_matrix(face.landmarks, cfg.align)
    hr, prefilter, pad_fraction = align_crop(rgb, m, cfg.align)
    lm = transform_points(m, face.landmarks).astype(np.float32)
    mask_params, mask, layer = masks.sample_occlusion(cfg.mask, rng_for(cfg.seed, key, "mask"), lm, cfg.hr_size)
    pair = np.empty((2, *hr.shape), np.uint8)  # [occluded, clean]: one resize call for both LRs
    if layer is None:  # a hole: filled
        # only the noise fill draws anything; skip building its generator otherwise (~30 us)
        fill = sample_fill(cfg.fill, rng_for(cfg.seed, key, "fill") if cfg.fill.mode == "noise" else None)
        apply_fill(hr, mask, fill, out=pair[0])
    else:  # an occluder: painted over the face
        fill = {"mode": "occluder"}
        masks.occluders.composite(hr, *layer, out=pair[0])
    pair[1] = hr
    hr_occ = pair[0]
    rng = None if cfg.degrade.is_none else rng_for(cfg.seed, key, "degrade")
    deg = degrade.sample_params(cfg.degrade, rng, cfg.hr_size, cfg.lr_size, cfg.resize_rule)
    extra = {}
    if cfg.degrade.is_none:
        both = resize.resize(pair, cfg.lr_size, cfg.resize_rule)
        lr, lr_clean = both[0], both[1]
    else:
        lr = degrade.apply(hr_occ, deg)
        lr_clean = resize.resize(hr, cfg.lr_size, cfg.resize_rule)
        if cfg.degrade_hr:
            extra["_occluded_clean"] = hr_occ  # for variants made after the sample (Helen's x8)
            hr_occ = degrade.apply(hr_occ, deg, size=cfg.hr_size)
    if cfg.store_alpha:
        extra["alpha"] = layer[1] if layer is not None else mask * np.uint8(255)
    heat = {}
    for spec in cfg.heatmaps:
        grouping, size = heatmaps.parse_spec(spec)
        heat[spec] = heatmaps.render_uint8(lm, grouping, size, cfg.heatmap_sigma, frame=cfg.hr_size)
    return {
        "hr": hr,
        "hr_occluded": hr_occ,
        "mask": mask,
        "lr": lr,
        "lr_clean": lr_clean,
        "landmarks": lm,
        "heatmaps": heat,
        **extra,
        "meta": {
            "mask_kind": mask_params["kind"],
            "mask_params": json.dumps(mask_params, sort_keys=True),
            "hole_ratio": masks.hole_ratio(mask),
            "fill": json.dumps(fill, sort_keys=True),
            "degrade": json.dumps(deg, sort_keys=True),
            "detector": face.detector,
            "det_upsample": face.upsample,
            "det_scale": face.scale,
            "det_score": face.score,
            "det_box": face.box,
            "align_matrix": m,
            "align_prefilter": prefilter,
            "pad_fraction": pad_fraction,
        },
    }


#: records processed stage by stage together (see :func:`process_records`), and the decoded pixels
#: (megapixels of the photos held at once) after which a batch is cut short.
BATCH_PHOTOS = 64
BATCH_PIXELS = 48_000_000


def _reject(record: Record, reason: str, detail: str = "") -> tuple[list, dict]:
    return [], {"key": record.key, "path": record.source, "reason": reason, "detail": detail}


def process_record(record: Record, source: Source, cfg: BuildConfig,
                   last_photo: dict | None = None) -> tuple[list[dict], dict | None]:
    """Samples for one record, or a rejection ``{"key", "path", "reason", "detail"}``: see :func:`process_records`."""
    return process_records([record], source, cfg, last_photo)[0]


def process_records(records: list[Record], source: Source, cfg: BuildConfig,
                    last_photo: dict | None = None) -> list[tuple[list[dict], dict | None]]:
    """``(samples, rejection or None)`` for each of consecutive records, in order.

    Stage by stage over batches of up to :data:`BATCH_PHOTOS` records (fewer when their photos
    exceed :data:`BATCH_PIXELS`): decode them all, detect in all, predict the landmarks of all the
    chosen faces, then make all the samples.  Every stage is a pure function of one photo, so the
    results are those of one record at a time; the order only keeps each dlib model's working set
    in the CPU cache from one photo to the next (measured on LFW: the 68-point predictor costs
    ~1.1 ms of CPU in a run of calls, ~2.4 ms right after a HOG scan of another photo).

    ``last_photo``: a dict the caller keeps across calls (one shard); it holds the last photo's
    pixels and detections, so records that are variants of one photo (``Source.photo_key``, e.g.
    Helen's x8) decode and detect it once.  A pure cache.
    """
    if last_photo is None:
        last_photo = {}
    results: list = []
    start = 0
    while start < len(records):
        batch, entries, pixels = [], [], 0
        while start < len(records) and len(batch) < BATCH_PHOTOS and (not batch or pixels < BATCH_PIXELS):
            rec = records[start]
            start += 1
            entry, pix = _load(rec, source, cfg, last_photo)
            batch.append(rec)
            entries.append(entry)
            pixels += pix
        results.extend(_stages(batch, entries, source, cfg))
    return results


def _load(record: Record, source: Source, cfg: BuildConfig, last_photo: dict):
    """Stage 1: (the record's photo entry -- shared by variants of one photo -- or a rejection, pixels decoded)."""
    if record.rejection:  # decided by the adapter (e.g. a duplicate under the "reject" policy)
        return _reject(record, *record.rejection), 0
    key = (source.photo_key(record), source, cfg.detect)
    cached = last_photo.get("entry")
    if cached is not None and cached[0] == key:
        return cached[1], 0  # another variant of the photo just loaded (e.g. Helen's x8)
    try:
        rgb = source.load(record)
    except DecodeError as exc:
        return _reject(record, f"decode_{exc.reason}", exc.detail), 0
    entry = {"rgb": rgb, "faces": None, "failed": None}
    last_photo["entry"] = (key, entry)
    return entry, rgb.shape[0] * rgb.shape[1]


def _stages(records, entries, source, cfg):
    """Stages 2-4 of :func:`process_records` on one batch whose photos are loaded."""
    out: list = [e if isinstance(e, tuple) else None for e in entries]
    # 2. detection (or the pre-aligned locator), once per photo
    for e in entries:
        if isinstance(e, tuple) or e["faces"] is not None or e["failed"] is not None:
            continue
        try:
            if cfg.detect.detector == "aligned":
                box, lm, tracking, failed = aligned.locate(e["rgb"], cfg.detect.aligned_box,
                                                           cfg.detect.aligned_refine, cfg.detect.aligned_tracking)
                if failed:
                    e["failed"] = ("implausible_landmarks", f"{failed[0]}: {failed[1]}")
                else:
                    e["faces"] = [Face(box=tuple(float(v) for v in box), score=1.0 - tracking, detector="aligned",
                                       upsample=0, landmarks=lm)]
            else:
                e["faces"] = detect_faces(e["rgb"], cfg.detect, landmarks=False)  # landmarks: chosen faces only
        except Exception as exc:  # noqa: BLE001 - one bad photo must not end the build; it is logged
            e["failed"] = ("processing_error", f"{type(exc).__name__}: {exc}")
    # 3. the faces to keep, and their 68 landmarks
    chosen_all: list = [None] * len(records)
    for i, (rec, e) in enumerate(zip(records, entries)):
        if out[i] is not None:
            continue
        if e["failed"]:
            out[i] = _reject(rec, *e["failed"])
            continue
        faces = e["faces"]
        try:
            chosen = source.choose_faces(rec, faces)
            if chosen is None:
                chosen, why = select_faces(faces, cfg.detect)
                if why:
                    out[i] = _reject(rec, why, f"{len(faces)} face(s) found by {cfg.detect.detector}")
                    continue
            elif not chosen:
                out[i] = _reject(rec, "annotated_face_not_found", f"{len(faces)} face(s) found")
                continue
            chosen_all[i] = [with_landmarks(e["rgb"], face) for face in chosen]
        except Exception as exc:  # noqa: BLE001
            out[i] = _reject(rec, "processing_error", f"{type(exc).__name__}: {exc}")
    # 4. the samples
    for i, (rec, e) in enumerate(zip(records, entries)):
        if out[i] is not None:
            continue
        try:
            samples = []
            for idx, face in enumerate(chosen_all[i]):
                sample = source.transform_sample(rec, make_sample(e["rgb"], face, f"{rec.key}#{idx}", cfg), cfg)
                sample["meta"].update(
                    key=f"{rec.key}#{idx}", source=rec.source, subject=rec.subject, split=rec.split,
                    face_index=idx, num_faces=len(e["faces"]), **rec.meta,
                )
                samples.append(sample)
            out[i] = (samples, None)
        except Exception as exc:  # noqa: BLE001
            out[i] = _reject(rec, "processing_error", f"{type(exc).__name__}: {exc}")
    return out
