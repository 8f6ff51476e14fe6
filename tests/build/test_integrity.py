"""A build never serves stale, mixed or corrupt data: changed inputs, concurrent builds, a full disk,
an output folder inside the root, duplicates and a per-photo split are each caught and said clearly."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from PIL import Image

from occface import build as B
from occface.build import BuildConfig
from occface.db import FolderSource, SampleSource
from occface.errors import BuildLocked, InputsChanged
from occface.format import manifest as M
from occface.format import shards
from occface.format.lock import build_lock
from tests.db._faces import lfw_face

QUIET = dict(progress=False, log=lambda s: None)
FACES = [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 14]  # lfw_subset faces dlib's HOG finds at 150 px
CLI = [sys.executable, "-m", "occface_cli.main"]


def shard_files(out) -> dict[str, tuple[int, int, str]]:
    """shard name -> (inode, mtime_ns, sha256) of every shard file."""
    d = os.path.join(out, "shards")
    res = {}
    for fn in sorted(os.listdir(d)):
        st = os.stat(os.path.join(d, fn))
        res[fn] = (st.st_ino, st.st_mtime_ns, shards.sha256_file(os.path.join(d, fn)))
    return res


def make_people(root, n=8):
    """n real faces of n // 2 people: ``pK/fI.png``."""
    for k, i in enumerate(FACES[:n]):
        (root / f"p{k // 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(lfw_face(i)).save(root / f"p{k // 2}" / f"f{k}.png")
    return root


def folder(root):
    return FolderSource(str(root), identity_from_parent=True, test_fraction=0.25)


CFG = BuildConfig(shard_size=2)


# ----------------------------------------------------------------------------- changed inputs

@pytest.mark.parametrize("change, counts, stale_shards", [
    ("modify", (0, 0, 1), ["shard-00002.h5"]),      # p2/f5.png replaced by another face
    ("touch", (0, 0, 1), ["shard-00002.h5"]),       # same bytes, new modification time
    ("remove_last", (0, 1, 0), ["shard-00003.h5"]),  # p3/f7.png deleted: the last group shrinks
    ("add_middle", (1, 0, 0), ["shard-00002.h5", "shard-00003.h5", "shard-00004.h5"]),  # groups after it shift
])
def test_changed_photos_stop_the_resume_then_rebuild_just_their_shards(tmp_path, change, counts, stale_shards):
    root = make_people(tmp_path / "photos")
    out = str(tmp_path / "b")
    B.build(folder(root), CFG, out, workers=1, **QUIET)
    before = shard_files(out)
    if change == "modify":
        Image.fromarray(lfw_face(FACES[9])).save(root / "p2" / "f5.png")
    elif change == "touch":
        st = os.stat(root / "p2" / "f5.png")
        os.utime(root / "p2" / "f5.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    elif change == "remove_last":
        os.unlink(root / "p3" / "f7.png")
    else:
        Image.fromarray(lfw_face(FACES[10])).save(root / "p2" / "f4b.png")
    with pytest.raises(InputsChanged) as err:
        B.build(folder(root), CFG, out, workers=1, **QUIET)
    added, removed, modified = counts
    msg = str(err.value)
    assert f"{added} added, {removed} removed, {modified} modified" in msg, msg
    path = {"modify": "p2/f5.png", "touch": "p2/f5.png", "remove_last": "p3/f7.png", "add_middle": "p2/f4b.png"}[change]
    assert path in msg and "\n" not in msg
    assert sorted(shards.shard_name(j) for j in err.value.stale) == [s for s in stale_shards if s in before]
    assert shard_files(out) == before  # refused: nothing touched
    logs = []
    m = B.build(folder(root), CFG, out, workers=1, progress=False, log=logs.append, rebuild_changed=True)
    assert any(s.startswith("rebuilding changed shards: ") for s in logs)
    after = shard_files(out)
    for fn in before:
        if fn in after and fn not in stale_shards:
            assert after[fn] == before[fn], f"{fn} was rebuilt although its photos did not change"
    for fn in stale_shards:
        assert fn not in before or fn not in after or after[fn][1] != before[fn][1]  # written again
    fresh = str(tmp_path / "fresh")
    assert m == B.build(folder(root), CFG, fresh, workers=1, **QUIET)  # the same manifest as a fresh build
    assert {k: v[2] for k, v in after.items()} == {k: v[2] for k, v in shard_files(fresh).items()}
    assert M.verify(out) == []


def test_the_cli_says_what_changed_in_one_line(tmp_path):
    root = make_people(tmp_path / "photos", 4)
    out = tmp_path / "b"
    cmd = CLI + ["build", "--db", "folder", "--root", str(root), "--identity-from-parent", "--out", str(out),
                 "--shard-size", "2", "--workers", "1", "--no-progress"]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    os.unlink(root / "p0" / "f1.png")
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: the photos changed since the shards in ") and "1 removed" in last
    assert "removed p0/f1.png" in last and last.endswith("(--rebuild-changed rebuilds just those shards)")
    res = subprocess.run(cmd + ["--rebuild-changed"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert subprocess.run(CLI + ["verify", str(out)], capture_output=True).returncode == 0


# ----------------------------------------------------------------------------- one writer

def test_a_second_concurrent_build_is_refused_and_nothing_mixes(tmp_path):
    out = tmp_path / "b"
    a = subprocess.Popen(CLI + ["build", "--db", "sample", "--out", str(out), "--workers", "1", "--seed", "0",
                                "--shard-size", "16", "--no-progress"], stderr=subprocess.PIPE, text=True)
    lock = out / "build.lock"
    deadline = time.time() + 60
    while time.time() < deadline and not (lock.exists() and lock.read_text().strip() == str(a.pid)):
        time.sleep(0.01)
    assert a.poll() is None, "the first build should still be running"
    t = time.perf_counter()
    with pytest.raises(BuildLocked, match=rf"another occface build \(pid {a.pid}\) is writing into"):
        B.build(SampleSource(), BuildConfig(shard_size=16, seed=1), str(out), workers=1, **QUIET)
    assert time.perf_counter() - t < 2.0  # at once, not after the other build
    assert a.wait(timeout=120) == 0, a.stderr.read()
    m = M.load_manifest(str(out))
    assert m["seed"] == 0 and M.verify(str(out)) == []
    assert {shards.read_attrs(str(out / e["file"]))["config"]["seed"] for e in m["shards"]} == {0}


def test_the_cli_refuses_a_locked_folder_in_one_line(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    with build_lock(str(out)):
        res = subprocess.run(CLI + ["build", "--db", "sample", "--out", str(out), "--no-progress"],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"Error: another occface build (pid {os.getpid()}) is writing into {out}: wait for it to finish, "
        "or build into another folder"]


# ----------------------------------------------------------------------------- where the build goes

def test_an_output_folder_inside_the_root_is_refused(tmp_path):
    root = make_people(tmp_path / "photos", 2)
    with pytest.raises(B.BuildError, match="is inside the database root"):
        B.build(folder(root), CFG, str(root / "builds" / "b"), workers=1, **QUIET)
    assert not (root / "builds").exists()  # refused before anything is written
    res = subprocess.run(CLI + ["build", "--db", "folder", "--root", str(root), "--out", str(root / "b"),
                                "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "inside the database root" in res.stderr


def test_a_build_folder_found_under_the_root_is_skipped_not_read(tmp_path):
    root = make_people(tmp_path / "photos", 2)
    other = tmp_path / "b0"
    B.build(folder(root), CFG, str(other), workers=1, **QUIET)
    Image.fromarray(lfw_face(FACES[3])).save(other / "contact_sheet.png")  # a face inside a build folder
    shutil.move(str(other), str(root / "old_build"))
    m = B.build(folder(root), CFG, str(tmp_path / "b1"), workers=1, **QUIET)
    assert m["skipped"]["log"] == [{"path": "old_build", "reason": "build_output"}]
    assert m["totals"]["records"] == 2


def test_an_unwritable_output_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way\n")
    res = subprocess.run(CLI + ["build", "--db", "sample", "--out", str(blocker / "b"), "--no-progress"],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"Error: cannot write the build into {blocker / 'b'}: a file is in the way of a folder ({blocker / 'b'}); "
        "choose an output folder you can write to"]


@contextlib.contextmanager
def small_tmpfs(where, size: str):
    where.mkdir()
    try:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    except FileNotFoundError:
        pytest.skip("no mount command")
    if res.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {res.stderr.decode().strip()}")
    try:
        yield lambda new: subprocess.run(["mount", "-o", f"remount,size={new}", str(where)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def temp_files(out) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs if ".tmp" in f)


def test_a_full_disk_is_one_line_leaves_no_temp_files_and_resumes_to_identical_bytes(tmp_path):
    ref = str(tmp_path / "ref")
    cfg = BuildConfig(shard_size=16)
    B.build(SampleSource(), cfg, ref, workers=1, **QUIET)
    with small_tmpfs(tmp_path / "disk", "5m") as resize:
        out = tmp_path / "disk" / "b"
        cmd = CLI + ["build", "--db", "sample", "--out", str(out), "--workers", "2", "--shard-size", "16",
                     "--no-progress"]
        # 1. the shards do not fit: the pool stops at the first failed write
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith(f"Error: cannot write the build into {out}: the disk is full"), last
        assert last.endswith("free some space, then run the same command again: it resumes from the complete shards")
        done = [f for f in os.listdir(out / "shards") if f.endswith(".h5")]
        assert len(done) < 7 and temp_files(out) == [] and not (out / "manifest.json").exists()
        # 2. with room again: resumes to the bytes of a build that never failed
        resize("64m")
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert shard_files(out).keys() == shard_files(ref).keys()
        assert {k: v[2] for k, v in shard_files(out).items()} == {k: v[2] for k, v in shard_files(ref).items()}
        # 3. the disk fills up again just before the manifest is written
        os.unlink(out / "manifest.json")
        with open(tmp_path / "disk" / "filler", "wb") as fh:
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * (1 << 16))
                    fh.flush()
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert "the disk is full" in res.stderr.strip().splitlines()[-1]
        assert temp_files(out) == [] and not (out / "manifest.json").exists()
        os.unlink(tmp_path / "disk" / "filler")
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0 and temp_files(out) == []
        with open(out / "manifest.json") as a, open(os.path.join(ref, "manifest.json")) as b:
            assert json.load(a)["shards"] == json.load(b)["shards"]
        assert M.verify(str(out)) == []


# ----------------------------------------------------------------------------- splits

def test_byte_identical_photos_under_two_names_share_a_split(tmp_path):
    root = make_people(tmp_path / "photos", 12)  # 6 people
    shutil.copyfile(root / "p0" / "f0.png", root / "p5" / "renamed.png")  # a copy filed under another person
    shutil.copyfile(root / "p3" / "f6.png", root / "p3" / "f6_again.png")
    for frac in (0.17, 0.34, 0.5, 0.67):
        m = B.build(FolderSource(str(root), identity_from_parent=True, test_fraction=frac), CFG,
                    str(tmp_path / f"b{frac}"), workers=1, **QUIET)
        split = {}
        for e in m["shards"]:
            meta = shards.read_meta(str(tmp_path / f"b{frac}" / e["file"]))
            split.update(zip(meta["source"], meta["split"]))
        assert split["p0/f0.png"] == split["p5/renamed.png"]
        assert split["p5/f10.png"] == split["p0/f1.png"]  # the identities the copy joined stay together
        assert m["duplicates"] == {"groups": [["p0/f0.png", "p5/renamed.png"], ["p3/f6.png", "p3/f6_again.png"]],
                                   "files": 4}
    m = B.build(FolderSource(str(root), identity_from_parent=True, duplicates="reject"), CFG, str(tmp_path / "r"),
                workers=1, **QUIET)
    rej = {r["path"]: (r["reason"], r["detail"]) for r in m["rejections"]["log"]}
    assert rej["p5/renamed.png"] == ("duplicate", "same bytes as p0/f0.png")
    assert rej["p3/f6_again.png"] == ("duplicate", "same bytes as p3/f6.png")


def test_a_folder_build_without_identities_warns_that_the_split_is_per_photo(tmp_path):
    root = make_people(tmp_path / "photos", 2)
    logs = []
    B.build(FolderSource(str(root)), CFG, str(tmp_path / "b"), workers=1, progress=False, log=logs.append)
    assert [s for s in logs if s.startswith("WARNING")] == [
        f"WARNING: folder {root}: no identities (identity from the parent folder is off), so the split is per "
        "photo and one person's photos may land in both train and test"]
    logs = []
    B.build(folder(root), CFG, str(tmp_path / "b2"), workers=1, progress=False, log=logs.append)
    assert not [s for s in logs if s.startswith("WARNING")]
    res = subprocess.run(CLI + ["build", "--db", "folder", "--root", str(root), "--out", str(tmp_path / "b3"),
                                "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 0 and "split is per photo" in res.stderr


def test_a_name_that_is_not_utf8_is_skipped_shown_escaped_and_the_build_goes_on(tmp_path):
    root = make_people(tmp_path / "photos", 2)
    bad = os.path.join(os.fsencode(root), b"p0", b"caf\xe9.png")
    Image.fromarray(lfw_face(FACES[4])).save(bad, format="PNG")
    m = B.build(folder(root), CFG, str(tmp_path / "b"), workers=1, **QUIET)
    assert m["skipped"]["log"] == [{"path": "p0/caf\\xe9.png", "reason": "undecodable_name"}]
    assert m["totals"]["samples"] == 2 and M.verify(str(tmp_path / "b")) == []


def test_shards_without_a_record_of_their_photos_are_not_trusted(tmp_path):
    import h5py

    root = make_people(tmp_path / "photos", 4)
    out = str(tmp_path / "b")
    B.build(folder(root), CFG, out, workers=1, **QUIET)
    ref = shard_files(out)
    with h5py.File(os.path.join(out, "shards", "shard-00001.h5"), "a") as f:  # as an older occface wrote it
        del f.attrs["inputs_sha256"]
    with pytest.raises(InputsChanged, match="1 shard.s. in .* were written without a record of their photos"):
        B.build(folder(root), CFG, out, workers=1, **QUIET)
    B.build(folder(root), CFG, out, workers=1, rebuild_changed=True, **QUIET)
    assert {k: v[2] for k, v in shard_files(out).items()} == {k: v[2] for k, v in ref.items()}


def test_an_adapter_record_whose_name_is_not_utf8_is_one_clear_error():
    from occface.db.base import Record

    class OneBadName(SampleSource):  # a layout whose own walk kept a non-UTF-8 name
        def records(self):
            return super().records()[:1] + [Record(key="sample:z\udce9.png", source="z\udce9.png")]

    with pytest.raises(B.BuildError, match=r"not UTF-8: 'z\\\\xe9.png'; rename it"):
        B.plan(OneBadName(), CFG)
