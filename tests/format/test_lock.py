"""One writer per build folder: build.lock refuses a second writer at once and is never stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from occface import build as B
from occface.build import BuildConfig
from occface.db import SampleSource
from occface.errors import BuildLocked
from occface.format.lock import LOCK, build_lock


def test_a_second_writer_is_refused_at_once(tmp_path):
    with build_lock(str(tmp_path)):
        t = time.perf_counter()
        with pytest.raises(BuildLocked, match=rf"another occface build \(pid {os.getpid()}\) is writing into"):
            with build_lock(str(tmp_path)):
                pass
        assert time.perf_counter() - t < 1.0
    with build_lock(str(tmp_path)):  # released on exit
        pass
    assert (tmp_path / LOCK).read_text() == f"{os.getpid()}\n"


def test_partitions_of_one_array_share_a_folder_but_nothing_else_does(tmp_path):
    d = str(tmp_path)
    with build_lock(d, (0, 2)), build_lock(d, (1, 2)):
        with pytest.raises(BuildLocked, match="partition 0 of 2"):
            with build_lock(d, (0, 2)):
                pass
        with pytest.raises(BuildLocked, match="partitions of a job array"):
            with build_lock(d):
                pass
    with build_lock(d):
        with pytest.raises(BuildLocked):
            with build_lock(d, (1, 2)):
                pass


def test_a_build_into_a_locked_folder_writes_nothing(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    with build_lock(str(out)):
        with pytest.raises(BuildLocked):
            B.build(SampleSource(lfw_faces=3), BuildConfig(), str(out), workers=1, progress=False, log=lambda s: None)
    assert sorted(os.listdir(out)) == [LOCK, "shards"] and not os.listdir(out / "shards")


def test_the_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    code = ("import sys, time; from occface.format.lock import build_lock\n"
            "with build_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(BuildLocked, match=rf"pid {proc.pid}"):
            with build_lock(str(tmp_path)):
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup runs
        proc.wait()
    assert (tmp_path / LOCK).exists()  # the file stays; the lock does not
    with build_lock(str(tmp_path)):
        pass
