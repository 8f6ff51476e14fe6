"""Resuming a build safely: which shards are complete or stale, where a build may go, failed writes.

* :func:`resume`: the owned shards still to build.  A shard on disk is kept only when it was
  built with this config and database *and* from these inputs (its ``inputs_sha256`` equals
  the planned one, occface.build.inputs); otherwise the build stops with what changed
  (:class:`~occface.errors.InputsChanged`), or with ``rebuild_changed`` deletes and rebuilds
  just the stale shards (and any shard beyond a plan that shrank).
* :func:`check_out_dir`: the output folder may not lie inside the database root.
* :func:`writes`: an ``OSError`` while writing into the build folder becomes one
  :class:`~occface.errors.WriteFailed` line (full disk, read-only, no permission) that says what
  to do; :func:`remove_temp_files` removes what failed or killed writers left.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re

from ..errors import BuildError, InputsChanged, WriteFailed
from ..format import manifest as manifest_fmt
from ..format import shards
from ..format.atomic import remove_stale, remove_stale_in
from . import inputs as inputs_mod
from .config import to_json


def _check_existing(path: str, cfg_json: str, source_json: str) -> dict:
    attrs = shards.read_attrs(path)
    if to_json(attrs.get("config")) != cfg_json or json.dumps(attrs.get("source"), sort_keys=True) != source_json:
        raise BuildError(
            f"{path} was built with another config or database; build into a fresh folder (or delete it) to rebuild"
        )
    return attrs


def resume(out_dir: str, bp, mine: list[int], partition, cfg_json: str, source_json: str,
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
    with writes(out_dir):
        for j in stale + beyond:
            os.unlink(os.path.join(shard_dir, shards.shard_name(j)))
    return sorted(todo + stale)


def check_out_dir(source: Source, out_dir: str) -> None:
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
def writes(out_dir: str):
    """Writes into the build folder: an OSError becomes one :class:`WriteFailed` line."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc, out_dir) from exc


def remove_temp_files(out_dir: str, partition, mine: list[int]) -> None:
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
