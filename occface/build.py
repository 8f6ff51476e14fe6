"""The build: photos in, verified HDF5 shards and a manifest out.

Per photo (``process_record``): decode -> detect + 68 landmarks -> align to
the template (bilinear) -> heatmaps -> mask + fill -> bilinear downsample.

Sharding: records are sorted by key and cut into consecutive groups of
``cfg.shard_size``; group j becomes ``shards/shard-j.h5``.  Membership
therefore depends only on the inputs and the config, never on the worker
count or partition, which is what makes builds byte-identical across
``--workers`` and lets ``--num-shards K --shard-index I`` (cluster job
arrays) build exactly the shards j with ``j % K == I``.

Resume: a shard that exists under its final name is complete (atomic
rename), so re-running the same command skips it.  Its stored config is
checked first, so a resume never mixes two configs.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import __version__, heatmaps, masks, resize, shards
from .align import alignment_matrix, transform_points, warp
from .config import BuildConfig, to_dict, to_json
from .db.base import Record, Source
from .decode import DecodeError
from .detect import detect_faces, select_faces, with_landmarks
from .occlude import apply_fill, sample_fill
from .seeding import rng_for

MANIFEST = "manifest.json"


class BuildError(RuntimeError):
    pass


def part_manifest_name(index: int, count: int) -> str:
    return f"manifest-part-{index:04d}-of-{count:04d}.json"


def versions() -> dict:
    import cv2
    import dlib
    import h5py

    return {
        "occface": __version__,
        "dlib": dlib.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


# ----------------------------------------------------------------------------- per record

def make_sample(rgb: np.ndarray, face, key: str, cfg: BuildConfig) -> dict:
    """One training pair from one detected face.  Pure given (rgb, face, key, cfg)."""
    m = alignment_matrix(face.landmarks, cfg.align)
    hr, prefilter = warp(rgb, m, cfg.align)
    lm = transform_points(m, face.landmarks).astype(np.float32)
    mask_params = masks.sample_params(cfg.mask, rng_for(cfg.seed, key, "mask"), lm, cfg.hr_size)
    mask = masks.render(mask_params, cfg.hr_size)
    # only the noise fill draws anything; skip building its generator otherwise (~30 us)
    fill = sample_fill(cfg.fill, rng_for(cfg.seed, key, "fill") if cfg.fill.mode == "noise" else None)
    pair = np.empty((2, *hr.shape), np.uint8)  # [occluded, clean]: one resize call for both LRs
    apply_fill(hr, mask, fill, out=pair[0])
    pair[1] = hr
    both = resize.resize(pair, cfg.lr_size, cfg.resize_rule)
    hr_occ = pair[0]
    heat = {}
    for spec in cfg.heatmaps:
        grouping, size = heatmaps.parse_spec(spec)
        heat[spec] = heatmaps.render_uint8(lm, grouping, size, cfg.heatmap_sigma, frame=cfg.hr_size)
    return {
        "hr": hr,
        "hr_occluded": hr_occ,
        "mask": mask,
        "lr": both[0],
        "lr_clean": both[1],
        "landmarks": lm,
        "heatmaps": heat,
        "meta": {
            "mask_kind": mask_params["kind"],
            "mask_params": json.dumps(mask_params, sort_keys=True),
            "hole_ratio": masks.hole_ratio(mask),
            "fill": json.dumps(fill, sort_keys=True),
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


# ----------------------------------------------------------------------------- per shard

def build_shard(index: int, records: list[Record], source: Source, cfg: BuildConfig, out_dir: str,
                n_shards: int, tick=None) -> dict:
    samples, rejections = [], []
    last_photo: dict = {}  # lives for this shard only, so it never outlives the files it was read from
    for rec in records:
        got, rej = process_record(rec, source, cfg, last_photo)
        samples.extend(got)
        if rej:
            rejections.append(rej)
        if tick:
            tick(1, len(got), 1 if rej else 0)
    attrs = {
        "config": to_json(cfg),
        "source": json.dumps(source.describe(), sort_keys=True),
        "shard_index": index,
        "num_shards": n_shards,
        "num_records": len(records),
        "first_key": records[0].key,
        "last_key": records[-1].key,
        "rejections": rejections,
        "occface_version": __version__,
    }
    specs = {s: heatmaps.channels(heatmaps.parse_spec(s)[0]) for s in cfg.heatmaps}
    path = os.path.join(out_dir, "shards", shards.shard_name(index))
    shards.write_shard(path, samples, attrs, source.fields(), cfg.hr_size, cfg.lr_size, specs)
    return {"index": index, "samples": len(samples), "rejected": len(rejections)}


_WORKER: dict = {}


def _worker_init(source, cfg, out_dir, n_shards, queue):
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe
    _WORKER.update(source=source, cfg=cfg, out_dir=out_dir, n_shards=n_shards, queue=queue)


def _worker_task(task):
    index, records = task
    w = _WORKER
    q = w["queue"]
    return build_shard(index, records, w["source"], w["cfg"], w["out_dir"], w["n_shards"],
                       tick=lambda f, s, r: q.put((f, s, r)))


# ----------------------------------------------------------------------------- planning

def plan(source: Source, cfg: BuildConfig) -> list[list[Record]]:
    """Records cut into shard groups, after checking keys and split disjointness."""
    records = source.records()
    keys = [r.key for r in records]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise BuildError("adapter returned unsorted or duplicate record keys")
    check_identity_disjoint(records)
    s = cfg.shard_size
    return [records[i : i + s] for i in range(0, len(records), s)]


def check_identity_disjoint(records: list[Record]) -> None:
    seen: dict[str, str] = {}
    for r in records:
        if r.subject:
            other = seen.setdefault(r.subject, r.split)
            if other != r.split:
                raise BuildError(f"subject {r.subject!r} is in both {other!r} and {r.split!r}: splits must be identity-disjoint")


@dataclass(frozen=True)
class Partition:
    count: int = 1
    index: int = 0

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"need 0 <= shard-index < num-shards, got {self.index} of {self.count}")

    def owns(self, shard: int) -> bool:
        return shard % self.count == self.index


def _check_existing(path: str, cfg_json: str, source_json: str) -> None:
    attrs = shards.read_attrs(path)
    if to_json(attrs.get("config")) != cfg_json or json.dumps(attrs.get("source"), sort_keys=True) != source_json:
        raise BuildError(
            f"{path} was built with another config or database; use a fresh --out (or delete it) to rebuild"
        )


def build(source: Source, cfg: BuildConfig, out_dir: str, workers: int = 0, partition: Partition = Partition(),
          progress: bool | None = None, log=print) -> dict:
    """Build (or resume) the shards this partition owns and write its manifest.  Returns the manifest."""
    t0 = time.perf_counter()
    groups = plan(source, cfg)
    n = len(groups)
    os.makedirs(os.path.join(out_dir, "shards"), exist_ok=True)
    cfg_json = to_json(cfg)
    source_json = json.dumps(source.describe(), sort_keys=True)
    mine = [j for j in range(n) if partition.owns(j)]
    todo = []
    for j in mine:
        path = os.path.join(out_dir, "shards", shards.shard_name(j))
        for stale in os.listdir(os.path.dirname(path)):
            if stale.startswith(os.path.basename(path) + ".tmp"):
                os.unlink(os.path.join(os.path.dirname(path), stale))
        if os.path.exists(path):
            _check_existing(path, cfg_json, source_json)
        else:
            todo.append(j)
    n_records = sum(len(groups[j]) for j in todo)
    if len(mine) > len(todo):
        log(f"resuming: {len(mine) - len(todo)} of {len(mine)} shards already complete")
    # all cores this process may use (affinity / container limits), not all cores of the host
    workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) or 1
    workers = max(1, min(workers, len(todo))) if todo else 1
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=n_records, unit="file", desc="build", dynamic_ncols=True)
    found = rejected = 0

    def tick(f, s, r):
        nonlocal found, rejected
        found += s
        rejected += r
        if bar is not None:
            bar.update(f)
            bar.set_postfix(faces=found, rejected=rejected, refresh=False)

    if workers == 1:
        import cv2

        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            for j in todo:
                build_shard(j, groups[j], source, cfg, out_dir, n, tick)
        finally:
            cv2.setNumThreads(threads)
    elif todo:
        _preload(cfg)
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        queue = ctx.Queue()
        with ctx.Pool(workers, _worker_init, (source, cfg, out_dir, n, queue)) as pool:
            pending = pool.map_async(_worker_task, [(j, groups[j]) for j in todo], chunksize=1)
            while True:
                try:
                    tick(*queue.get(timeout=0.2))
                except Exception:  # queue.Empty
                    if pending.ready():
                        break
            while not queue.empty():
                tick(*queue.get())
            pending.get()  # re-raises a worker's exception
    if bar is not None:
        bar.close()
    manifest = write_manifest(out_dir, source, cfg, n, partition)
    tot = manifest["totals"]
    errors = manifest["rejections"]["counts"].get("processing_error", 0)
    if errors:
        first = next(r for r in manifest["rejections"]["log"] if r["reason"] == "processing_error")
        log(f"WARNING: {errors} photo(s) failed inside the pipeline (first: {first['path']}: {first['detail']}); "
            "they are listed in the manifest's rejection log")
    log(
        f"built {len(todo)} shard(s) in {time.perf_counter() - t0:.1f}s: {tot['records']} files, "
        f"{tot['samples']} samples, {tot['rejected']} rejected -> {out_dir}"
    )
    return manifest


def _preload(cfg: BuildConfig) -> None:
    """Load dlib models before forking so workers share them instead of each reading 100 MB."""
    from . import dlib_models

    dlib_models.hog_detector()
    dlib_models.shape_predictor68()
    if cfg.detect.detector != "hog":
        dlib_models.cnn_detector()


# ----------------------------------------------------------------------------- manifests

def shard_entry(out_dir: str, index: int) -> tuple[dict, list[dict], dict]:
    rel = f"shards/{shards.shard_name(index)}"
    path = os.path.join(out_dir, rel)
    attrs = shards.read_attrs(path)
    meta = shards.read_meta(path)
    splits: dict[str, int] = {}
    for s in meta["split"]:
        splits[s] = splits.get(s, 0) + 1
    entry = {
        "file": rel,
        "index": index,
        "records": int(attrs["num_records"]),
        "samples": int(attrs["num_samples"]),
        "rejected": len(attrs["rejections"]),
        "splits": dict(sorted(splits.items())),
        "sha256": shards.sha256_file(path),
    }
    return entry, attrs["rejections"], attrs


def assemble_manifest(entries: list[dict], rejections: list[dict], cfg_dict: dict, source_desc: dict,
                      n_shards: int, partition: dict | None) -> dict:
    counts: dict[str, int] = {}
    for r in rejections:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    splits: dict[str, int] = {}
    for e in entries:
        for k, v in e["splits"].items():
            splits[k] = splits.get(k, 0) + v
    return {
        "format": "occface-build-manifest",
        "manifest_version": 1,
        "schema_version": shards.SCHEMA_VERSION,
        "seed": cfg_dict["seed"],
        "config": cfg_dict,
        "source": source_desc,
        "versions": versions(),
        "num_shards": n_shards,
        "partition": partition,
        "shards": entries,
        "totals": {
            "records": sum(e["records"] for e in entries),
            "samples": sum(e["samples"] for e in entries),
            "rejected": len(rejections),
            "splits": dict(sorted(splits.items())),
        },
        "rejections": {"counts": dict(sorted(counts.items())), "log": rejections},
    }


def write_json_atomic(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_manifest(out_dir: str, source: Source, cfg: BuildConfig, n_shards: int, partition: Partition) -> dict:
    entries, rejections = [], []
    for j in range(n_shards):
        if partition.owns(j):
            e, rej, _ = shard_entry(out_dir, j)
            entries.append(e)
            rejections.extend(rej)
    part = None if partition.count == 1 else {"index": partition.index, "count": partition.count}
    manifest = assemble_manifest(entries, rejections, to_dict(cfg), source.describe(), n_shards, part)
    name = MANIFEST if part is None else part_manifest_name(partition.index, partition.count)
    write_json_atomic(os.path.join(out_dir, name), manifest)
    return manifest


def load_manifest(path: str) -> dict:
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST)
    if not os.path.exists(path):
        raise BuildError(f"no manifest at {path}: is the build finished (or are its partitions joined)?")
    with open(path) as fh:
        return json.load(fh)


def join(out_dir: str, part_dirs: list[str] | None = None) -> dict:
    """Join partition manifests (``manifest-part-*.json``) into ``manifest.json``.

    Part manifests are read from ``out_dir`` and from each of ``part_dirs``; shard files found in a
    part dir are hard-linked (or copied) into ``out_dir/shards``.  Checks that every partition is
    present, that all were built with one config and database, and that every shard exists with the
    hash its partition recorded.  The result equals the manifest of an unpartitioned build.
    """
    import shutil

    os.makedirs(out_dir, exist_ok=True)
    dirs = [out_dir] + [d for d in (part_dirs or []) if os.path.abspath(d) != os.path.abspath(out_dir)]
    parts = {}
    for d in dirs:
        for fn in sorted(os.listdir(d)):
            if fn.startswith("manifest-part-") and fn.endswith(".json"):
                with open(os.path.join(d, fn)) as fh:
                    m = json.load(fh)
                parts[m["partition"]["index"]] = (d, m)
    if not parts:
        raise BuildError(f"no manifest-part-*.json in {dirs}")
    first = next(iter(parts.values()))[1]
    count = first["partition"]["count"]
    missing = sorted(set(range(count)) - set(parts))
    if missing:
        raise BuildError(f"partitions missing: {missing} of {count}")
    for i, (d, m) in parts.items():
        if m["config"] != first["config"] or m["source"] != first["source"] or m["num_shards"] != first["num_shards"]:
            raise BuildError(f"partition {i} in {d} was built with another config or database")
    os.makedirs(os.path.join(out_dir, "shards"), exist_ok=True)
    entries = []
    for i in sorted(parts):
        d, m = parts[i]
        for e in m["shards"]:
            src, dst = os.path.join(d, e["file"]), os.path.join(out_dir, e["file"])
            if os.path.abspath(src) != os.path.abspath(dst) and not os.path.exists(dst):
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst + ".tmp")
                    os.replace(dst + ".tmp", dst)
            if shards.sha256_file(dst) != e["sha256"]:
                raise BuildError(f"{dst} does not match the hash in partition {i}'s manifest")
            entries.append(e)
    entries.sort(key=lambda e: e["index"])
    if [e["index"] for e in entries] != list(range(first["num_shards"])):
        raise BuildError("joined partitions do not cover every shard exactly once")
    rejections = []
    for e in entries:
        rejections.extend(shards.read_attrs(os.path.join(out_dir, e["file"]))["rejections"])
    manifest = assemble_manifest(entries, rejections, first["config"], first["source"], first["num_shards"], None)
    write_json_atomic(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def verify(out_dir: str) -> list[str]:
    """Re-hash every shard against the manifest.  Returns a list of problems (empty = verified)."""
    manifest = load_manifest(out_dir)
    problems = []
    listed = set()
    for e in manifest["shards"]:
        path = os.path.join(out_dir, e["file"])
        listed.add(os.path.basename(path))
        if not os.path.exists(path):
            problems.append(f"missing: {e['file']}")
        elif shards.sha256_file(path) != e["sha256"]:
            problems.append(f"hash mismatch: {e['file']}")
    shard_dir = os.path.join(out_dir, "shards")
    for fn in sorted(os.listdir(shard_dir)) if os.path.isdir(shard_dir) else []:
        if fn.endswith(".h5") and fn not in listed:
            problems.append(f"not in manifest: shards/{fn}")
    return problems
