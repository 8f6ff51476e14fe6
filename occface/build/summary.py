"""Summaries and contact sheets of a finished build (``occface inspect``)."""

from __future__ import annotations

import os

import cv2
import h5py
import numpy as np

from ..format.manifest import load_manifest
from ..seeding import rng_for


#: share of the decodable photos without a detected face above which a build reports it
NO_FACE_SHARE = 0.10


def missing_faces(manifest: dict) -> dict | None:
    """``{"no_face", "photos", "fraction", "detector"}`` when more than :data:`NO_FACE_SHARE` of a build's
    decodable photos (records not rejected as ``decode_*``) were rejected because no face was found;
    else None.  (The CLI words it as a hint naming the options that find more faces.)"""
    counts = manifest["rejections"]["counts"]
    photos = manifest["totals"]["records"] - sum(n for r, n in counts.items() if r.startswith("decode_"))
    n = counts.get("no_face", 0)
    if photos <= 0 or n <= NO_FACE_SHARE * photos:
        return None
    return {"no_face": n, "photos": photos, "fraction": round(n / photos, 4),
            "detector": manifest["config"]["detect"]["detector"]}


def summary(out_dir: str) -> dict:
    """Counts by split, mask kind and rejection reason, plus hole-ratio statistics (and
    ``missing_faces`` when many photos had no face found)."""
    m = load_manifest(out_dir)
    kinds: dict[str, int] = {}
    detectors: dict[str, int] = {}
    ratios = []
    for e in m["shards"]:
        with h5py.File(os.path.join(out_dir, e["file"]), "r") as f:
            for k in f["meta/mask_kind"].asstr()[...]:
                kinds[k] = kinds.get(k, 0) + 1
            for k in f["meta/detector"].asstr()[...]:
                detectors[k] = detectors.get(k, 0) + 1
            ratios.append(f["meta/hole_ratio"][...])
    r = np.concatenate(ratios) if ratios else np.zeros(0)
    pct = np.percentile(r, [10, 50, 90]).round(4).tolist() if r.size else []
    return {
        "shards": len(m["shards"]),
        "totals": m["totals"],
        "rejections": m["rejections"]["counts"],
        "mask_kinds": dict(sorted(kinds.items())),
        "detectors": dict(sorted(detectors.items())),
        "hole_ratio": {"mean": round(float(r.mean()), 4) if r.size else None, "p10_p50_p90": pct},
        "missing_faces": missing_faces(m),
        "config": m["config"],
    }


def _locate(out_dir: str, m: dict) -> list[tuple[str, int]]:
    return [(os.path.join(out_dir, e["file"]), i) for e in m["shards"] for i in range(e["samples"])]


def contact_sheet(out_dir: str, png_path: str, n: int = 12, seed: int = 0) -> int:
    """Write a PNG of ``n`` random samples: HR | occluded HR | mask | occluded LR (nearest x8) | heatmaps.

    The samples are chosen with a generator seeded from ``seed``.  Returns how many were drawn.
    """
    m = load_manifest(out_dir)
    where = _locate(out_dir, m)
    if not where:
        raise ValueError("the build holds no samples")
    rng = rng_for(seed, "inspect", "contact-sheet")
    pick = sorted(rng.choice(len(where), size=min(n, len(where)), replace=False).tolist())
    tiles = []
    for k in pick:
        path, i = where[k]
        with h5py.File(path, "r") as f:
            hr, occ, mask, lr = f["hr"][i], f["hr_occluded"][i], f["mask"][i], f["lr"][i]
            S = hr.shape[0]
            hm_name = sorted(f["heatmaps"].keys())[0] if "heatmaps" in f else None
            heat = f["heatmaps"][hm_name][i].max(axis=0) if hm_name else np.zeros((S, S), np.uint8)
            lm = f["landmarks"][i]
        heat = cv2.resize(heat, (S, S), interpolation=cv2.INTER_LINEAR)
        overlay = hr.copy()
        overlay[..., 0] = np.maximum(overlay[..., 0], heat)
        for x, y in lm:
            cv2.circle(overlay, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
        lr_big = cv2.resize(lr, (S, S), interpolation=cv2.INTER_NEAREST)
        mask_rgb = np.repeat((mask * 255)[..., None], 3, axis=2)
        tiles.append(np.concatenate([hr, occ, mask_rgb, lr_big, overlay], axis=1))
    cols = 2
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[r : r + cols], axis=1) for r in range(0, len(tiles), cols)]
    sheet = np.concatenate(rows, axis=0)
    os.makedirs(os.path.dirname(os.path.abspath(png_path)), exist_ok=True)
    if not cv2.imwrite(png_path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {png_path}")
    return len(pick)
