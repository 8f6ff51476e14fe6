"""The manifest describes the build exactly: verify catches every kind of edit, and joins refuse mixed inputs."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from occface import build as B
from occface.build import BuildConfig
from occface.db import FolderSource
from occface.errors import FormatError
from occface.format import manifest as M
from tests.db._faces import lfw_face

QUIET = dict(progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Six real faces of three people, a photo without a face, a copy of one face and an annotation file."""
    root = tmp_path_factory.mktemp("photos")
    for i in range(6):
        (root / f"p{i // 2}").mkdir(exist_ok=True)
        Image.fromarray(lfw_face(i)).save(root / f"p{i // 2}" / f"f{i}.png")
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(root / "p0" / "wall.png")
    shutil.copyfile(root / "p0" / "f0.png", root / "p2" / "copy_of_f0.png")
    (root / "p1" / "f2.pts").write_text("version: 1\n")
    return root


@pytest.fixture(scope="module")
def built(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "b"
    src = FolderSource(str(photos), identity_from_parent=True, test_fraction=0.34)
    B.build(src, BuildConfig(shard_size=2), str(out), workers=1, **QUIET)
    return out


def _edit(out, fn, reseal=False):
    with open(out / "manifest.json") as fh:
        m = json.load(fh)
    fn(m)
    if reseal:  # a forger who also recomputes the content digest
        m["content_sha256"] = M.content_sha256(m)
    with open(out / "manifest.json", "w") as fh:
        json.dump(m, fh, indent=1, sort_keys=True)


def _bump(d, k, by=1):
    d[k] = d[k] + by


def _flip_split(m):
    e = next(e for e in m["shards"] if e["samples"])
    e["splits"] = {("test" if "train" in e["splits"] else "train"): e["samples"]}


EDITS = {
    "totals.samples": lambda m: _bump(m["totals"], "samples"),
    "totals.records": lambda m: _bump(m["totals"], "records", -1),
    "totals.rejected": lambda m: _bump(m["totals"], "rejected"),
    "totals.skipped": lambda m: _bump(m["totals"], "skipped"),
    "totals.splits": lambda m: _bump(m["totals"]["splits"], "train"),
    "shard.samples": lambda m: _bump(m["shards"][1], "samples", -1),
    "shard.records": lambda m: _bump(m["shards"][1], "records"),
    "shard.rejected": lambda m: _bump(m["shards"][0], "rejected"),
    "shard.splits": _flip_split,
    "shard.sha256": lambda m: m["shards"][2].__setitem__("sha256", "0" * 64),
    "shard.bytes": lambda m: _bump(m["shards"][2], "bytes"),
    "shard.file": lambda m: m["shards"][0].__setitem__("file", m["shards"][1]["file"]),
    "shard.inputs_sha256": lambda m: m["shards"][0].__setitem__("inputs_sha256", "1" * 64),
    "shard.removed": lambda m: m["shards"].pop(),
    "config.seed": lambda m: _bump(m["config"], "seed"),
    "seed": lambda m: _bump(m, "seed"),
    "config.heatmap_sigma": lambda m: m["config"].__setitem__("heatmap_sigma", 2.0),
    "source.root": lambda m: m["source"].__setitem__("root", "/elsewhere"),
    "num_shards": lambda m: _bump(m, "num_shards"),
    "rejections.log": lambda m: m["rejections"]["log"].pop(),
    "rejections.counts": lambda m: m["rejections"]["counts"].__setitem__("no_face", 7),
    "skipped.log": lambda m: m["skipped"]["log"].pop(),
    "duplicates.groups": lambda m: m["duplicates"]["groups"].pop(),
    "inputs.sha256": lambda m: m["inputs"].__setitem__("sha256", "2" * 64),
    "inputs.records": lambda m: _bump(m["inputs"], "records"),
    "versions": lambda m: m["versions"].__setitem__("dlib", "0.0"),
}
# Edits that contradict the shards or the manifest's own sums, so they are caught even when the
# editor also recomputes content_sha256 (the others are caught by the digest alone).
CROSS_CHECKED = set(EDITS) - {"versions"}


def test_the_build_verifies_and_accounts_for_the_folder(built):
    assert M.verify(str(built)) == [] and M.verify(str(built), quick=True) == []
    m = M.load_manifest(str(built))
    assert m["skipped"]["log"] == [{"path": "p1/f2.pts", "reason": "not_an_image_extension"}]
    assert m["duplicates"] == {"groups": [["p0/f0.png", "p2/copy_of_f0.png"]], "files": 2}
    assert m["totals"]["records"] == 8 and m["inputs"]["records"] == 8
    assert all(e["bytes"] == os.path.getsize(built / e["file"]) for e in m["shards"])


@pytest.mark.parametrize("name", sorted(EDITS))
@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_every_manifest_edit_is_caught(built, tmp_path, name, quick):
    copy_ = tmp_path / "b"
    shutil.copytree(built, copy_)
    _edit(copy_, EDITS[name])
    problems = M.verify(str(copy_), quick=quick)
    assert any("content_sha256" in p for p in problems), problems


@pytest.mark.parametrize("name", sorted(CROSS_CHECKED))
def test_edits_are_caught_even_with_a_recomputed_digest(built, tmp_path, name):
    copy_ = tmp_path / "b"
    shutil.copytree(built, copy_)
    _edit(copy_, EDITS[name], reseal=True)
    problems = M.verify(str(copy_))
    assert problems and not any("content_sha256" in p for p in problems), (name, problems)


def test_the_rejection_log_is_re_read_from_the_shards(built, tmp_path):
    copy_ = tmp_path / "b"
    shutil.copytree(built, copy_)

    def reword(m):
        m["rejections"]["log"][0]["detail"] = "nothing to see"

    _edit(copy_, reword, reseal=True)
    assert M.verify(str(copy_), quick=True) == []  # quick reads no rejection log
    assert M.verify(str(copy_)) == ["rejection log mismatch: the manifest's log is not the shards' rejections"]


def test_a_damaged_manifest_is_one_clear_error(built, tmp_path):
    copy_ = tmp_path / "b"
    shutil.copytree(built, copy_)
    (copy_ / "manifest.json").write_text('{"format": "occface-build-manifest", "shards": [')
    with pytest.raises(FormatError, match="not valid JSON"):
        M.verify(str(copy_))
    (copy_ / "manifest.json").write_text(json.dumps({"format": "occface-build-manifest", "manifest_version": 2}))
    with pytest.raises(FormatError, match="damaged: field 'config'"):
        M.verify(str(copy_))
    res = subprocess.run([sys.executable, "-m", "occface_cli.main", "verify", str(copy_)], capture_output=True,
                         text=True)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [f"Error: {copy_ / 'manifest.json'} is damaged: field 'config' is "
                                               "missing or not a dict"]


def test_a_shard_entry_pointing_outside_the_build_is_refused(built, tmp_path):
    copy_ = tmp_path / "b"
    shutil.copytree(built, copy_)
    _edit(copy_, lambda m: m["shards"][0].__setitem__("file", "../../etc/passwd"), reseal=True)
    with pytest.raises(FormatError, match="points outside the build"):
        M.verify(str(copy_))


def test_a_join_of_partitions_planned_from_different_photos_is_refused(photos, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(photos, root)
    cfg = BuildConfig(shard_size=2)
    src = lambda: FolderSource(str(root), identity_from_parent=True, test_fraction=0.34)  # noqa: E731
    B.build(src(), cfg, str(tmp_path / "p0"), workers=1, partition=B.Partition(2, 0), **QUIET)
    Image.fromarray(lfw_face(20)).save(root / "p1" / "f2.png")  # a photo replaced between the two jobs
    B.build(src(), cfg, str(tmp_path / "p1"), workers=1, partition=B.Partition(2, 1), **QUIET)
    with pytest.raises(B.BuildError, match="planned from other photos"):
        M.join(str(tmp_path / "joined"), [str(tmp_path / "p0"), str(tmp_path / "p1")])


def test_the_joined_manifest_equals_the_one_run_manifest(built, photos, tmp_path):
    cfg = BuildConfig(shard_size=2)
    for i in range(3):
        src = FolderSource(str(photos), identity_from_parent=True, test_fraction=0.34)
        B.build(src, cfg, str(tmp_path / f"p{i}"), workers=1, partition=B.Partition(3, i), **QUIET)
    joined = M.join(str(tmp_path / "j"), [str(tmp_path / f"p{i}") for i in range(3)])
    assert joined == M.load_manifest(str(built))
    assert M.verify(str(tmp_path / "j")) == []
    one = copy.deepcopy(joined)
    assert one["content_sha256"] == M.content_sha256(one)
