"""Bundled evaluation mask sets (masks/, package occface_masksets), their CLI, and the benchmark."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from occface import masks
from occface.bench import masks as bench_masks
from occface.masks import make as masks_make
from occface.masks import sets as masksets
from occface_cli.main import main as cli

BUNDLED = ["pconv128-v1", "square128-v1"]


def test_the_bundled_sets_ship_with_the_package():
    assert masksets.bundled_names() == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_sets_match_their_checksums(name):
    assert masksets.verify(name) == []


@pytest.mark.parametrize("name", BUNDLED)
def test_make_regenerates_a_bundled_set_byte_identically(name, tmp_path):
    masks_make.make_set(name, tmp_path)
    src = masksets.set_folder(name)
    for f in ("spec.json", "masks.npz", "checksums.json"):
        assert (tmp_path / f).read_bytes() == src.joinpath(f).read_bytes(), f


def test_a_tampered_set_fails_verification(tmp_path):
    masks_make.make_set("square128-v1", tmp_path)
    arrays = masksets.read_arrays(tmp_path)
    arrays["bits"][3, 10] ^= 1
    (tmp_path / "masks.npz").write_bytes(masksets.npz_bytes(arrays))
    problems = masksets.verify(tmp_path)
    assert any("masks.npz" in p for p in problems) and any("counts" in p for p in problems)


def test_the_pconv_set_has_every_bucket_with_and_without_border():
    ms = masksets.load_set("pconv128-v1")
    assert len(ms) == 1200 and ms.size == 128
    st = masksets.stats(ms)
    assert st["buckets"] == [0, 200, 200, 200, 200, 200, 200, 0]
    for g in st["groups"]:
        b = int(g["label"][1])
        assert g["n"] == 100 and g["buckets"][b] == 100  # all 100 in the bucket the label names
        if g["label"].endswith("-border"):
            for i in ms.indices((g["label"],))[:20]:
                m = ms.mask(int(i))
                assert not (m[:8].any() or m[-8:].any() or m[:, :8].any() or m[:, -8:].any())


def test_the_square_set_holds_the_paper_sizes():
    ms = masksets.load_set("square128-v1")
    for label, side in masks.SQUARE_SIZES.items():
        assert set(ms.count[ms.indices((label,))].tolist()) == {side * side}
    paper = ms.count[ms.indices(("paper",))]
    assert paper.min() >= 16 * 16 and paper.max() <= 64 * 64
    assert set(ms.count[ms.indices(("top-left", "top-right", "bottom-left", "bottom-right"))].tolist()) == {4096}


def test_a_build_can_draw_masks_from_a_bundled_set():
    """The same (seed, key) picks the same stored mask for everyone; groups restrict the pool."""
    spec = masks.BundledSet("pconv128-v1", groups=("b3-border",))
    p1, m1 = masks.mask_for(spec, 0, "test/0001.png")
    p2, m2 = masks.mask_for(spec, 0, "test/0001.png")
    assert p1 == p2 and np.array_equal(m1, m2) and p1["group"] == "b3-border"
    ms = masksets.load_set("pconv128-v1")
    assert np.array_equal(m1, ms.mask(p1["index"])) and masks.bucket_of(m1) == 3
    picked = {masks.mask_for(spec, 0, f"k{i}")[0]["index"] for i in range(300)}
    assert picked <= set(ms.indices(("b3-border",)).tolist()) and len(picked) > 80
    with pytest.raises(ValueError):
        masks.sample_params(masks.BundledSet("pconv128-v1", groups=("nope",)), np.random.default_rng(0))
    with pytest.raises(ValueError):
        masks.sample_params(masks.BundledSet("pconv128-v1"), np.random.default_rng(0), size=64)


def test_sets_refuse_kinds_that_need_a_face():
    group = {"label": "a", "count": 1, "spec": {"kind": "part", "part": "mouth"}}
    spec = {"name": "x", "size": 128, "seed": 0, "groups": [group]}
    with pytest.raises(ValueError):
        masksets.canonical_spec(spec)


def test_cli_make_stats_show(tmp_path):
    runner = CliRunner()
    spec = {
        "name": "tiny-v1",
        "size": 128,
        "seed": 5,
        "groups": [
            {"label": "b2", "count": 6, "spec": {"kind": "pconv_bucket", "bucket": 2, "border": True}},
            {"label": "sq", "count": 4, "spec": {"kind": "square", "min_side": 16, "max_side": 64}},
        ],
    }
    (tmp_path / "tiny.json").write_text(json.dumps(spec))
    out = tmp_path / "tiny"
    r = runner.invoke(cli, ["masks", "make", str(tmp_path / "tiny.json"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    r2 = runner.invoke(cli, ["masks", "make", str(out / "spec.json"), "--out", str(tmp_path / "again")])
    assert r2.exit_code == 0 and (tmp_path / "again" / "masks.npz").read_bytes() == (out / "masks.npz").read_bytes()

    r = runner.invoke(cli, ["masks", "stats", str(out)])
    assert r.exit_code == 0, r.output
    assert "(0.1,0.2]" in r.output and "checksums: ok" in r.output
    line = next(ln for ln in r.output.splitlines() if ln.strip().startswith("(0.1,0.2]") and "#" in ln)
    assert int(line.split()[1]) >= 6

    png = tmp_path / "grid.png"
    r = runner.invoke(cli, ["masks", "show", "pconv128-v1", "--out", str(png), "--per-group", "3"])
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert img.shape[0] > 12 * 128 and img.shape[1] > 3 * 128 and (img == 255).any()  # 12 groups + labels

    r = runner.invoke(cli, ["masks", "stats", str(tmp_path / "again")])
    assert r.exit_code == 0

    r = runner.invoke(cli, ["masks", "make", "pconv128-v1", "--out", str(tmp_path / "p")])
    assert r.exit_code == 0 and "identical" in r.output


def test_bench_runs_every_generator_side_by_side():
    lines = []
    res = bench_masks.run(n=4, rounds=1, echo=lines.append)
    assert res["baseline PConv-Keras re-impl"]["x_baseline"] == 1.0
    assert all(v["rate"] > 0 for k, v in res.items() if not k.startswith("_"))
    assert any(ln.startswith("target untargeted irregular") for ln in lines)


def test_grid_labels_every_group_and_packs_small_ones():
    """square128-v1: six groups of 50+ masks get a row each; the nine one-mask groups share two rows."""
    from occface import pictures

    ms = masksets.load_set("square128-v1")
    img = masksets.grid(ms, per_group=8)
    big = [g for g in ms.labels if len(ms.indices((g,))) >= 8]
    rows = len(big) + -(-sum(len(ms.indices((g,))) for g in ms.labels if g not in big) // 8)
    assert len(big) == 6 and rows == 8
    cap = pictures.LINE_H
    assert img.shape[0] >= rows * (128 + cap) and img.shape[0] < (rows + 1) * (128 + cap) + 4 * cap


def test_a_build_is_not_a_mask_set(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    r = CliRunner().invoke(cli, ["masks", "stats", str(tmp_path)])
    assert r.exit_code == 1 and "is an occface build, not a mask set" in r.output and "occface inspect" in r.output
