"""Exports, read back by the tools that consume them: ``webdataset`` itself, BasicSR's paired-folder
reading rules, and Pillow for the plain folders.  Deterministic and resumable.

BasicSR cannot be imported here (it needs torchvision, which does not import beside this torch),
so :func:`basicsr_pairs` reads the export the way BasicSR's ``PairedImageDataset`` does with a
``meta_info_file``: the GT names are the first space-separated token of each line, the LQ name
is ``filename_tmpl.format(stem) + ext`` in ``dataroot_lq``, both images are decoded with
``cv2.imdecode(..., IMREAD_COLOR)`` (BGR), scaled to float32 [0, 1] and turned to RGB, and a pair
must satisfy ``gt_size == lq_size * scale``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from occface import build as B
from occface.build import BuildConfig
from occface.data import LoaderConfig, ShardReader
from occface.db import SampleSource
from occface.export import ExportConfig, ExportError, export
from occface_cli.main import main as cli

QUIET = dict(progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The sample database in three shards, PConv masks, seed 3."""
    from occface import masks

    out = str(tmp_path_factory.mktemp("exp") / "b")
    B.build(SampleSource(), BuildConfig(shard_size=40, seed=3, mask=masks.PConvMask(), heatmaps=()), out,
            workers=1, **QUIET)
    return out


def truth(build_dir, split=None):
    """What every export must hold: the build's samples in build order, as the loader serves them."""
    rd = ShardReader(build_dir, LoaderConfig(split=split, heatmaps=(), dtype="uint8"))
    for i in range(len(rd)):
        it = rd.get_item(i)
        yield {"key": it["key"], "hr": it["hr"].transpose(1, 2, 0), "lr": it["lr"].transpose(1, 2, 0),
               "hr_occluded": it["hr_occluded"].transpose(1, 2, 0), "mask": it["mask"][0],
               "landmarks": it["landmarks"], "split": it["split"]}


def tree_bytes(folder) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


# ----------------------------------------------------------------------------- webdataset


def test_webdataset_reads_back_with_webdataset(build, tmp_path):
    import webdataset as wds

    out = str(tmp_path / "wds")
    rec = export(build, out, ExportConfig(format="webdataset", samples_per_tar=32), **QUIET)
    assert rec["complete"] and rec["files"]["tars"] == [f"occface-{k:06d}.tar" for k in range(3)]
    ds = wds.WebDataset(os.path.join(out, rec["files"]["urls"]), shardshuffle=False).decode("rgb8")
    got = list(ds)
    want = list(truth(build))
    assert len(got) == len(want) == rec["samples"] == 94
    for k, (g, w) in enumerate(zip(got, want)):
        assert g["__key__"] == f"{k:07d}"
        np.testing.assert_array_equal(g["hr.png"], w["hr"])
        np.testing.assert_array_equal(g["lr.png"], w["lr"])
        np.testing.assert_array_equal(g["hr_occluded.png"], w["hr_occluded"])
        np.testing.assert_array_equal(g["mask.png"][..., 0], w["mask"] * 255)
        assert g["json"]["key"] == w["key"] and g["json"]["meta"]["split"] == w["split"]
        np.testing.assert_array_equal(np.float32(g["json"]["landmarks"]), w["landmarks"])
    # the shard list works as a url list too (streaming from the listed names)
    names = open(os.path.join(out, "shards.txt")).read().split()
    assert sum(1 for _ in wds.WebDataset([os.path.join(out, n) for n in names], shardshuffle=False)) == 94


def test_webdataset_export_is_byte_identical_and_resumes(build, tmp_path):
    cfg = ExportConfig(format="webdataset", samples_per_tar=32, split="train")
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    export(build, a, cfg, **QUIET)
    export(build, b, cfg, **QUIET)
    ref = tree_bytes(a)
    assert ref == tree_bytes(b)
    # an interrupted run: one tar missing, a half-written temporary left behind, no final index
    os.unlink(os.path.join(b, "occface-000001.tar"))
    os.unlink(os.path.join(b, "shards.txt"))
    open(os.path.join(b, "occface-000002.tar.tmp999"), "wb").write(b"partial")
    export(build, b, cfg, **QUIET)
    assert tree_bytes(b) == ref


# ----------------------------------------------------------------------------- basicsr


def basicsr_pairs(root: str, meta_info: str, scale: int, filename_tmpl: str = "{}") -> list[dict]:
    """Pairs as BasicSR's PairedImageDataset (meta_info_file mode, disk backend) loads them."""
    with open(meta_info) as fh:
        gt_names = [line.strip().split(" ")[0] for line in fh]
    pairs = []
    for gt_name in gt_names:
        stem, ext = os.path.splitext(os.path.basename(gt_name))
        lq_path = os.path.join(root, "lq", f"{filename_tmpl.format(stem)}{ext}")
        gt_path = os.path.join(root, "gt", gt_name)
        imgs = []
        for p in (gt_path, lq_path):
            with open(p, "rb") as fh:
                bgr = cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR)
            imgs.append(bgr.astype(np.float32) / 255.0)
        gt, lq = imgs
        if gt.shape[0] != lq.shape[0] * scale or gt.shape[1] != lq.shape[1] * scale:
            raise ValueError(f"scale mismatch for {gt_name}: {gt.shape} vs {lq.shape} x{scale}")
        pairs.append({"gt": gt[..., ::-1], "lq": lq[..., ::-1], "gt_path": gt_path, "lq_path": lq_path})
    return pairs


def test_basicsr_layout_reads_back_as_paired_image_dataset(build, tmp_path):
    out = str(tmp_path / "bsr")
    rec = export(build, out, ExportConfig(format="basicsr", split="test"), **QUIET)
    assert sorted(os.listdir(os.path.join(out, "gt"))) == sorted(os.listdir(os.path.join(out, "lq")))
    yml = open(os.path.join(out, "basicsr_dataset.yml")).read()
    assert "type: PairedImageDataset" in yml and "scale: 8" in yml and "meta_info_file: meta_info.txt" in yml
    pairs = basicsr_pairs(out, os.path.join(out, "meta_info.txt"), scale=8)
    want = list(truth(build, "test"))
    assert len(pairs) == len(want) == rec["samples"] > 0
    meta = [json.loads(line) for line in open(os.path.join(out, "meta.jsonl"))]
    for p, w, m in zip(pairs, want, meta):
        np.testing.assert_array_equal(np.rint(p["gt"] * 255).astype(np.uint8), w["hr"])
        np.testing.assert_array_equal(np.rint(p["lq"] * 255).astype(np.uint8), w["lr"])
        assert m["key"] == w["key"] and m["split"] == "test"
    first = open(os.path.join(out, "meta_info.txt")).readline().strip()
    assert first == "0000000.png (128,128,3)"


# ----------------------------------------------------------------------------- folders


def test_folders_read_back_with_pillow_and_csv(build, tmp_path):
    out = str(tmp_path / "f")
    export(build, out, ExportConfig(format="folders"), **QUIET)
    want = list(truth(build))
    with open(os.path.join(out, "landmarks.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    meta = [json.loads(line) for line in open(os.path.join(out, "meta.jsonl"))]
    assert len(rows) == len(meta) == len(want)
    for k, (w, row, m) in enumerate(zip(want, rows, meta)):
        name = f"{k:07d}"
        for d in ("hr", "hr_occluded", "lr"):
            with Image.open(os.path.join(out, d, f"{name}.png")) as im:
                assert im.mode == "RGB"
                np.testing.assert_array_equal(np.asarray(im), w[d])
        with Image.open(os.path.join(out, "mask", f"{name}.png")) as im:
            assert im.mode == "L"
            np.testing.assert_array_equal(np.asarray(im), w["mask"] * 255)
        assert row["name"] == m["name"] == name and row["key"] == m["key"] == w["key"]
        lm = np.float32([[row[f"x{j}"], row[f"y{j}"]] for j in range(68)])
        np.testing.assert_array_equal(lm, w["landmarks"])  # exact float32 round trip
        assert m["mask_params"]["kind"] == "pconv" and abs(m["hole_ratio"] - w["mask"].mean()) < 1e-6


def test_folders_resume_after_a_partial_run_gives_the_same_bytes(build, tmp_path):
    ref, out = str(tmp_path / "ref"), str(tmp_path / "out")
    cfg = ExportConfig(format="folders", split="train")
    export(build, ref, cfg, **QUIET)
    export(build, out, cfg, **QUIET)
    for d in ("hr", "mask"):
        for f in sorted(os.listdir(os.path.join(out, d)))[::3]:
            os.unlink(os.path.join(out, d, f))
    os.unlink(os.path.join(out, "landmarks.csv"))
    open(os.path.join(out, "lr", "0000005.png.tmp4242"), "wb").write(b"\x89PNG partial")
    export(build, out, cfg, **QUIET)
    assert tree_bytes(out) == tree_bytes(ref)


def test_an_export_folder_is_never_mixed(build, tmp_path):
    out = str(tmp_path / "x")
    export(build, out, ExportConfig(format="folders", split="test"), **QUIET)
    with pytest.raises(ExportError, match="another build or with other options"):
        export(build, out, ExportConfig(format="folders", split="train"), **QUIET)
    os.makedirs(tmp_path / "full")
    (tmp_path / "full" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(ExportError, match="not empty"):
        export(build, str(tmp_path / "full"), ExportConfig(format="basicsr"), **QUIET)


def test_cli_export(build, tmp_path):
    out = str(tmp_path / "cli")
    r = CliRunner().invoke(cli, ["export", build, "--format", "webdataset", "--out", out, "--split", "test",
                                 "--samples-per-tar", "4"])
    assert r.exit_code == 0, r.output
    assert "occface-{000000..000002}.tar" in r.output
    r = CliRunner().invoke(cli, ["export", build, "--format", "basicsr", "--out", out])
    assert r.exit_code == 1 and "another build or with other options" in r.output
    r = CliRunner().invoke(cli, ["export", str(tmp_path), "--format", "folders", "--out", str(tmp_path / "y")])
    assert r.exit_code == 1 and "no manifest" in r.output
    shutil.rmtree(out)


def test_kill_9_mid_export_then_resume_gives_identical_bytes(build, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    ref = str(tmp_path / "ref")
    export(build, ref, ExportConfig(format="webdataset", samples_per_tar=1), **QUIET)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "occface_cli.main", "export", build, "--format", "webdataset", "--out", str(out),
           "--samples-per-tar", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = [f for f in os.listdir(out) if f.endswith(".tar")] if out.exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [f for f in os.listdir(out) if f.endswith(".tar")]
    assert 3 <= len(done) < 94, "the kill should land mid-export"
    assert not json.load(open(out / "export.json"))["complete"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert tree_bytes(str(out)) == tree_bytes(ref)
