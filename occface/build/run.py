"""The build run: plan the shards, build them in worker processes, resume, write the manifest.

Per photo the work is :func:`occface.build.sample.process_record` (taken stage by stage over
runs of photos: :func:`occface.build.sample.process_records`).

Sharding: records are sorted by key and cut into consecutive groups of
``cfg.shard_size``; group j becomes ``shards/shard-j.h5``.  Membership
therefore depends only on the inputs and the config, never on the worker
count or partition, which is what makes builds byte-identical across
``--workers`` and lets ``--num-shards K --shard-index I`` (cluster job
arrays) build exactly the shards j with ``j % K == I``.  Worker processes build and write whole
shards, except the last ones (as many as there are workers), which they share in pieces of 8
records (:func:`pieces`) and this process writes, so a build of a few large shards still keeps
every worker busy to the end.

Resume: a shard that exists under its final name is complete (atomic
rename), so re-running the same command skips it.  Its stored config is
checked first, so a resume never mixes two configs, and so is its input
digest (occface.build.inputs): a shard whose photos were added, removed or
changed since it was written is stale, and the build stops with what changed
(or, with ``rebuild_changed``, rebuilds just the stale shards).

Integrity: one writer per output folder (occface.format.lock); the output
folder may not lie inside the database root (a later build of the root would
take the build's files for photos); a worker that fails stops the pool; a
failed write (full disk, read-only folder) is one :class:`WriteFailed` line,
and the temporary files it leaves are removed by the next run
(occface.build.resume).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass

from .. import __version__
from ..db.base import Record, Source
from ..db.walk import shown
from ..errors import BuildError
from ..faces import heatmaps
from ..format import manifest as manifest_fmt
from ..format import shards
from ..format.lock import build_lock
from ..runtime import available_cores
from . import inputs as inputs_mod
from .config import BuildConfig, to_dict, to_json
from .resume import check_out_dir, remove_temp_files, resume, writes
from .sample import BATCH_PHOTOS, process_records


# ----------------------------------------------------------------------------- per shard

def shard_samples(records: list[Record], source: Source, cfg: BuildConfig, tick=None) -> tuple[list, list]:
    """(samples, rejections) of consecutive records, in record order; ``tick(files, samples, rejected)`` per batch."""
    samples, rejections = [], []
    last_photo: dict = {}  # lives for this call only, so it never outlives the files it was read from
    for i in range(0, len(records), BATCH_PHOTOS):
        batch = records[i : i + BATCH_PHOTOS]
        got_n = rej_n = 0
        for got, rej in process_records(batch, source, cfg, last_photo):
            samples.extend(got)
            got_n += len(got)
            if rej:
                rejections.append(rej)
                rej_n += 1
        if tick:
            tick(len(batch), got_n, rej_n)
    return samples, rejections


def write_built_shard(index: int, records: list[Record], samples: list, rejections: list, source: Source,
                      cfg: BuildConfig, out_dir: str, lines: list[str] | None = None) -> tuple[dict, list]:
    """Write ``shards/shard-<index>.h5`` from the samples and rejections of all its records, in record order.

    Returns its manifest entry and rejection log (:func:`occface.format.manifest.written_entry`: the
    writer hashes the file it just wrote)."""
    attrs = {
        "config": to_json(cfg),
        "source": json.dumps(source.describe(), sort_keys=True),
        "shard_index": index,  # (not the shard count: a shard does not change when groups after it are added)
        "num_records": len(records),
        "first_key": records[0].key,
        "last_key": records[-1].key,
        "rejections": rejections,
        "occface_version": __version__,
    }
    if lines is not None:
        attrs["inputs_sha256"] = inputs_mod.digest(lines)
    specs = {s: heatmaps.channels(heatmaps.parse_spec(s)[0]) for s in cfg.heatmaps}
    path = os.path.join(out_dir, "shards", shards.shard_name(index))
    shards.write_shard(path, samples, attrs, source.fields(), cfg.hr_size, cfg.lr_size, specs, alpha=cfg.store_alpha,
                       inputs=lines)
    entry = manifest_fmt.written_entry(out_dir, index, len(records), [x["meta"]["split"] for x in samples],
                                       len(rejections), attrs.get("inputs_sha256"))
    return entry, rejections


def build_shard(index: int, records: list[Record], source: Source, cfg: BuildConfig, out_dir: str,
                tick=None, lines: list[str] | None = None) -> tuple[dict, list]:
    """Process and write one shard in this process; returns its manifest entry and rejection log."""
    samples, rejections = shard_samples(records, source, cfg, tick)
    return write_built_shard(index, records, samples, rejections, source, cfg, out_dir, lines)


#: records per piece of the last shards (see :func:`_run_pool`).  Whole shards alone leave the last
#: shard to one worker: with 256-record shards, 400 photos are two shards of 256 and 144, and two
#: workers given a shard each reach at most 400/256 = 1.56x.  Small enough to balance photos whose
#: cost varies 10x with size, large enough that the per-task transfer (~140 KB of arrays per
#: sample, written by the parent) stays a small fraction of the work.
POOL_PIECE = 8


def whole_shards(sizes: list[int], workers: int) -> int:
    """How many leading shards of a pool's to-do list (record counts ``sizes``, in order) go to the
    workers whole; the rest are cut into pieces.  Every shard cut into pieces is written by the parent
    after the workers' samples cross a pipe (~140 KB each), work that competes with the workers for
    the cores, so as few shards as balance the pool are cut: the most whole shards such that, with
    the whole shards handed out in order to the least-loaded worker (load counted in records), the
    pieces' records can fill every worker up to the busiest one.  At least the last shard, and at
    most the last ``workers`` shards (the earlier rule), are cut.  Four 256-record shards on two
    workers: three whole (512 and 256 records), the last one in pieces; 256 + 144 on two workers:
    both in pieces."""
    n = len(sizes)
    for n_whole in range(n - 1, max(0, n - workers) - 1, -1):
        loads = [0] * workers
        for size in sizes[:n_whole]:
            loads[loads.index(min(loads))] += size
        if sum(sizes[n_whole:]) >= sum(max(loads) - x for x in loads):
            return n_whole
    return max(0, n - workers)


def pieces(todo: list[int], groups: list[list[Record]], source: Source, size: int = POOL_PIECE):
    """``(shard, first, records)`` tasks covering the shards ``todo`` in order; a piece never splits
    the records of one photo (``Source.photo_key``), which are decoded and detected once."""
    out = []
    for j in todo:
        g = groups[j]
        a = 0
        while a < len(g):
            b = min(a + size, len(g))
            while b < len(g) and source.photo_key(g[b]) == source.photo_key(g[b - 1]):
                b += 1
            out.append((j, a, g[a:b]))
            a = b
    return out


_WORKER: dict = {}


def _worker_init(source, cfg, out_dir):
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe
    _WORKER.update(source=source, cfg=cfg, out_dir=out_dir)


def _worker_task(task):
    """``("shard", j, records, lines)``: build and write shard j here, return its manifest entry and
    rejection log; ``("piece", j, first, records)``: return the piece's samples and rejections to the
    parent."""
    w = _WORKER
    if task[0] == "shard":
        _, j, records, lines = task
        samples, rejections = shard_samples(records, w["source"], w["cfg"])
        entry, rejections = write_built_shard(j, records, samples, rejections, w["source"], w["cfg"], w["out_dir"],
                                              lines)
        return "shard", j, 0, len(records), entry, rejections
    _, j, first, records = task
    samples, rejections = shard_samples(records, w["source"], w["cfg"])
    return "piece", j, first, len(records), samples, rejections


# ----------------------------------------------------------------------------- planning

def plan(source: Source, cfg: BuildConfig) -> list[list[Record]]:
    """Records cut into shard groups, after checking keys and split disjointness."""
    return _groups(source.records(), cfg)


def _groups(records: list[Record], cfg: BuildConfig) -> list[list[Record]]:
    keys = [r.key for r in records]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise BuildError("adapter returned unsorted or duplicate record keys")
    for r in records:  # shards store keys as UTF-8 (the folder walk skips such names; other layouts refuse)
        try:
            r.key.encode("utf-8")
        except UnicodeEncodeError:
            raise BuildError(f"the database holds a file name that is not UTF-8: {shown(r.source)!r}; "
                             "rename it (or move it out of the root)") from None
    check_identity_disjoint(records)
    s = cfg.shard_size
    return [records[i : i + s] for i in range(0, len(records), s)]


@dataclass(frozen=True)
class BuildPlan:
    """The shard groups of a build and everything the manifest says about its inputs.

    lines / digests: the fingerprint lines and input digest of every group (occface.build.inputs);
    skipped / duplicates: what the source's walk did not take, and files with identical content.
    """

    groups: list
    lines: list
    digests: list
    skipped: list
    duplicates: list

    def accounting(self) -> dict:
        return {"skipped": self.skipped, "duplicates": self.duplicates,
                "inputs": {"fingerprint": inputs_mod.FINGERPRINT, "records": sum(len(g) for g in self.groups),
                           "sha256": inputs_mod.plan_digest(self.digests)}}


def plan_inputs(source: Source, cfg: BuildConfig) -> BuildPlan:
    """:func:`plan` plus the input fingerprint of every group and the source's skips and duplicates."""
    inv = source.inventory()
    groups = _groups(inv.records, cfg)
    lines = [[inputs_mod.record_line(r, source, inv.stats) for r in g] for g in groups]
    return BuildPlan(groups, lines, [inputs_mod.digest(x) for x in lines], list(inv.skipped),
                     [list(d) for d in inv.duplicates])


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


def _run_pool(todo, bp: BuildPlan, source, cfg, out_dir, workers, tick) -> dict[int, tuple[dict, list]]:
    """Build shards ``todo`` with ``workers`` processes.  The leading shards go to the workers whole
    (each writes its own); the last ones (:func:`whole_shards` says how many) are cut into pieces
    (:func:`pieces`) that any worker takes, and this process writes each of them once all its pieces
    are in, so no worker is left building a last shard alone.  The first failure stops the pool
    and is raised.  Returns shard index -> (manifest entry, rejection log) of every shard written."""
    _preload(cfg)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    n_whole = whole_shards([len(bp.groups[j]) for j in todo], workers)
    tasks = [("shard", j, bp.groups[j], bp.lines[j]) for j in todo[:n_whole]]
    tasks += [("piece", j, first, recs) for j, first, recs in pieces(todo[n_whole:], bp.groups, source)]
    left: dict[int, int] = {}
    for t in tasks[n_whole:]:
        left[t[1]] = left.get(t[1], 0) + 1
    got: dict[int, list] = {j: [] for j in left}
    written: dict[int, tuple[dict, list]] = {}
    with ctx.Pool(workers, _worker_init, (source, cfg, out_dir)) as pool:  # exit = terminate
        for kind, j, first, n_files, samples, rejections in pool.imap_unordered(_worker_task, tasks):
            if kind == "shard":  # written by the worker: samples is its manifest entry
                tick(n_files, samples["samples"], len(rejections))
                written[j] = samples, rejections
                continue
            tick(n_files, len(samples), len(rejections))
            got[j].append((first, samples, rejections))
            left[j] -= 1
            if not left[j]:
                parts = sorted(got.pop(j), key=lambda x: x[0])
                written[j] = write_built_shard(j, bp.groups[j], [x for p in parts for x in p[1]],
                                               [x for p in parts for x in p[2]], source, cfg, out_dir, bp.lines[j])
    return written


def build(source: Source, cfg: BuildConfig, out_dir: str, workers: int = 0, partition: Partition = Partition(),
          progress: bool | None = None, log=print, rebuild_changed: bool = False) -> dict:
    """Build (or resume) the shards this partition owns and write its manifest.  Returns the manifest.

    ``rebuild_changed``: when the photos changed since some shards were written, delete and rebuild
    just those shards (default: stop with :class:`~occface.errors.InputsChanged`, saying what changed).
    Raises :class:`~occface.errors.BuildLocked` when another build writes into ``out_dir`` and
    :class:`~occface.errors.WriteFailed` when ``out_dir`` cannot be written.
    """
    check_out_dir(source, out_dir)
    with writes(out_dir):
        os.makedirs(os.path.join(out_dir, "shards"), exist_ok=True)
    part_key = None if partition.count == 1 else (partition.index, partition.count)
    with contextlib.ExitStack() as held:
        with writes(out_dir):  # creating the lock file is the first write
            held.enter_context(build_lock(out_dir, part_key))
        return _build_locked(source, cfg, out_dir, workers, partition, progress, log, rebuild_changed)


def _build_locked(source, cfg, out_dir, workers, partition, progress, log, rebuild_changed) -> dict:
    t0 = time.perf_counter()
    bp = plan_inputs(source, cfg)
    groups = bp.groups
    n = len(groups)
    for w in source.warnings():
        log(f"WARNING: {w}")
    _log_accounting(bp, log)
    cfg_json = to_json(cfg)
    source_json = json.dumps(source.describe(), sort_keys=True)
    mine = [j for j in range(n) if partition.owns(j)]
    with writes(out_dir):
        remove_temp_files(out_dir, partition, mine)  # left by a writer that failed or was killed
    todo = resume(out_dir, bp, mine, partition, cfg_json, source_json, rebuild_changed, log)
    if todo:  # the old manifest no longer describes the folder while shards are (re)written
        name = manifest_fmt.MANIFEST if partition.count == 1 else \
            manifest_fmt.part_manifest_name(partition.index, partition.count)
        with writes(out_dir), contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(out_dir, name))
    n_records = sum(len(groups[j]) for j in todo)
    if len(mine) > len(todo):
        log(f"resuming: {len(mine) - len(todo)} of {len(mine)} shards already complete")
    # all cores this process may use (affinity / container limits), not all cores of the host
    workers = workers or available_cores()
    workers = max(1, min(workers, sum(len(groups[j]) for j in todo) // POOL_PIECE + 1)) if todo else 1
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=n_records, unit="file", desc="build", dynamic_ncols=True)
    found = rejected = 0
    written: dict[int, tuple[dict, list]] = {}

    def tick(f, s, r):
        nonlocal found, rejected
        found += s
        rejected += r
        if bar is not None:
            bar.update(f)
            bar.set_postfix(faces=found, rejected=rejected, refresh=False)

    try:
        with writes(out_dir):
            if workers == 1:
                import cv2

                threads = cv2.getNumThreads()
                cv2.setNumThreads(1)
                try:
                    for j in todo:
                        written[j] = build_shard(j, groups[j], source, cfg, out_dir, tick, lines=bp.lines[j])
                finally:
                    cv2.setNumThreads(threads)
            elif todo:
                written = _run_pool(todo, bp, source, cfg, out_dir, workers, tick)
    except BaseException:
        with contextlib.suppress(OSError):
            remove_temp_files(out_dir, partition, mine)  # of workers the failure stopped
        raise
    finally:
        if bar is not None:
            bar.close()
    part = None if partition.count == 1 else {"index": partition.index, "count": partition.count}
    with writes(out_dir):
        manifest = manifest_fmt.write_manifest(out_dir, to_dict(cfg), source.describe(), n, mine, part,
                                               bp.accounting(), written)
    tot = manifest["totals"]
    errors = manifest["rejections"]["counts"].get("processing_error", 0)
    if errors:
        first = next(r for r in manifest["rejections"]["log"] if r["reason"] == "processing_error")
        log(f"WARNING: {errors} photo(s) failed inside the pipeline (first: {first['path']}: {first['detail']}); "
            "they are listed in the manifest's rejection log")
    log(
        f"built {len(todo)} shard(s) in {time.perf_counter() - t0:.1f}s: {tot['records']} files, "
        f"{tot['samples']} samples, {tot['rejected']} rejected, {tot['skipped']} skipped -> {out_dir}"
    )
    return manifest


def _log_accounting(bp: BuildPlan, log) -> None:
    if bp.skipped:
        counts: dict[str, int] = {}
        for s in bp.skipped:
            counts[s["reason"]] = counts.get(s["reason"], 0) + 1
        what = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        log(f"skipped {len(bp.skipped)} entries that are not photos ({what}); the manifest's skipped log lists them")
    if bp.duplicates:
        copies = sum(1 for g in bp.groups for r in g if r.rejection and r.rejection[0] == "duplicate")
        fate = f"{copies} later copies are rejected as duplicate" if copies else "each group is one identity for the split"
        log(f"{sum(len(g) for g in bp.duplicates)} files in {len(bp.duplicates)} group(s) have byte-identical content "
            f"(e.g. {bp.duplicates[0][0]} = {bp.duplicates[0][1]}): {fate}; the manifest's duplicates lists them")


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


