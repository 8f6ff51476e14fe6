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
checked first, so a resume never mixes two configs, and so is its input
digest (occface.build.inputs): a shard whose photos were added, removed or
changed since it was written is stale, and the build stops with what changed
(or, with ``rebuild_changed``, rebuilds just the stale shards).

Integrity: one writer per output folder (occface.build.lock); the output
folder may not lie inside the database root (a later build of the root would
take the build's files for photos); a worker that fails stops the pool; a
failed write (full disk, read-only folder) is one :class:`WriteFailed` line,
and the temporary files it leaves are removed by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing as mp
import os
import queue as queue_mod
import re
import sys
import time
from dataclasses import dataclass

from .. import __version__
from ..db.base import Record, Source
from ..errors import BuildError, InputsChanged, WriteFailed
from ..faces import heatmaps
from ..format import manifest as manifest_fmt
from ..format import shards
from ..format.atomic import remove_stale, remove_stale_in
from . import inputs as inputs_mod
from .config import BuildConfig, to_dict, to_json
from ..format.lock import build_lock
from .sample import process_record


# ----------------------------------------------------------------------------- per shard

def build_shard(index: int, records: list[Record], source: Source, cfg: BuildConfig, out_dir: str,
                n_shards: int, tick=None, lines: list[str] | None = None) -> dict:
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
    shards.write_shard(path, samples, attrs, source.fields(), cfg.hr_size, cfg.lr_size, specs, inputs=lines)
    return {"index": index, "samples": len(samples), "rejected": len(rejections)}


_WORKER: dict = {}


def _worker_init(source, cfg, out_dir, n_shards, queue):
    import cv2

    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe
    _WORKER.update(source=source, cfg=cfg, out_dir=out_dir, n_shards=n_shards, queue=queue)


def _worker_task(task):
    index, records, lines = task
    w = _WORKER
    q = w["queue"]
    return build_shard(index, records, w["source"], w["cfg"], w["out_dir"], w["n_shards"],
                       tick=lambda f, s, r: q.put((f, s, r)), lines=lines)


# ----------------------------------------------------------------------------- planning

def plan(source: Source, cfg: BuildConfig) -> list[list[Record]]:
    """Records cut into shard groups, after checking keys and split disjointness."""
    return _groups(source.records(), cfg)


def _groups(records: list[Record], cfg: BuildConfig) -> list[list[Record]]:
    keys = [r.key for r in records]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise BuildError("adapter returned unsorted or duplicate record keys")
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


def _check_existing(path: str, cfg_json: str, source_json: str) -> dict:
    attrs = shards.read_attrs(path)
    if to_json(attrs.get("config")) != cfg_json or json.dumps(attrs.get("source"), sort_keys=True) != source_json:
        raise BuildError(
            f"{path} was built with another config or database; build into a fresh folder (or delete it) to rebuild"
        )
    return attrs


def _resume(out_dir: str, bp: BuildPlan, mine: list[int], partition: Partition, cfg_json: str, source_json: str,
            rebuild_changed: bool, log) -> list[int]:
    """The owned shards still to build.  Stale shards (built from other inputs) raise
    :class:`InputsChanged`, or with ``rebuild_changed`` are deleted and rebuilt."""
    shard_dir = os.path.join(out_dir, "shards")
    todo, stale, old, complete_last = [], [], {}, []
    for j in mine:
        path = os.path.join(shard_dir, shards.shard_name(j))
        if not os.path.exists(path):
            todo.append(j)
            continue
        attrs = _check_existing(path, cfg_json, source_json)
        if attrs.get("inputs_sha256") != bp.digests[j]:
            stale.append(j)
            old[j] = (shards.read_inputs(path), attrs)
        else:
            complete_last.append(attrs.get("last_key"))
    n = len(bp.groups)
    beyond = []
    for fn in sorted(os.listdir(shard_dir)):
        m = re.fullmatch(r"shard-(\d{5,})\.h5", fn)
        if m and int(m.group(1)) >= n and partition.owns(int(m.group(1))):
            beyond.append(int(m.group(1)))
            path = os.path.join(shard_dir, fn)
            old[int(m.group(1))] = (shards.read_inputs(path), shards.read_attrs(path))
    if not stale and not beyond:
        return todo
    last_keys = [a.get("last_key") for _, a in old.values()] + complete_last
    ch = inputs_mod.changes(old, bp.lines, stale, max(k for k in last_keys if k is not None))
    line = inputs_mod.summary(ch, len(stale) + len(beyond), len(mine), out_dir)
    unknown = sum(1 for _, a in old.values() if not a.get("inputs_sha256"))
    if unknown:  # written before shards recorded their inputs: nothing to compare
        line = (f"{unknown} shard(s) in {out_dir} were written without a record of their photos (an older "
                f"occface), so they cannot be trusted to match the photos now; "
                f"{len(stale) + len(beyond)} of {len(mine)} shard(s) are stale")
    if not rebuild_changed:
        raise InputsChanged(f"{line}: rebuild the stale shards, or build into an empty folder",
                            stale + beyond, ch["added"], ch["removed"], ch["modified"])
    log(f"rebuilding changed shards: {line}")
    with _writes(out_dir):
        for j in stale + beyond:
            os.unlink(os.path.join(shard_dir, shards.shard_name(j)))
    return sorted(todo + stale)


def _check_out_dir(source: Source, out_dir: str) -> None:
    """Refuse an output folder inside the database root: a later build of that root would take the
    build's own files (shards, contact sheets) for photos."""
    root = getattr(source, "root", None)
    if not root:
        return
    r, o = os.path.realpath(root), os.path.realpath(out_dir)
    if o == r or o.startswith(r.rstrip(os.sep) + os.sep):
        raise BuildError(f"the output folder {out_dir} is inside the database root {root}: a later build of it "
                         "would read this build's files as photos; choose an output folder outside the root")


_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)|\[Errno (\d+)\]")
_WHAT = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
         errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
         errno.EPERM: "permission denied", errno.ENOTDIR: "a file is in the way of a folder",
         errno.EEXIST: "a file is in the way of a folder", errno.EIO: "an input/output error"}


def write_error(exc: OSError, out_dir: str) -> WriteFailed:
    """One line for a failed write into a build folder: what happened, where, and what to do."""
    code = exc.errno
    if code is None:  # h5py puts the errno into its message text
        m = _ERRNO_IN_TEXT.search(str(exc))
        code = int(m.group(1) or m.group(2)) if m else None
    what = _WHAT.get(code) or (exc.strerror or str(exc).split("(")[0].strip() or type(exc).__name__)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    if code in (errno.ENOSPC, errno.EDQUOT):
        todo = "free some space, then run the same command again: it resumes from the complete shards"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST):
        todo = "choose an output folder you can write to"
    else:
        todo = "check the folder, then run the same command again: it resumes from the complete shards"
    return WriteFailed(f"cannot write the build into {out_dir}: {what}{where}; {todo}")


@contextlib.contextmanager
def _writes(out_dir: str):
    """Writes into the build folder: an OSError becomes one :class:`WriteFailed` line."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc, out_dir) from exc


def _remove_temp_files(out_dir: str, partition: Partition, mine: list[int]) -> None:
    """Temporary files of writers that failed or were killed.  A whole build (exclusive lock) clears
    the folder; a partition only its own shards and part manifest (others may be writing)."""
    shard_dir = os.path.join(out_dir, "shards")
    if partition.count == 1:
        remove_stale_in(out_dir)
        remove_stale_in(shard_dir)
        return
    for j in mine:
        remove_stale(os.path.join(shard_dir, shards.shard_name(j)))
    remove_stale(os.path.join(out_dir, manifest_fmt.part_manifest_name(partition.index, partition.count)))


def _run_pool(todo, bp: BuildPlan, source, cfg, out_dir, n, workers, tick) -> None:
    """Build shards ``todo`` in ``workers`` processes; the first failure stops the pool and is raised."""
    _preload(cfg)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    q = ctx.Queue()
    failed: list[BaseException] = []
    with ctx.Pool(workers, _worker_init, (source, cfg, out_dir, n, q)) as pool:  # exit = terminate
        pending = [pool.apply_async(_worker_task, ((j, bp.groups[j], bp.lines[j]),), error_callback=failed.append)
                   for j in todo]
        while not failed:
            try:
                tick(*q.get(timeout=0.2))
            except queue_mod.Empty:
                if all(p.ready() for p in pending):
                    break
        if failed:
            raise failed[0]
        while not q.empty():
            tick(*q.get())
        for p in pending:
            p.get()


def build(source: Source, cfg: BuildConfig, out_dir: str, workers: int = 0, partition: Partition = Partition(),
          progress: bool | None = None, log=print, rebuild_changed: bool = False) -> dict:
    """Build (or resume) the shards this partition owns and write its manifest.  Returns the manifest.

    ``rebuild_changed``: when the photos changed since some shards were written, delete and rebuild
    just those shards (default: stop with :class:`~occface.errors.InputsChanged`, saying what changed).
    Raises :class:`~occface.errors.BuildLocked` when another build writes into ``out_dir`` and
    :class:`~occface.errors.WriteFailed` when ``out_dir`` cannot be written.
    """
    _check_out_dir(source, out_dir)
    with _writes(out_dir):
        os.makedirs(os.path.join(out_dir, "shards"), exist_ok=True)
    part_key = None if partition.count == 1 else (partition.index, partition.count)
    with contextlib.ExitStack() as held:
        with _writes(out_dir):  # creating the lock file is the first write
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
    with _writes(out_dir):
        _remove_temp_files(out_dir, partition, mine)  # left by a writer that failed or was killed
    todo = _resume(out_dir, bp, mine, partition, cfg_json, source_json, rebuild_changed, log)
    if todo:  # the old manifest no longer describes the folder while shards are (re)written
        name = manifest_fmt.MANIFEST if partition.count == 1 else \
            manifest_fmt.part_manifest_name(partition.index, partition.count)
        with _writes(out_dir), contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(out_dir, name))
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

    try:
        with _writes(out_dir):
            if workers == 1:
                import cv2

                threads = cv2.getNumThreads()
                cv2.setNumThreads(1)
                try:
                    for j in todo:
                        build_shard(j, groups[j], source, cfg, out_dir, n, tick, lines=bp.lines[j])
                finally:
                    cv2.setNumThreads(threads)
            elif todo:
                _run_pool(todo, bp, source, cfg, out_dir, n, workers, tick)
    except BaseException:
        with contextlib.suppress(OSError):
            _remove_temp_files(out_dir, partition, mine)  # of workers the failure stopped
        raise
    finally:
        if bar is not None:
            bar.close()
    part = None if partition.count == 1 else {"index": partition.index, "count": partition.count}
    with _writes(out_dir):
        manifest = manifest_fmt.write_manifest(out_dir, to_dict(cfg), source.describe(), n, mine, part,
                                               bp.accounting())
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
    """Load dlib models before forking so workers share them instead of each reading 100 MB."""
    from ..faces import dlib_models

    dlib_models.hog_detector()
    dlib_models.shape_predictor68()
    if cfg.detect.detector != "hog":
        dlib_models.cnn_detector()


