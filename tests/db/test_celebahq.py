"""CelebA-HQ adapter: both distributed layouts, metadata files, the four split rules, coverage, errors, a real build."""

from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
import pytest

from tests.db._faces import astronaut_head, beside, save, touch, vary
from occface import build as build_mod
from occface.format import shards
from occface.build import BuildConfig
from occface.db import get_source
from occface.db.celebahq import CelebAHQSource, paper_split
from occface.db.protocols import PartialCopyWarning

N = 30000


def write_metadata(root, n_identities=6000, seed=0):
    """Full-size mapping / partition / identity files (text only) in CelebA's formats.

    Identities are assigned to CelebA files; CelebA's partition is by identity (as the official one is)."""
    rng = np.random.default_rng(seed)
    orig = rng.permutation(202599)[:N] + 1
    ident = rng.integers(1, n_identities + 1, size=N)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "CelebA-HQ-to-CelebA-mapping.txt"), "w") as fh:
        fh.write("idx         orig_idx    orig_file\n")
        for i in range(N):
            fh.write(f"{i:<12d}{orig[i] - 1:<12d}{orig[i]:06d}.jpg\n")
    os.makedirs(os.path.join(root, "Anno"), exist_ok=True)
    with open(os.path.join(root, "Anno", "identity_CelebA.txt"), "w") as fh:
        for i in range(N):
            fh.write(f"{orig[i]:06d}.jpg {ident[i]}\n")
    part = np.where(ident <= int(0.8 * n_identities), 0, np.where(ident <= int(0.9 * n_identities), 1, 2))
    os.makedirs(os.path.join(root, "Eval"), exist_ok=True)
    with open(os.path.join(root, "Eval", "list_eval_partition.txt"), "w") as fh:
        for i in range(N):
            fh.write(f"{orig[i]:06d}.jpg {part[i]}\n")
    return orig, ident, part


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialCopyWarning)
        return fn(*a, **k)


@pytest.fixture(scope="module")
def meta_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("celebahq")
    orig, ident, part = write_metadata(str(root))
    for i in (0, 1, 2, 5, 28431, 28432, 29999):
        touch(os.path.join(root, "CelebA-HQ-img", f"{i}.jpg"))
    return root, orig, ident, part


def test_paper_rule_counts_and_identity_disjoint():
    rng = np.random.default_rng(1)
    ident = {i: int(v) for i, v in enumerate(rng.integers(0, 6217, size=N))}
    split = paper_split(ident, 1568, "occface-paper-v1")
    assert sum(v == "test" for v in split.values()) == 1568 and sum(v == "train" for v in split.values()) == 28432
    test_ids = {ident[i] for i, s in split.items() if s == "test"}
    assert not test_ids & {ident[i] for i, s in split.items() if s == "train"}
    assert split == paper_split(dict(reversed(list(ident.items()))), 1568, "occface-paper-v1")  # order-free


def test_official_identity_and_paper_splits(meta_root):
    root, orig, ident, part = meta_root
    src = CelebAHQSource(root=str(root), split="official")
    with pytest.warns(PartialCopyWarning, match=f"7 of {N} images found"):
        recs = src.records()
    assert [r.key for r in recs] == sorted(f"celeba-hq:{i}.jpg" for i in (0, 1, 2, 5, 28431, 28432, 29999))
    names = {0: "train", 1: "val", 2: "test"}
    for r in recs:
        i = r.meta["index"]
        assert r.meta["celeba_file"] == f"{orig[i]:06d}.jpg" and r.meta["identity"] == ident[i]
        assert r.subject == str(ident[i]) and r.split == names[part[i]] and r.meta["celeba_partition"] == part[i]
    build_mod.check_identity_disjoint(recs)
    d = src.describe()
    assert d["protocol"]["name"] == "official" and d["protocol"]["version"] == 1
    assert d["coverage"]["missing_images"] == N - 7 and d["coverage"]["metadata"]["partition"].endswith("Eval/list_eval_partition.txt")

    paper = CelebAHQSource(root=str(root))  # identities known -> paper by default
    assert paper.resolved_split == "paper"
    prec = quiet(paper.records)
    build_mod.check_identity_disjoint(prec)
    assert paper.describe()["protocol"]["split"]["full_copy_counts"] == {"test": 1568, "train": 28432}

    ident_src = CelebAHQSource(root=str(root), split="identity", test_fraction=0.25)
    build_mod.check_identity_disjoint(quiet(ident_src.records))
    full = ident_src.describe()["protocol"]["split"]["full_copy_counts"]
    assert full["test"] + full["train"] == N and 0.15 < full["test"] / N < 0.35

    with pytest.raises(ValueError, match="not identity-disjoint"):
        CelebAHQSource(root=str(root), split="paper-index")


def test_imghq_layout_without_metadata(tmp_path):
    for i in (0, 7, 28432):
        touch(os.path.join(tmp_path, "data1024x1024", f"imgHQ{i:05d}.png"))
    touch(os.path.join(tmp_path, "data1024x1024", "readme.txt"))
    src = get_source("celeba-hq", root=str(tmp_path))
    assert src.resolved_split == "paper-index"
    with pytest.warns(PartialCopyWarning, match="1 other files"):
        recs = src.records()
    assert [(r.source, r.split, r.subject, r.meta["identity"], r.meta["celeba_file"]) for r in recs] == [
        ("imgHQ00000.png", "train", "", -1, ""), ("imgHQ00007.png", "train", "", -1, ""),
        ("imgHQ28432.png", "test", "", -1, "")]
    with pytest.raises(FileNotFoundError, match=r"needs mapping .*CelebA-HQ-to-CelebA-mapping\.txt.*partition"):
        CelebAHQSource(root=str(tmp_path), split="official")


def test_wrong_root(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    (tmp_path / "img_align_celeba" / "000001.jpg").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no CelebA-HQ images under .*CelebA-HQ-img/N\.jpg or imgHQNNNNN\.png.*found: img_align_celeba"):
        CelebAHQSource(root=str(tmp_path))
    with pytest.raises(ValueError, match="split must be one of"):
        CelebAHQSource(root=str(tmp_path), split="standard")


@pytest.mark.slow
def test_build_detects_on_downscaled_copy(tmp_path):
    head = astronaut_head()[:, 5:215]  # 220 x 210 -> square
    head = np.ascontiguousarray(head[:210])
    for i in range(3):
        big = cv2.resize(vary(head, i), (1024, 1024), interpolation=cv2.INTER_CUBIC)
        save(os.path.join(tmp_path, "CelebA-HQ-img", f"{i}.jpg"), big)
    src = CelebAHQSource(root=str(tmp_path))
    assert src.load(quiet(src.records)[0]).shape == (512, 512, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialCopyWarning)
        m = build_mod.build(src, BuildConfig(shard_size=4), str(beside(tmp_path, "out")), workers=1, progress=False,
                            log=lambda s: None)
    assert m["totals"]["samples"] == 3, m["rejections"]
    assert m["source"]["load_max_side"] == 512 and m["source"]["protocol"]["name"] == "paper-index"
    meta = shards.read_meta(str(beside(tmp_path, "out") / "shards" / "shard-00000.h5"))
    assert sorted(meta["index"].tolist()) == [0, 1, 2] and set(meta["split"]) == {"train"}
    assert (meta["det_box"][:, 2:] <= 512).all()  # boxes in the pixels of the 512 copy
