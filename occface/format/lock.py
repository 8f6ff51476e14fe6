"""One writer per build folder: an advisory lock on ``BUILD/build.lock`` (builds and ``join``).

A whole build (and ``join``) holds an exclusive ``flock`` on ``build.lock`` while it runs; a
partition of a job array holds it shared, plus an exclusive lock on
``build-part-IIII-of-KKKK.lock``, so the partitions of one array may share a folder while a
second whole build, or a second copy of one partition, is refused at once.  The kernel drops
the lock when the holding process exits in any way (``kill -9`` included), so a lock is never
stale; forked workers inherit it, so it is held until the last of them has gone.  The files
stay in the folder (removing a lock file would let two processes lock two different files);
the pid of the last exclusive holder is written into it for the error message.
"""

from __future__ import annotations

import contextlib
import os

from ..errors import BuildLocked

LOCK = "build.lock"


def part_lock_name(index: int, count: int) -> str:
    return f"build-part-{index:04d}-of-{count:04d}.lock"


def _holder(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            pid = fh.read().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _take(path: str, exclusive: bool, what: str):
    import fcntl

    fh = open(path, "a+", encoding="ascii")
    try:
        fcntl.flock(fh.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(path)
        if exclusive:
            try:  # held shared: partitions of a job array, whose pids are in their own lock files
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                holder = " (partitions of a job array)"
            except BlockingIOError:
                pass
        fh.close()
        raise BuildLocked(f"another occface build{holder} is writing {what}: wait for it to finish, "
                          "or build into another folder") from None
    except OSError:
        fh.close()  # a file system without locks: nothing to hold
        return None
    if exclusive:
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
    return fh


@contextlib.contextmanager
def build_lock(out_dir: str, partition: tuple[int, int] | None = None):
    """Hold the build lock of ``out_dir`` (a whole build, or partition ``(index, count)``) for the block.

    Raises :class:`~occface.errors.BuildLocked` at once when another process holds it.
    """
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - no flock on this platform
        yield
        return
    held = []
    try:
        held.append(_take(os.path.join(out_dir, LOCK), partition is None, f"into {out_dir}"))
        if partition is not None:
            i, k = partition
            held.append(_take(os.path.join(out_dir, part_lock_name(i, k)), True,
                              f"partition {i} of {k} into {out_dir}"))
        yield
    finally:
        for fh in held:
            if fh is not None:
                fh.close()
