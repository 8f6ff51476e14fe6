"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Everything occface writes that another process may read (shards, manifests, checkpoints,
mask sets, run records) goes through :func:`atomic_path`: the content is written under
``<path>.tmp<pid>``, flushed to disk, renamed over ``path`` and the rename made durable
by syncing the directory.  On any failure the temporary file is removed; a process
killed mid-write leaves one behind, which :func:`remove_stale` (called by the build on
resume) deletes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re


def tmp_name(path) -> str:
    """The temporary name ``path`` is written under by this process."""
    return f"{os.fspath(path)}.tmp{os.getpid()}"


def fsync_dir(path) -> None:
    """Make a rename inside ``path``'s directory durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(os.path.abspath(os.fspath(path))) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """``with atomic_path(p) as tmp: write(tmp)``: ``tmp`` replaces ``p`` when the block succeeds.

    The block writes the complete file to ``tmp`` (by name, e.g. ``h5py.File(tmp, "w")``);
    it is then fsynced and renamed over ``path``.  If the block raises, ``tmp`` is removed
    and ``path`` is untouched.
    """
    path = os.fspath(path)
    tmp = tmp_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(path)


def write_bytes_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def json_bytes(obj, indent: int | None = 1) -> bytes:
    """The on-disk form of occface's JSON files: sorted keys, ``indent``, a final newline."""
    return (json.dumps(obj, indent=indent, sort_keys=True) + "\n").encode("utf-8")


def write_json_atomic(path, obj, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON (:func:`json_bytes`) to ``path`` atomically."""
    write_bytes_atomic(path, json_bytes(obj, indent))


def remove_stale(path) -> list[str]:
    """Delete temporary files of ``path`` left by killed writers (``<path>.tmp*``); returns their names."""
    path = os.fspath(path)
    folder, base = os.path.split(path)
    gone = []
    for name in os.listdir(folder or "."):
        if name.startswith(base + ".tmp"):
            os.unlink(os.path.join(folder, name))
            gone.append(name)
    return gone


def write_bytes_renamed(path, data: bytes) -> None:
    """Write ``data`` under a temporary name and rename it to ``path``, without fsync.

    For exports of many small files (one PNG per image): a killed process never leaves a
    partial file under its final name, so a resume may trust every file it finds; durability
    against power loss comes from the index files, written last with :func:`write_bytes_atomic`.
    """
    path = os.fspath(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_TMP = re.compile(r"\.tmp\d+$")


def remove_stale_in(folder) -> list[str]:
    """Delete every temporary file (``<name>.tmp<pid>``) in ``folder``; returns their names.

    Only for a folder no other process is writing to (the build calls it under its exclusive lock)."""
    folder = os.fspath(folder)
    gone = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if _TMP.search(name) and os.path.isfile(os.path.join(folder, name)):
            os.unlink(os.path.join(folder, name))
            gone.append(name)
    return gone
