"""One photo record in, training samples (or one rejection) out: the per-photo pipeline.

Per photo (:func:`process_record`): decode -> detect + 68 landmarks -> per chosen face
:func:`make_sample`: align to the template (bilinear) -> mask + fill (a hole) or an occluder
painted over the face -> the LR: bilinear downsample, or a degradation chain -> heatmaps.  Every random draw comes from ``rng_for(seed, sample key, stage)``.
"""

from __future__ import annotations

import json

import numpy as np

from .. import degrade, masks
from ..db.base import Record, Source
from ..faces import heatmaps, resize
from ..faces.align import alignment_matrix, transform_points, warp
from ..faces.decode import DecodeError
from ..faces.detect import detect_faces, select_faces, with_landmarks
from ..faces.occlude import apply_fill, sample_fill
from ..seeding import rng_for
from .config import BuildConfig


def make_sample(rgb: np.ndarray, face, key: str, cfg: BuildConfig) -> dict:
    """One training pair from one detected face.  Pure given (rgb, face, key, cfg)."""
    m = alignment_matrix(face.landmarks, cfg.align)
    hr, prefilter = warp(rgb, m, cfg.align)
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
            "det_score": face.score,
            "det_box": face.box,
            "align_matrix": m,
            "align_prefilter": prefilter,
        },
    }


def process_record(record: Record, source: Source, cfg: BuildConfig,
                   last_photo: dict | None = None) -> tuple[list[dict], dict | None]:
    """Samples for one record, or a rejection ``{"key", "path", "reason", "detail"}``.

    ``last_photo``: a dict the caller keeps across consecutive records (one shard); it holds the
    last photo's pixels and detections, so records that are variants of one photo
    (``Source.photo_key``, e.g. Helen's x8) decode and detect it once.  A pure cache.
    """
    if last_photo is None:
        last_photo = {}

    def reject(reason, detail=""):
        return [], {"key": record.key, "path": record.source, "reason": reason, "detail": detail}

    if record.rejection:  # decided by the adapter (e.g. a duplicate under the "reject" policy)
        return reject(*record.rejection)

    photo = source.photo_key(record)
    cached = last_photo.get("entry")
    if cached is not None and cached[0] == (photo, source, cfg.detect):
        rgb, faces = cached[1]  # another variant of the photo just processed (e.g. Helen's x8)
    else:
        try:
            rgb = source.load(record)
        except DecodeError as exc:
            return reject(f"decode_{exc.reason}", exc.detail)
        faces = None
    try:
        if faces is None:
            faces = detect_faces(rgb, cfg.detect, landmarks=False)  # landmarks only for the chosen faces
            last_photo["entry"] = ((photo, source, cfg.detect), (rgb, faces))
        chosen = source.choose_faces(record, faces)
        if chosen is None:
            chosen, why = select_faces(faces, cfg.detect)
            if why:
                return reject(why, f"{len(faces)} face(s) found by {cfg.detect.detector}")
        elif not chosen:
            return reject("annotated_face_not_found", f"{len(faces)} face(s) found")
        out = []
        for idx, face in enumerate(chosen):
            face = with_landmarks(rgb, face)
            sample = source.transform_sample(record, make_sample(rgb, face, f"{record.key}#{idx}", cfg), cfg)
            sample["meta"].update(
                key=f"{record.key}#{idx}", source=record.source, subject=record.subject, split=record.split,
                face_index=idx, num_faces=len(faces), **record.meta,
            )
            out.append(sample)
        return out, None
    except Exception as exc:  # noqa: BLE001 - one bad photo must not end the build; it is logged
        return reject("processing_error", f"{type(exc).__name__}: {exc}")
