"""The build run: plan the shards, build them in worker processes, resume, write the manifest.

Per photo the work is :func:`occface.build.sample.process_record`.

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

from .. import __version__
from ..db.base import Record, Source
from ..errors import BuildError
from ..faces import heatmaps
from ..format import manifest as manifest_fmt
from ..format import shards
from ..format.atomic import remove_stale
from ..runtime import available_cores
from .config import BuildConfig, to_dict, to_json
from .sample import process_record


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
    shards.write_shard(path, samples, attrs, source.fields(), cfg.hr_size, cfg.lr_size, specs, alpha=cfg.store_alpha)
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
            raise ValueError(f"a partition needs 0 <= index < count, got index {self.index} of {self.count}")

    def owns(self, shard: int) -> bool:
        return shard % self.count == self.index


def _check_existing(path: str, cfg_json: str, source_json: str) -> None:
    attrs = shards.read_attrs(path)
    if to_json(attrs.get("config")) != cfg_json or json.dumps(attrs.get("source"), sort_keys=True) != source_json:
        raise BuildError(
            f"{path} was built with another config or database; build into a fresh folder (or delete it) to rebuild"
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
        remove_stale(path)  # left by a writer that was killed
        if os.path.exists(path):
            _check_existing(path, cfg_json, source_json)
        else:
            todo.append(j)
    n_records = sum(len(groups[j]) for j in todo)
    if len(mine) > len(todo):
        log(f"resuming: {len(mine) - len(todo)} of {len(mine)} shards already complete")
    # all cores this process may use (affinity / container limits), not all cores of the host
    workers = workers or available_cores()
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
    part = None if partition.count == 1 else {"index": partition.index, "count": partition.count}
    manifest = manifest_fmt.write_manifest(out_dir, to_dict(cfg), source.describe(), n, mine, part)
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
    """Load dlib models (and albumentations) before forking so workers share them instead of each loading them."""
    from ..faces import dlib_models

    dlib_models.hog_detector()
    dlib_models.shape_predictor68()
    if cfg.detect.detector != "hog":
        dlib_models.cnn_detector()
    if not cfg.degrade.is_none:  # albumentations takes seconds to import: once, before the fork
        from ..degrade.steps import albumentations_functional

        albumentations_functional()


