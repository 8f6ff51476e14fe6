"""Build benchmark: the whole pipeline against bare dlib on the same photos, and worker scaling.

Baseline = what any face pipeline must pay at least: for each photo (decoded
beforehand, untimed) dlib's HOG detector without upsampling plus the 68-point
predictor on the largest face.  Pipeline = ``occface.build.build`` end to end:
listing, decoding, detection, alignment, masks, heatmaps, downsampling, HDF5
shards on disk, hashing and the manifest.  Both run in this process, one after
the other, on the same photos, so the ratio transfers across machines.  Each configuration
is timed ``rounds`` times, interleaved, and the fastest round is kept: on a
shared machine the minimum is the estimate least disturbed by other work.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time

from dataclasses import replace

import numpy as np

from .. import degrade as degrade_mod
from ..build import BuildConfig, build
from ..db.folder import FolderSource
from ..faces import dlib_models
from ..faces.decode import decode_image


def _subset(root: str, limit: int, dest: str) -> list[str]:
    """Symlink the first ``limit`` files (sorted walk) of ``root`` into ``dest``, keeping folders."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.startswith("."):
                files.append(os.path.relpath(os.path.join(dirpath, fn), root))
        if len(files) >= limit:
            break
    files = sorted(files)[:limit]
    for rel in files:
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        os.symlink(os.path.abspath(os.path.join(root, rel)), os.path.join(dest, rel))
    return files


def baseline_seconds(photos: list[np.ndarray]) -> tuple[float, int]:
    det, sp = dlib_models.hog_detector(), dlib_models.shape_predictor68()
    t = time.perf_counter()
    found = 0
    for rgb in photos:
        rects, scores, _ = det.run(rgb, 0, 0.0)
        if len(rects):
            big = max(rects, key=lambda r: r.area())
            sp(rgb, big)
            found += 1
    return time.perf_counter() - t, found


def run(root: str, limit: int = 1024, workers: list[int] = (1, 2), scratch: str | None = None,
        rounds: int = 3, log=print, degrade: tuple[str, ...] = ("gfpgan",)) -> dict:
    """``degrade``: degradation presets also timed (one worker count: the smallest), in the same rounds."""
    tmp = scratch or tempfile.mkdtemp(prefix="occface-bench-")
    try:
        photos_dir = os.path.join(tmp, "photos")
        shutil.rmtree(photos_dir, ignore_errors=True)
        files = _subset(root, limit, photos_dir)
        dlib_models.hog_detector()
        dlib_models.shape_predictor68()
        if degrade:  # import albumentations (seconds) before any timing
            from ..degrade.steps import albumentations_functional

            albumentations_functional()
        photos = []
        for rel in files:
            try:
                photos.append(decode_image(os.path.join(photos_dir, rel))[0])
            except ValueError:
                pass
        cfg = BuildConfig()  # the default config, as `occface build` uses it
        base_s, times, m = float("inf"), {w: float("inf") for w in workers}, None
        deg_times: dict[str, float] = {}
        deg_cpu: dict[str, list[float]] = {}  # per round: CPU time with the chain / without - 1 (1 worker)
        for r in range(rounds):
            b, found = baseline_seconds(photos)
            base_s = min(base_s, b)
            log(f"round {r + 1}: baseline (dlib HOG + 68 points, {len(photos)} photos, {found} faces) "
                f"{1e3 * b / len(photos):.2f} ms/photo")
            for w in workers:
                out = os.path.join(tmp, f"build-w{w}")
                shutil.rmtree(out, ignore_errors=True)
                t, c = time.perf_counter(), time.process_time()
                m = build(FolderSource(photos_dir), cfg, out, workers=w, progress=False, log=lambda s: None)
                dt = time.perf_counter() - t
                times[w] = min(times[w], dt)
                if w == 1:  # in this process: its CPU time is the pipeline's, whatever else shares the core
                    cpu_round = time.process_time() - c
                log(f"round {r + 1}: pipeline, {w} worker(s): {1e3 * dt / len(files):.2f} ms/photo "
                    f"({m['totals']['samples']} samples, {m['totals']['rejected']} rejected)")
            for name in degrade:  # the same pipeline with an LR degradation chain
                out = os.path.join(tmp, f"build-degrade-{name}")
                shutil.rmtree(out, ignore_errors=True)
                t, c = time.perf_counter(), time.process_time()
                build(FolderSource(photos_dir), replace(cfg, degrade=degrade_mod.from_text(name)), out,
                      workers=min(workers), progress=False, log=lambda s: None)
                dt, dc = time.perf_counter() - t, time.process_time() - c
                deg_times[name] = min(deg_times.get(name, float("inf")), dt)
                extra = ""
                if min(workers) == 1:
                    deg_cpu.setdefault(name, []).append(dc / cpu_round - 1)
                    extra = f", +{100 * deg_cpu[name][-1]:.1f}% CPU time over the default pipeline this round"
                log(f"round {r + 1}: pipeline --degrade {name}, {min(workers)} worker(s): "
                    f"{1e3 * dt / len(files):.2f} ms/photo{extra}")
        w0 = min(workers)
        res = {
            "photos": len(files),
            "rounds": rounds,
            "samples": m["totals"]["samples"],
            "cpu": platform.processor() or platform.machine(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "baseline_ms_per_photo": round(1e3 * base_s / len(photos), 3),
            "pipeline_ms_per_photo": {w: round(1e3 * t / len(files), 3) for w, t in times.items()},
            f"pipeline_over_baseline_{w0}_worker": round(times[w0] / base_s, 3),
        }
        for w in workers:
            if w != w0:
                res[f"speedup_{w0}_to_{w}_workers"] = round(times[w0] / times[w], 3)
        for name, t in deg_times.items():
            res[f"pipeline_ms_per_photo_degrade_{name}"] = round(1e3 * t / len(files), 3)
            res[f"degrade_{name}_added_per_photo"] = round(t / times[w0] - 1, 3)
            if name in deg_cpu:
                res[f"degrade_{name}_added_per_photo_cpu"] = round(float(np.median(deg_cpu[name])), 3)
        return res
    finally:
        if scratch is None:
            shutil.rmtree(tmp, ignore_errors=True)
