"""Build benchmark: the whole pipeline against bare dlib on the same photos, and worker scaling.

Baseline = what any face pipeline must pay at least: for each photo (decoded
beforehand, untimed) dlib's HOG detector without upsampling plus the 68-point
predictor on the largest face.  Pipeline = ``occface.build.build`` end to end:
listing, decoding, detection, alignment, masks, heatmaps, downsampling, HDF5
shards on disk, hashing and the manifest.  Both run in this process, one after
the other, on the same photos, so the ratio transfers across machines.  Each configuration
is timed ``rounds`` times, interleaved, and the fastest round is kept: on a
shared machine the minimum is the estimate least disturbed by other work.

Variants (``variants``): other configurations timed at one worker in the same rounds, each the
default config with one change (:data:`VARIANTS`), e.g. ``detect-max-side-0`` (HOG on the photo
itself, as builds before the bounded detection copy) or ``aligned``; ``degrade`` presets likewise
(the default config with ``--degrade NAME``).  With one worker every build runs in the benchmark's
process, so besides wall-clock time its CPU time is recorded: the ratios of CPU time (medians
over the rounds of the within-round ratios) hold even when other work shares the core.

Accuracy (``truth="pts"``, or ``crops``): every timed configuration's build is scored against
reference landmarks with :mod:`.landmarks` (detection rate and outer-eye-corner NRMSE).  With
``truth="pts"`` the photos are the image files of ``root`` that have a 68-point ``.pts`` file
beside them (Helen / 300-W style), and the references are those files.  With ``crops`` the photos
are tight crops made from ``root``'s photos by :mod:`.crops`, and the references are the
full-photo landmarks mapped into each crop (plus the ``.pts`` ground truth when ``truth`` is set).
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time

import dataclasses

import numpy as np

from .. import degrade as degrade_mod
from ..build import BuildConfig, build
from ..db.folder import FolderSource
from ..faces import dlib_models
from ..faces.decode import decode_image
from . import landmarks as lm_acc

#: name -> (what it changes, the change applied to the default config)
VARIANTS = {
    "detect-max-side-0": ("HOG scans the photo itself at every step (no bounded detection copy)",
                          lambda c: dataclasses.replace(c, detect=dataclasses.replace(c.detect, max_side=0))),
    "hog+cnn": ("the CNN detector when HOG finds nothing",
                lambda c: dataclasses.replace(c, detect=dataclasses.replace(c.detect, detector="hog+cnn"))),
    "aligned": ("no detector: each photo is one centred face",
                lambda c: dataclasses.replace(c, detect=dataclasses.replace(c.detect, detector="aligned"))),
    "aligned-probe": ("aligned with the tracking probe (ratio at most 0.75)",
                      lambda c: dataclasses.replace(c, detect=dataclasses.replace(c.detect, detector="aligned",
                                                                                 aligned_tracking=0.75))),
    "reflect-blur": ("blurred padding faded to the median colour",
                     lambda c: dataclasses.replace(c, align=dataclasses.replace(c.align, padding="reflect-blur"))),
}


def variant_config(name: str, cfg: BuildConfig) -> BuildConfig:
    """The default config with variant ``name`` applied: a :data:`VARIANTS` entry or ``detect-max-side-<N>``."""
    if name in VARIANTS:
        return VARIANTS[name][1](cfg)
    head, _, n = name.rpartition("-")
    if head == "detect-max-side" and n.isdigit():
        return dataclasses.replace(cfg, detect=dataclasses.replace(cfg.detect, max_side=int(n)))
    if head == "aligned-refine" and n.isdigit():
        return dataclasses.replace(cfg, detect=dataclasses.replace(cfg.detect, detector="aligned", aligned_refine=int(n)))
    raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}, detect-max-side-<N>, aligned-refine-<N>")


IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


def _subset(root: str, limit: int, dest: str, with_pts: bool = False) -> list[str]:
    """Symlink the first ``limit`` photos (sorted walk) of ``root`` into ``dest``, keeping folders.

    ``with_pts``: only image files that have a ``.pts`` file beside them."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            # photos only: annotation files (.pts) beside them are not photos
            if fn.startswith(".") or not fn.lower().endswith(IMAGE_EXT):
                continue
            if with_pts and not os.path.isfile(os.path.join(dirpath, os.path.splitext(fn)[0] + ".pts")):
                continue
            files.append(os.path.relpath(os.path.join(dirpath, fn), root))
        if len(files) >= limit:
            break
    files = sorted(files)[:limit]
    for rel in files:
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        os.symlink(os.path.abspath(os.path.join(root, rel)), os.path.join(dest, rel))
    return files


def _decode(folder: str, files: list[str]) -> list[np.ndarray]:
    photos = []
    for rel in files:
        try:
            photos.append(decode_image(os.path.join(folder, rel))[0])
        except ValueError:
            pass
    return photos


def _chunk_dirs(photos_dir: str, files: list[str], size: int, dest: str) -> list[tuple[str, list[str]]]:
    """Consecutive groups of ``size`` files as folders of symlinks under ``dest``: [(folder, files)]."""
    shutil.rmtree(dest, ignore_errors=True)
    out = []
    for i in range(0, len(files), size):
        folder = os.path.join(dest, f"c{i // size:04d}")
        for rel in files[i : i + size]:
            os.makedirs(os.path.join(folder, os.path.dirname(rel)), exist_ok=True)
            os.symlink(os.path.realpath(os.path.join(photos_dir, rel)), os.path.join(folder, rel))
        out.append((folder, files[i : i + size]))
    return out


def _timed_build(folder: str, cfg: BuildConfig, out: str, workers: int) -> tuple[float, float, dict]:
    """(wall seconds, this process's CPU seconds, manifest) of one build."""
    shutil.rmtree(out, ignore_errors=True)
    t, c = time.perf_counter(), time.process_time()
    m = build(FolderSource(folder), cfg, out, workers=workers, progress=False, log=lambda s: None)
    return time.perf_counter() - t, time.process_time() - c, m


def _profile(folder: str, cfg: BuildConfig, out: str, n: int, top: int) -> list:
    """[[function, ms per photo (own CPU time), share of the build], ...] for the ``top`` largest."""
    import cProfile
    import pstats

    shutil.rmtree(out, ignore_errors=True)
    prof = cProfile.Profile(time.process_time)  # CPU time: other work sharing the core does not count
    prof.enable()
    build(FolderSource(folder), cfg, out, workers=1, progress=False, log=lambda s: None)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())
    rows = sorted(((v[2], f"{os.path.basename(k[0])}:{k[2]}" if k[0] != "~" else k[2]) for k, v in stats.items()),
                  reverse=True)[:top]
    return [[name, round(1e3 * t / n, 3), round(t / total, 3)] for t, name in rows]


def _sum_totals(parts: list[dict]) -> dict:
    return {k: sum(p[k] for p in parts) for k in ("records", "samples", "rejected")}


def baseline_seconds(photos: list[np.ndarray], cpu: bool = False):
    """(wall seconds, faces found) of bare dlib on decoded photos; with ``cpu`` also the CPU seconds
    (third item)."""
    det, sp = dlib_models.hog_detector(), dlib_models.shape_predictor68()
    t, c = time.perf_counter(), time.process_time()
    found = 0
    for rgb in photos:
        rects, scores, _ = det.run(rgb, 0, 0.0)
        if len(rects):
            big = max(rects, key=lambda r: r.area())
            sp(rgb, big)
            found += 1
    wall, used = time.perf_counter() - t, time.process_time() - c
    return (wall, found, used) if cpu else (wall, found)


def _references(root: str, photos_dir: str, files: list[str], truth: str | None, crops: str | None,
                seed: int, log) -> tuple[str, list[str], dict, dict]:
    """(photo folder, files, {name: {source: (68, 2) reference}}, crop summary) for the run; the crop
    summary holds ``face_boxes``, the full-photo face boxes in crop pixels (popped before reporting)."""
    refs: dict[str, dict] = {}
    if truth == "pts":
        refs["truth"] = {rel: lm_acc.read_pts(os.path.join(root, os.path.splitext(rel)[0] + ".pts")) for rel in files}
    if not crops:
        return photos_dir, files, refs, {}
    from . import crops as crop_mod

    crops_dir = os.path.join(os.path.dirname(photos_dir), "crops")
    shutil.rmtree(crops_dir, ignore_errors=True)
    made = crop_mod.make_tight_crops(photos_dir, files, crops_dir, darken=(crops == "tight-dark"), seed=seed,
                                     truth=refs.get("truth"))
    log(f"crops: {len(made['crops'])} {crops} crops of {len(files)} photos ({made['skipped']} without a "
        f"full-photo face skipped)")
    names = sorted(made["crops"])
    refs = {"full-photo": {n: made["crops"][n]["full_photo"] for n in names}}
    if truth == "pts":
        refs["truth"] = {n: made["crops"][n]["truth"] for n in names}
        # the full-photo run itself, scored against the truth: what a crop's landmarks are compared with
        made["full_photo_nrmse"] = {n: lm_acc.nrmse(made["crops"][n]["full_photo"], made["crops"][n]["truth"])
                                    for n in names}
    info = {k: v for k, v in made.items() if k != "crops"}
    info["face_boxes"] = {n: made["crops"][n]["params"]["face_box"] for n in names}
    return crops_dir, names, refs, info


def run(root: str, limit: int = 1024, workers: list[int] = (1, 2), scratch: str | None = None,
        rounds: int = 3, log=print, variants: tuple[str, ...] = (), truth: str | None = None,
        crops: str | None = None, seed: int = 0, chunk: int = 0, degrade: tuple[str, ...] = ("gfpgan",),
        profile: int = 0) -> dict:
    """Time the baseline, the default pipeline at each worker count and each variant (one worker).

    ``truth``: ``"pts"`` = score against the ``.pts`` files beside the photos; ``crops``:
    ``"tight"`` or ``"tight-dark"`` = run on tight crops of the photos (see :mod:`.crops`).
    ``chunk`` > 0: interleave finer -- each round runs the baseline and every one-worker build on
    ``chunk`` photos at a time (one small build per chunk and config), so load that changes over
    minutes on a shared machine hits all of them alike; worker scaling is still timed on whole builds.
    ``degrade``: degradation presets also timed at the smallest worker count, in the same rounds.
    ``profile`` > 0: after the rounds, one more default one-worker build under cProfile; the result
    lists its ``profile`` largest functions by own CPU time (ms per photo, share of the build).
    """
    w0 = min(workers)
    cfg = BuildConfig()  # the default config, as `occface build` uses it
    one = {"default": cfg} | {v: variant_config(v, cfg) for v in variants}  # timed at w0 workers
    one |= {f"degrade-{d}": dataclasses.replace(cfg, degrade=degrade_mod.from_text(d)) for d in degrade}
    if truth not in (None, "pts") or crops not in (None, "tight", "tight-dark"):
        raise ValueError("truth must be 'pts' and crops 'tight' or 'tight-dark'")
    tmp = scratch or tempfile.mkdtemp(prefix="occface-bench-")
    load_start = os.getloadavg()
    try:
        photos_dir = os.path.join(tmp, "photos")
        shutil.rmtree(photos_dir, ignore_errors=True)
        files = _subset(root, limit, photos_dir, with_pts=truth == "pts")
        if not files:
            raise ValueError(f"no photos under {root}" + (" with a .pts file beside them" if truth else ""))
        dlib_models.hog_detector()
        dlib_models.shape_predictor68()
        if degrade:  # import albumentations (seconds) before any timing
            from ..degrade.steps import albumentations_functional

            albumentations_functional()
        photos_dir, files, refs, crop_info = _references(root, photos_dir, files, truth, crops, seed, log)
        groups = _chunk_dirs(photos_dir, files, chunk, os.path.join(tmp, "chunks")) if chunk else [(photos_dir, files)]
        decoded = None if chunk else _decode(photos_dir, files)  # whole sets stay decoded; chunks decode in turn
        scaling = [w for w in workers if chunk or w != w0] if len(workers) > 1 else []
        outs = {name: [os.path.join(tmp, f"build-{name}", f"c{g:04d}") for g in range(len(groups))] for name in one}
        base_s, times, totals, n_decoded = float("inf"), {}, {}, 0
        cpu_ratios: dict[str, list[float]] = {}  # per round: CPU time over the baseline's (one worker)
        for r in range(rounds):
            b_r, bc_r, found, n_decoded, t_r, c_r, tot_r = 0.0, 0.0, 0, 0, dict.fromkeys(one, 0.0), \
                dict.fromkeys(one, 0.0), {}
            for g, (gdir, gfiles) in enumerate(groups):
                photos = decoded if decoded is not None else _decode(gdir, gfiles)
                b, f, bc = baseline_seconds(photos, cpu=True)
                b_r, bc_r, found, n_decoded = b_r + b, bc_r + bc, found + f, n_decoded + len(photos)
                for name, c in one.items():
                    dt, dc, m = _timed_build(gdir, c, outs[name][g], w0)
                    t_r[name] += dt
                    c_r[name] += dc
                    tot_r.setdefault(name, []).append(m["totals"])
            base_s = min(base_s, b_r)
            log(f"round {r + 1}: baseline (dlib HOG + 68 points, {n_decoded} photos, {found} faces) "
                f"{1e3 * b_r / n_decoded:.2f} ms/photo ({1e3 * bc_r / n_decoded:.2f} ms CPU)")
            for name, dt in t_r.items():
                times[name] = min(times.get(name, float("inf")), dt)
                totals[name] = _sum_totals(tot_r[name])
                label = f"pipeline, {w0} worker(s)" if name == "default" else \
                    (f"pipeline --degrade {name[8:]}" if name.startswith("degrade-") else f"variant {name}") + \
                    f", {w0} worker(s)"
                extra = ""
                if w0 == 1:  # the build ran in this process: its CPU time is the pipeline's
                    cpu_ratios.setdefault(name, []).append(c_r[name] / bc_r)
                    extra = f", {1e3 * c_r[name] / len(files):.2f} ms CPU = {c_r[name] / bc_r:.3f}x the baseline's"
                log(f"round {r + 1}: {label}: {1e3 * dt / len(files):.2f} ms/photo{extra} "
                    f"({totals[name]['samples']} samples, {totals[name]['rejected']} rejected)")
            for w in scaling:  # worker scaling: whole builds of the same photos at each count
                dt, _, m = _timed_build(photos_dir, cfg, os.path.join(tmp, f"build-whole-w{w}"), w)
                times[f"whole-w{w}"] = min(times.get(f"whole-w{w}", float("inf")), dt)
                log(f"round {r + 1}: pipeline, whole build, {w} worker(s): {1e3 * dt / len(files):.2f} ms/photo "
                    f"({m['totals']['samples']} samples, {m['totals']['rejected']} rejected)")
        times.setdefault(f"whole-w{w0}", times["default"])
        d0 = times["default"]
        res = {
            "photos": len(files),
            "rounds": rounds,
            "chunk": chunk or None,
            "samples": totals["default"]["samples"],
            "cpu": platform.processor() or platform.machine(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
            "baseline_ms_per_photo": round(1e3 * base_s / n_decoded, 3),
            "pipeline_ms_per_photo": {w: round(1e3 * times[f"whole-w{w}"] / len(files), 3) for w in workers}
            | {w0: round(1e3 * d0 / len(files), 3)},
            f"pipeline_over_baseline_{w0}_worker": round(d0 / base_s, 3),
        }
        med = {k: float(np.median(v)) for k, v in cpu_ratios.items()}
        if med:
            res["pipeline_over_baseline_1_worker_cpu"] = round(med["default"], 3)
        for w in workers:
            if w != w0:
                res[f"speedup_{w0}_to_{w}_workers"] = round(times[f"whole-w{w0}"] / times[f"whole-w{w}"], 3)
        for v in variants:
            res.setdefault("variants", {})[v] = {
                "ms_per_photo": round(1e3 * times[v] / len(files), 3),
                "over_baseline": round(times[v] / base_s, 3),
                "default_speedup": round(times[v] / d0, 3),  # > 1: the default build is that many times faster
                "samples": totals[v]["samples"],
            } | ({"over_baseline_cpu": round(med[v], 3)} if med else {})
        if "aligned" in variants and "hog+cnn" in variants:
            res["aligned_speedup_over_hog+cnn"] = round(times["hog+cnn"] / times["aligned"], 3)
            if med:
                res["aligned_speedup_over_hog+cnn_cpu"] = round(med["hog+cnn"] / med["aligned"], 3)
        for d in degrade:
            t = times[f"degrade-{d}"]
            res[f"pipeline_ms_per_photo_degrade_{d}"] = round(1e3 * t / len(files), 3)
            res[f"degrade_{d}_added_per_photo"] = round(t / d0 - 1, 3)
            if med:  # the median over rounds of (CPU with the chain / CPU without) - 1
                per_round = [a / b - 1 for a, b in zip(cpu_ratios[f"degrade-{d}"], cpu_ratios["default"])]
                res[f"degrade_{d}_added_per_photo_cpu"] = round(float(np.median(per_round)), 3)
        if profile:
            res["profile_ms_per_photo"] = _profile(photos_dir, cfg, os.path.join(tmp, "build-profile"), len(files),
                                                   profile)
        face_boxes = crop_info.pop("face_boxes", None)
        full_run = crop_info.pop("full_photo_nrmse", None)
        if crop_info:
            res["crops"] = crop_info
        for ref_name, ref in refs.items():
            scored = {name: lm_acc.build_accuracy(outs[name], ref, face_boxes) for name in one
                      if not name.startswith("degrade-")}
            acc = res.setdefault("accuracy", {})[ref_name] = {
                "per_config": {k: {f: v for f, v in a.items() if f != "per_photo"} for k, a in scored.items()},
                "nrmse_on_common_photos": lm_acc.common_nrmse(scored),
            }
            if ref_name == "truth" and full_run:
                # each config's NRMSE on the crops minus the full-photo run's, on the photos the config kept
                acc["full_photo_run_nrmse_mean"] = round(float(np.mean(list(full_run.values()))), 3)
                acc["minus_full_photo_run"] = {
                    k: round(float(np.mean([e - full_run[p] for p, e in a["per_photo"].items()])), 3)
                    for k, a in scored.items() if a["per_photo"]}
        return res
    finally:
        if scratch is None:
            shutil.rmtree(tmp, ignore_errors=True)
