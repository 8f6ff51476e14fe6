"""The loader refuses a build that does not match its manifest, naming the shard."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from PIL import Image

from occface import build as B
from occface import data as D
from occface.build import BuildConfig
from occface.db import FolderSource
from occface.format import manifest as M
from tests.db._faces import lfw_face


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for k, i in enumerate((0, 1, 2, 3, 5, 6)):
        (root / f"p{k // 2}").mkdir(exist_ok=True)
        Image.fromarray(lfw_face(i)).save(root / f"p{k // 2}" / f"f{k}.png")
    out = tmp_path_factory.mktemp("b") / "build"
    B.build(FolderSource(str(root), identity_from_parent=True, test_fraction=0.34), BuildConfig(shard_size=2),
            str(out), workers=1, progress=False, log=lambda s: None)
    return out


@pytest.fixture
def copy_(built, tmp_path):
    dst = tmp_path / "build"
    shutil.copytree(built, dst)
    return dst


ALL = D.LoaderConfig(split=None, heatmaps=())
SHA = D.LoaderConfig(split=None, heatmaps=(), verify="sha256")


def edit_manifest(build, fn, reseal=False):
    path = build / "manifest.json"
    m = json.loads(path.read_text())
    fn(m)
    if reseal:
        m["content_sha256"] = M.content_sha256(m)
    path.write_text(json.dumps(m, indent=1, sort_keys=True))


def test_an_intact_build_opens_in_both_modes(built):
    assert len(D.ShardReader(str(built), ALL)) == len(D.ShardReader(str(built), SHA)) == 6


def test_a_flipped_byte_is_caught_by_the_sha256_mode(copy_):
    victim = copy_ / "shards" / "shard-00001.h5"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert len(D.ShardReader(str(copy_), ALL)) == 6  # same size: the quick mode cannot see it (documented)
    with pytest.raises(D.DataError, match=rf"shard {victim} does not match the SHA-256 in its manifest"):
        D.ShardReader(str(copy_), SHA)


def test_a_shard_of_another_size_is_refused(copy_):
    victim = copy_ / "shards" / "shard-00002.h5"
    with open(victim, "ab") as fh:
        fh.write(b"\0" * 10)
    with pytest.raises(D.DataError, match=rf"shard {victim} has \d+ bytes, its manifest lists \d+"):
        D.ShardReader(str(copy_), ALL)


def test_a_shard_that_is_not_used_is_still_checked(copy_):
    m = M.load_manifest(str(copy_))
    test_only = next(e for e in m["shards"] if e["splits"] == {"test": e["samples"]} and e["samples"])
    victim = copy_ / test_only["file"]
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(D.DataError, match=str(victim)):
        D.ShardReader(str(copy_), D.LoaderConfig(split="train", heatmaps=()))


def test_a_missing_shard_is_refused(copy_):
    os.unlink(copy_ / "shards" / "shard-00000.h5")
    with pytest.raises(D.DataError, match=r"missing shard .*shard-00000\.h5"):
        D.ShardReader(str(copy_), ALL)


@pytest.mark.parametrize("field", ["samples", "splits", "totals"])
def test_an_edited_manifest_is_refused(copy_, field):
    def change(m):
        if field == "samples":
            m["shards"][0]["samples"] -= 1
        elif field == "splits":
            m["shards"][0]["splits"] = {"test": m["shards"][0]["samples"]}
        else:
            m["totals"]["samples"] += 1

    edit_manifest(copy_, change)
    with pytest.raises(D.DataError, match="content does not match its content_sha256"):
        D.ShardReader(str(copy_), ALL)


def test_a_sample_count_that_disagrees_with_the_shard_is_refused(copy_):
    def fewer(m):  # a consistent forgery of the counts: only the shard itself can tell
        e = m["shards"][0]
        e["samples"] -= 1
        k = next(iter(e["splits"]))
        e["splits"][k] -= 1
        m["totals"]["samples"] -= 1
        m["totals"]["splits"][k] -= 1

    edit_manifest(copy_, fewer, reseal=True)
    with pytest.raises(D.DataError, match=r"shard .*shard-00000\.h5 holds 2 samples, its manifest lists 1"):
        D.ShardReader(str(copy_), ALL)


def test_a_folder_of_photos_is_not_a_build(tmp_path):
    Image.fromarray(lfw_face(0)).save(tmp_path / "a.png")
    with pytest.raises(D.DataError, match="no manifest at"):
        D.ShardReader(str(tmp_path), ALL)
