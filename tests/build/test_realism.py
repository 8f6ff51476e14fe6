"""Builds with occluders and degradation chains: stored params rebuild every pixel; bytes never depend on workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from occface import build as B
from occface import degrade, masks
from occface.build import BuildConfig
from occface.db import SampleSource
from occface.faces import resize
from occface.faces.occlude import occlude
from occface.format import manifest as manifest_fmt
from occface.format import shards
from occface.seeding import rng_for

QUIET = dict(progress=False, log=lambda s: None)
CFG = BuildConfig(shard_size=16, mask=masks.PRESETS["occluders"], degrade=degrade.GFPGAN, store_alpha=True, seed=11)


def hashes(out):
    return {fn: shards.sha256_file(os.path.join(out, "shards", fn)) for fn in sorted(os.listdir(os.path.join(out, "shards")))}


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    """The sample database with ``--mask occluders --degrade gfpgan --store-alpha --seed 11``."""
    out = str(tmp_path_factory.mktemp("realism") / "b")
    B.build(SampleSource(), CFG, out, workers=1, **QUIET)
    return out


def test_stored_params_rebuild_every_pixel(realistic):
    m = manifest_fmt.load_manifest(realistic)
    assert m["totals"]["samples"] >= 90
    v = m["versions"]
    assert v["albumentations"] == "2.0.8" and v["albucore"] and v["opencv"]  # the pins that move bytes
    assert m["config"]["degrade"]["name"] == "gfpgan" and m["config"]["mask"]["kind"] == "mixture"
    objects, checked = set(), 0
    for e in m["shards"]:
        with h5py.File(os.path.join(realistic, e["file"]), "r") as f:
            meta = {k: f[f"meta/{k}"].asstr()[...] for k in ("key", "mask_params", "fill", "degrade", "mask_kind")}
            for i in range(f.attrs["num_samples"]):
                key, hr, lm = meta["key"][i], f["hr"][i], f["landmarks"][i]
                params = json.loads(meta["mask_params"][i])
                # the params are what (seed, key) draw, and they paint the stored occluder exactly
                assert params == masks.sample_params(CFG.mask, rng_for(11, key, "mask"), lm)
                assert meta["mask_kind"][i] == "occluder" and json.loads(meta["fill"][i]) == {"mode": "occluder"}
                rgb, alpha = masks.occluders.render(params)
                assert np.array_equal(f["alpha"][i], alpha)
                assert np.array_equal(f["mask"][i], masks.occluders.mask_of(alpha))
                assert np.array_equal(f["hr_occluded"][i], masks.occluders.composite(hr, rgb, alpha))
                assert np.array_equal(f["hr_occluded"][i], occlude(hr, params, {"mode": "occluder"}))
                assert np.isclose(f["meta/hole_ratio"][i], f["mask"][i].mean())
                # the degradation: drawn from (seed, key, "degrade"), and it rebuilds the stored LR
                deg = json.loads(meta["degrade"][i])
                assert deg == degrade.sample_params(degrade.GFPGAN, rng_for(11, key, "degrade"))
                assert np.array_equal(degrade.apply(f["hr_occluded"][i], deg), f["lr"][i])
                assert np.array_equal(resize.resize(hr, 16, "bilinear-aa"), f["lr_clean"][i])  # the target stays clean
                objects.add(params["object"])
                checked += 1
    assert checked == m["totals"]["samples"] and objects == set(masks.occluders.OBJECTS)


def test_byte_identical_across_workers_and_partitions(realistic, tmp_path):
    B.build(SampleSource(), CFG, str(tmp_path / "w2"), workers=2, **QUIET)
    assert hashes(str(tmp_path / "w2")) == hashes(realistic)
    parts = tmp_path / "parts"
    for i in range(3):
        B.build(SampleSource(), CFG, str(parts / f"p{i}"), workers=1, partition=B.Partition(3, i), **QUIET)
    joined = manifest_fmt.join(str(tmp_path / "joined"), [str(parts / f"p{i}") for i in range(3)])
    assert hashes(str(tmp_path / "joined")) == hashes(realistic)
    with open(os.path.join(realistic, "manifest.json")) as fh:
        assert joined == json.load(fh)


def test_degrade_hr_stores_the_same_draw_at_the_hr_size(tmp_path):
    cfg = BuildConfig(mask=masks.MixtureMask(((1.0, masks.SquareMask()), (1.0, masks.OccluderMask("face_mask")))),
                      degrade=degrade.HEAVY, degrade_hr=True, seed=3)
    out = str(tmp_path / "b")
    B.build(SampleSource(lfw_faces=15), cfg, out, workers=1, **QUIET)
    kinds = set()
    for path, _ in manifest_fmt.shard_paths(out):
        with h5py.File(path, "r") as f:
            assert "alpha" not in f  # only with store_alpha
            for i in range(f.attrs["num_samples"]):
                params = json.loads(f["meta/mask_params"].asstr()[i])
                fill = json.loads(f["meta/fill"].asstr()[i])
                deg = json.loads(f["meta/degrade"].asstr()[i])
                clean = occlude(f["hr"][i], params, fill)  # the occluded face before degradation
                assert np.array_equal(f["lr"][i], degrade.apply(clean, deg))
                assert np.array_equal(f["hr_occluded"][i], degrade.apply(clean, deg, size=128))
                kinds.add(params["kind"])
    assert kinds == {"square", "occluder"}


def test_cli_options_and_their_errors(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "occface_cli.main", *a], capture_output=True, text=True)  # noqa: E731
    bad = run("build", "--db", "sample", "--out", str(tmp_path / "x"), "--degrade", "blurry")
    assert bad.returncode == 2 and "--degrade" in bad.stderr and "Traceback" not in bad.stderr
    bad = run("build", "--db", "sample", "--out", str(tmp_path / "x"), "--degrade", '{"steps": [{"op": "jpeg", "quality": [0, 9]}]}')
    assert bad.returncode == 2 and "quality" in bad.stderr and "Traceback" not in bad.stderr
    bad = run("masks", "show", "--kind", "hat", "--out", str(tmp_path / "x.png"))
    assert bad.returncode == 2 and "--kind" in bad.stderr and "Traceback" not in bad.stderr
    ok = run("masks", "show", "--kind", "occluders", "--db", "sample", "--faces", "3", "--out", str(tmp_path / "g.png"))
    assert ok.returncode == 0, ok.stderr
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape[0] > 7 * 128 and grid.shape[1] > 3 * 128  # 7 objects x 3 faces, with headers
    ok = run("masks", "stats", "--kind", "face-mask", "--faces", "3", "--draws", "2")
    assert ok.returncode == 0 and "face_mask surgical" in ok.stdout and "face_mask n95" in ok.stdout
    ok = run("degrade", "show", "--faces", "2", "--draws", "1", "--out", str(tmp_path / "d.png"))
    assert ok.returncode == 0, ok.stderr
    assert np.asarray(Image.open(tmp_path / "d.png")).shape[0] > 5 * 128  # HR row + 4 presets
