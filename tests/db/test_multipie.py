"""Multi-PIE adapter: layout parsing, protocol selection and counts, splits, coverage, errors, real builds."""

from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from tests.db._faces import astronaut_head, lfw_face, place, save, touch, vary
from occface import build as build_mod
from occface.format import shards
from occface.build import BuildConfig
from occface.db import get_source, parse_options
from occface.db.multipie import CAMERA_YAW, MultiPieSource, parse_path
from occface.db.protocols import PartialCopyWarning, protocol
from occface.faces.detect import DetectConfig

ALL_CAMERAS = list(CAMERA_YAW)  # 13 head-height + 08_1, 19_1
RECORDINGS = {1: [1, 2], 2: [1, 2, 3], 3: [1, 2, 3], 4: [1, 2, 3]}


def rel(subj, ses, rec, cam, ill):
    return (f"session{ses:02d}/multiview/{subj}/{rec:02d}/{cam}/"
            f"{subj}_{ses:02d}_{rec:02d}_{cam.replace('_', '')}_{ill:02d}.png")


def make_tree(base, subjects, sessions=(1, 2, 3, 4), cameras=ALL_CAMERAS, ills=(0, 7, 13), skip=()):
    """Empty placeholder files in the exact layout (selection and counting never decode them)."""
    for subj in subjects:
        for ses in sessions:
            for rec in RECORDINGS[ses]:
                for cam in cameras:
                    if (subj, ses, cam) in skip:
                        continue
                    for ill in ills:
                        touch(os.path.join(base, "data", rel(subj, ses, rec, cam, ill)))


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialCopyWarning)
        return fn(*a, **k)


def test_parse_path():
    info = parse_path("data/session01/multiview/001/01/05_1/001_01_01_051_07.png")
    assert info == {"subject": "001", "session": 1, "recording": 1, "camera": "05_1", "yaw": 0.0,
                    "expression": "neutral", "illumination": 7}
    assert parse_path("session04/multiview/123/03/24_0/123_04_03_240_00.png")["expression"] == "scream"
    assert parse_path("session02/multiview/123/03/11_0/123_02_03_110_19.png")["yaw"] == 90.0
    assert math.isnan(parse_path("session03/multiview/123/03/08_1/123_03_03_081_01.png")["yaw"])
    with pytest.raises(ValueError, match="disagrees"):
        parse_path("session01/multiview/001/01/05_1/002_01_01_051_07.png")
    with pytest.raises(ValueError, match="does not follow"):
        parse_path("session01/001/01/05_1/001_01_01_051_07.png")


def test_protocol_file_is_rules():
    p = protocol("multipie")
    assert (p["name"], p["version"]) == ("prouigan", 1)
    assert len(p["cameras"]) == 13 and "08_1" not in p["cameras"] and "19_1" not in p["cameras"]
    assert sorted(CAMERA_YAW[c] for c in p["cameras"]) == list(range(-90, 91, 15))
    assert sorted(p["expressions"]) == sorted(["neutral", "smile", "surprise", "squint", "disgust", "scream"])
    assert p["illuminations"] == [7] and p["split"]["train_subjects"] == 250


def test_prouigan_selection_counts_and_split(tmp_path):
    subjects = ["001", "002", "004", "010", "011"]
    make_tree(tmp_path, subjects)
    src = MultiPieSource(root=str(tmp_path), train_subjects=3)
    recs = quiet(src.records)
    # 13 cameras x 6 expressions (one recording each: "first") x 1 illumination, per subject
    assert len(recs) == 5 * 13 * 6
    assert [r.key for r in recs] == sorted(r.key for r in recs)
    assert {r.meta["illumination"] for r in recs} == {7}
    assert {r.meta["camera"] for r in recs} == set(protocol("multipie")["cameras"])
    one = [r for r in recs if r.subject == "001"]
    assert sorted({(r.meta["expression"], r.meta["session"], r.meta["recording"]) for r in one}) == sorted(
        [("neutral", 1, 1), ("smile", 1, 2), ("surprise", 2, 2), ("squint", 2, 3), ("disgust", 3, 3),
         ("scream", 4, 3)])
    assert {r.subject for r in recs if r.split == "train"} == {"001", "002", "004"}
    assert {r.subject for r in recs if r.split == "test"} == {"010", "011"}
    build_mod.check_identity_disjoint(recs)
    d = src.describe()
    assert d["protocol"]["name"] == "prouigan" and d["protocol"]["version"] == 1
    assert d["protocol"]["split"]["train_ids"] == ["001", "004"] and d["protocol"]["split"]["test_ids"] == ["010", "011"]
    assert d["counts"] == {"records": 390, "test": 156, "train": 234}
    # the root may be data/ itself: same records
    assert [r.key for r in quiet(MultiPieSource(root=str(tmp_path / "data"), train_subjects=3).records)] == [r.key for r in recs]


def test_options_cameras_yaw_expressions_illuminations(tmp_path):
    make_tree(tmp_path, ["001", "002"])
    opts = parse_options("multipie", ["yaw_range=-30,30", "expressions=neutral,smile", "illuminations=0,13",
                                      "recordings=all"])
    recs = quiet(get_source("multipie", root=str(tmp_path), **opts).records)
    assert {r.meta["camera"] for r in recs} == {"04_1", "05_0", "05_1", "14_0", "13_0"}
    # neutral has 5 recordings, smile 2: 7 recordings x 5 cameras x 2 shots x 2 subjects
    assert len(recs) == 7 * 5 * 2 * 2
    assert {r.meta["illumination"] for r in recs} == {0, 13}
    elevated = quiet(MultiPieSource(root=str(tmp_path), cameras="081,19_1", expressions=("scream",)).records)
    assert len(elevated) == 2 * 2 and all(math.isnan(r.meta["yaw"]) for r in elevated)
    with pytest.raises(ValueError, match="unknown Multi-PIE camera"):
        MultiPieSource(root=str(tmp_path), cameras="05_9")
    with pytest.raises(ValueError, match="unknown expression"):
        MultiPieSource(root=str(tmp_path), expressions="laugh")
    with pytest.raises(ValueError, match="no option"):
        parse_options("multipie", ["camera=05_1"])


def test_partial_copy_is_reported_with_counts(tmp_path):
    # session 03 absent; subject 002 lacks camera 24_0 in session 01
    make_tree(tmp_path, ["001", "002"], sessions=(1, 2, 4), skip={("002", 1, "24_0")})
    src = MultiPieSource(root=str(tmp_path))
    with pytest.warns(PartialCopyWarning, match="sessions missing: 03"):
        recs = src.records()
    cov = src.describe()["coverage"]
    assert cov["complete"] is False and cov["sessions_missing"] == ["03"]
    assert cov["subjects_found"] == 2 and cov["subjects_expected"] == 337
    # 002's neutral and smile come from session 01, both without 24_0
    assert cov["missing_by_camera"] == {"24_0": 2} and cov["missing_camera_dirs"] == 2
    assert cov["missing_images"] == 2 and cov["expected_images"] == len(recs) + 2
    # disgust lives only in session 03: no record, and the smile of both falls back to (1, 2)
    assert "disgust" not in {r.meta["expression"] for r in recs}
    with pytest.raises(FileNotFoundError, match="incomplete copy"):
        MultiPieSource(root=str(tmp_path), require_complete=True).records()


def test_wrong_root_names_expected_and_found(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"no session01/multiview .*found: images, notes\.txt"):
        MultiPieSource(root=str(tmp_path))
    make_tree(tmp_path / "copy", ["001"], sessions=(1,), cameras=("05_1",), ills=(7,))
    with pytest.raises(FileNotFoundError, match="looks like a folder inside the copy"):
        MultiPieSource(root=str(tmp_path / "copy" / "data" / "session01"))
    with pytest.raises(FileNotFoundError, match="not a directory"):
        MultiPieSource(root=str(tmp_path / "nope"))


def _photo_tree(base):
    """Real faces: subject 001 is the astronaut, 002 an LFW person.  On camera 24_0 the astronaut's head is
    turned 90 degrees (a stand-in for a profile HOG misses but dlib's CNN finds) and 002 is out of frame."""
    head = astronaut_head()
    save(os.path.join(base, "data", rel("001", 1, 1, "05_1", 7)), place((480, 640), [(head, 210, 120)]))
    turned = np.rot90(np.repeat(np.repeat(head, 2, 0), 2, 1))
    save(os.path.join(base, "data", rel("001", 1, 1, "24_0", 7)), place((480, 640), [(turned, 100, 20)]))
    save(os.path.join(base, "data", rel("002", 1, 1, "05_1", 7)), place((480, 640), [(vary(lfw_face(7, 180), 1), 230, 140)]))
    save(os.path.join(base, "data", rel("002", 1, 1, "24_0", 7)), place((480, 640), []))


@pytest.mark.slow
def test_build_with_cnn_fallback(tmp_path):
    _photo_tree(tmp_path / "mp")
    src = MultiPieSource(root=str(tmp_path / "mp"), cameras="05_1,24_0", expressions="neutral", train_subjects=1)
    cfg = BuildConfig(detect=DetectConfig(detector="hog+cnn", cnn_max_side=320), shard_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialCopyWarning)
        m = build_mod.build(src, cfg, str(tmp_path / "out"), workers=1, progress=False, log=lambda s: None)
    assert m["source"]["protocol"]["name"] == "prouigan" and m["source"]["protocol"]["version"] == 1
    assert m["source"]["protocol"]["overrides"]["cameras"] == ["05_1", "24_0"]
    meta = shards.read_meta(str(tmp_path / "out" / "shards" / "shard-00000.h5"))
    got = {(s, c): (d, sp) for s, c, d, sp in zip(meta["subject"], meta["camera"], meta["detector"], meta["split"])}
    assert got[("001", "05_1")] == ("hog", "train") and got[("002", "05_1")] == ("hog", "test")
    assert got[("001", "24_0")] == ("cnn", "train")  # HOG found nothing, the CNN did
    i = list(meta["camera"]).index("24_0")
    assert meta["yaw"][i] == -90.0 and meta["expression"][i] == "neutral" and meta["session"][i] == 1
    assert meta["illumination"][i] == 7 and meta["recording"][i] == 1
    (rej,) = m["rejections"]["log"]
    assert rej["reason"] == "no_face" and "hog+cnn" in rej["detail"] and "/002/01/24_0/" in rej["path"]
    assert m["totals"]["splits"] == {"test": 1, "train": 2}


@pytest.mark.slow
def test_cli_defaults(tmp_path):
    from occface_cli.main import main

    for n, subj in enumerate(("001", "002")):
        save(os.path.join(tmp_path, "mp", "data", rel(subj, 1, 1, "05_1", 7)),
             place((480, 640), [(vary(lfw_face(10 + n, 160), n), 240, 150)]))
    with pytest.warns(PartialCopyWarning, match="24 of 26 selected images missing"):
        res = CliRunner().invoke(main, ["build", "--db", "multipie", "--root", str(tmp_path / "mp"),
                                        "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["config"]["detect"]["detector"] == "hog+cnn"
    assert m["source"]["protocol"]["illuminations"] == [7] and len(m["source"]["protocol"]["cameras"]) == 13
    cov = m["source"]["coverage"]
    assert cov["selected_images"] == 2 and (cov["expected_images"], cov["missing_images"]) == (2 * 13, 2 * 12)
    assert m["totals"]["samples"] == 2 and m["totals"]["splits"] == {"train": 2}
    res = CliRunner().invoke(main, ["build", "--db", "multipie", "--root", str(tmp_path), "--out", str(tmp_path / "o2")])
    assert res.exit_code != 0 and "no session01/multiview" in res.output
