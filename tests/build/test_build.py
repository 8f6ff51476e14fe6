"""End-to-end builds with real dlib on real photos, real HDF5 shards and manifests."""

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from PIL import Image

from occface import build as B
from occface import masks
from occface.faces import resize
from occface.format import manifest as manifest_fmt
from occface.format import shards
from occface.build import BuildConfig
from occface.db import FolderSource, SampleSource
from occface.faces.occlude import FillConfig, apply_fill
from occface.seeding import rng_for

QUIET = dict(progress=False, log=lambda s: None)


def hashes(out):
    return {fn: shards.sha256_file(os.path.join(out, "shards", fn)) for fn in sorted(os.listdir(os.path.join(out, "shards")))}


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, lfw_faces, astronaut):
    """A messy folder: real faces in five formats and odd modes, plus files that must be rejected."""
    root = tmp_path_factory.mktemp("photos")
    (root / "alice").mkdir()
    (root / "bob").mkdir()
    (root / "carol").mkdir()
    Image.fromarray(astronaut).save(root / "alice" / "astronaut.jpg", quality=92)
    Image.fromarray(astronaut[..., 0]).save(root / "alice" / "astronaut_gray.pgm")
    Image.fromarray(lfw_faces[0]).save(root / "bob" / "f0.png")
    Image.fromarray(lfw_faces[1]).save(root / "bob" / "f1.bmp")
    Image.fromarray(lfw_faces[2]).save(root / "bob" / "f2.tif")
    Image.fromarray(np.dstack([lfw_faces[3], np.full((100, 100), 200, np.uint8)])).save(root / "carol" / "f3_rgba.png")
    Image.fromarray(lfw_faces[6]).convert("CMYK").save(root / "carol" / "f4_cmyk.jpg", quality=95)
    Image.fromarray((lfw_faces[5][..., 0].astype(np.uint16) * 257)).save(root / "carol" / "f5_16bit.png")
    # things that must be rejected with reasons, never silently dropped
    (root / "carol" / "empty.jpg").write_bytes(b"")
    (root / "carol" / "notes.txt").write_text("not a photo\n")
    good = (root / "alice" / "astronaut.jpg").read_bytes()
    (root / "carol" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(root / "carol" / "grey_wall.png")
    return root


def test_messy_folder_every_file_accounted_for(photo_dir, tmp_path):
    src = FolderSource(str(photo_dir), identity_from_parent=True, test_fraction=0.34)
    m = B.build(src, BuildConfig(shard_size=5), str(tmp_path / "b"), workers=1, **QUIET)
    n_files = sum(len(f) for _, _, f in os.walk(photo_dir))
    assert n_files == 12
    assert m["totals"]["records"] == 11 and m["totals"]["skipped"] == 1
    assert m["totals"]["samples"] + m["totals"]["rejected"] + m["totals"]["skipped"] == n_files
    assert m["skipped"] == {"counts": {"not_an_image_extension": 1},
                            "log": [{"path": "carol/notes.txt", "reason": "not_an_image_extension"}]}
    reasons = {os.path.basename(r["path"]): r["reason"] for r in m["rejections"]["log"]}
    assert reasons == {
        "empty.jpg": "decode_empty",
        "truncated.jpg": "decode_truncated",
        "grey_wall.png": "no_face",
    }
    assert m["rejections"]["counts"] == {"decode_empty": 1, "decode_truncated": 1, "no_face": 1}
    # identities come from folders and never straddle splits
    subj_split = {}
    for e in m["shards"]:
        meta = shards.read_meta(os.path.join(tmp_path / "b", e["file"]))
        for subj, split in zip(meta["subject"], meta["split"]):
            assert subj_split.setdefault(subj, split) == split
    assert set(subj_split) == {"alice", "bob", "carol"} and set(subj_split.values()) == {"train", "test"}
    assert manifest_fmt.verify(str(tmp_path / "b")) == []


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample") / "b"
    cfg = BuildConfig(shard_size=16, fill=FillConfig("noise"), heatmaps=("fhc4@64", "pu7@16"), seed=7)
    B.build(SampleSource(), cfg, str(out), workers=1, **QUIET)
    return str(out), cfg


def test_sample_build_pixels_agree_with_metadata(sample_build):
    out, cfg = sample_build
    m = manifest_fmt.load_manifest(out)
    assert m["totals"]["records"] == 101 and m["totals"]["samples"] >= 90
    assert m["config"]["seed"] == 7 and m["versions"]["dlib"]
    checked = 0
    for e in m["shards"]:
        with h5py.File(os.path.join(out, e["file"]), "r") as f:
            assert json.loads(f.attrs["config"])["seed"] == 7
            for i in range(f.attrs["num_samples"]):
                key = f["meta/key"].asstr()[i]
                params = json.loads(f["meta/mask_params"].asstr()[i])
                mask = f["mask"][i]
                # the stored params rebuild the stored mask, and the params are those (seed, key) draw
                assert (masks.render(params) == mask).all()
                assert params == masks.sample_params(cfg.mask, rng_for(7, key, "mask"), f["landmarks"][i])
                assert params["kind"] == f["meta/mask_kind"].asstr()[i] == "square"
                assert 16 <= params["side"] <= 64
                assert np.isclose(f["meta/hole_ratio"][i], mask.mean())
                fill = json.loads(f["meta/fill"].asstr()[i])
                assert (apply_fill(f["hr"][i], mask, fill) == f["hr_occluded"][i]).all()
                assert (f["hr"][i][mask == 0] == f["hr_occluded"][i][mask == 0]).all()
                # the LR is the bilinear downsample of the occluded HR, the clean LR of the clean HR
                assert (resize.resize(f["hr_occluded"][i], 16, cfg.resize_rule) == f["lr"][i]).all()
                assert (resize.resize(f["hr"][i], 16, cfg.resize_rule) == f["lr_clean"][i]).all()
                assert f["heatmaps/pu7@16"][i].shape == (7, 16, 16)
                assert (f["heatmaps/fhc4@64"][i].max(axis=(1, 2)) >= 190).all()  # peak >= exp(-1/4): on-grid
                checked += 1
    assert checked == m["totals"]["samples"]


def test_byte_identical_across_workers_and_partitions(sample_build, tmp_path):
    ref, cfg = sample_build
    B.build(SampleSource(), cfg, str(tmp_path / "w2"), workers=2, **QUIET)
    assert hashes(str(tmp_path / "w2")) == hashes(ref)
    parts = tmp_path / "parts"
    for i in range(3):  # a 3-job array, each writing to its own directory
        B.build(SampleSource(), cfg, str(parts / f"p{i}"), workers=1, partition=B.Partition(3, i), **QUIET)
    joined = manifest_fmt.join(str(tmp_path / "joined"), [str(parts / f"p{i}") for i in range(3)])
    assert hashes(str(tmp_path / "joined")) == hashes(ref)
    with open(os.path.join(ref, "manifest.json")) as fh:
        assert joined == json.load(fh)  # the joined manifest is the one-run manifest
    assert manifest_fmt.verify(str(tmp_path / "joined")) == []


def test_two_workers_split_one_shard_into_pieces_and_write_the_same_bytes(sample_build, tmp_path):
    """One 101-record shard: both workers take pieces of it, and the shard is the one-worker shard."""
    ref, cfg = sample_build
    one = BuildConfig(shard_size=256, fill=cfg.fill, heatmaps=cfg.heatmaps, seed=cfg.seed)
    B.build(SampleSource(), one, str(tmp_path / "w1"), workers=1, **QUIET)
    assert len(B.pieces([0], B.plan(SampleSource(), one), SampleSource())) > 2
    B.build(SampleSource(), one, str(tmp_path / "w2"), workers=2, **QUIET)
    assert hashes(str(tmp_path / "w2")) == hashes(str(tmp_path / "w1"))


def test_the_manifest_entries_the_writers_report_are_the_shards_read_back(sample_build, tmp_path):
    """Each writer hashes its own shard and reports its entry; they equal what reading the files gives."""
    ref, cfg = sample_build
    small = BuildConfig(shard_size=13, fill=cfg.fill, heatmaps=cfg.heatmaps, seed=cfg.seed)
    for workers in (1, 2):
        out = str(tmp_path / f"w{workers}")
        m = B.build(SampleSource(), small, out, workers=workers, **QUIET)
        assert len(m["shards"]) > 3  # whole shards written by workers and the pieced last ones
        log = []
        for e in m["shards"]:
            entry, rej, _ = manifest_fmt.shard_entry(out, e["index"])
            assert e == entry
            log.extend(rej)
        assert m["rejections"]["log"] == log
        assert manifest_fmt.verify(out) == []


@pytest.mark.parametrize("sizes,workers,expect", [
    ([256] * 4, 2, 3),  # 512 and 256 whole: the last shard's 256 records fill the gap
    ([256, 144], 2, 0),  # one whole shard would leave 112 records of imbalance: both in pieces
    ([256] * 51 + [177], 2, 50),  # LFW: 25 whole shards each, the last two in pieces
    ([256] * 6, 3, 5),
    ([100], 2, 0),
    ([], 2, 0),
])
def test_whole_shards_cuts_as_few_shards_as_balance_the_pool(sizes, workers, expect):
    assert B.whole_shards(sizes, workers) == expect


@pytest.mark.parametrize("seed", range(20))
def test_whole_shards_balance_within_one_piece_whenever_the_earlier_rule_did(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(x) for x in rng.integers(1, 300, rng.integers(1, 12))]
    workers = int(rng.integers(1, 5))
    n = B.whole_shards(sizes, workers)
    assert max(0, len(sizes) - workers) <= n <= max(0, len(sizes) - 1)
    loads = [0] * workers
    for s in sizes[:n]:
        loads[loads.index(min(loads))] += s
    ideal = sum(sizes) / workers
    if n > max(0, len(sizes) - workers):  # more whole shards than before only when the pieces balance them
        assert max(loads) <= ideal + 1e-9


def test_pieces_cover_every_shard_in_order_and_keep_a_photo_whole():
    class Pairs(SampleSource):  # records i and i+1 share a photo, as Helen's x8 variants do
        def photo_key(self, record):
            return str(self._pair[record.key])

    src = Pairs()
    recs = src.records()
    src._pair = {r.key: i // 2 for i, r in enumerate(recs)}
    groups = B.plan(src, BuildConfig(shard_size=37))
    for size in (1, 4, 5, 16):
        got = B.pieces([2, 0], groups, src, size)
        assert [j for j, _, _ in got] == sorted([j for j, _, _ in got], key=[2, 0].index)  # shards in todo order
        for j in (0, 2):
            mine = [(a, rs) for k, a, rs in got if k == j]
            assert [r for _, rs in mine for r in rs] == groups[j]  # all records of the shard, in order, once
            assert [a for a, _ in mine] == [sum(len(rs) for _, rs in mine[:i]) for i in range(len(mine))]
            for (_, x), (_, y) in zip(mine, mine[1:]):
                assert src.photo_key(x[-1]) != src.photo_key(y[0])  # no photo split between pieces
                assert len(x) <= size + 1


def test_a_missing_partition_is_refused(sample_build, tmp_path):
    _, cfg = sample_build
    B.build(SampleSource(), cfg, str(tmp_path / "p0"), workers=1, partition=B.Partition(2, 0), **QUIET)
    with pytest.raises(B.BuildError, match="partitions missing"):
        manifest_fmt.join(str(tmp_path / "p0"))


def test_seed_changes_masks_not_faces(sample_build, tmp_path):
    ref, cfg = sample_build
    other = BuildConfig(**{**cfg.__dict__, "seed": 8})
    B.build(SampleSource(), other, str(tmp_path / "s8"), workers=1, **QUIET)
    with h5py.File(os.path.join(ref, "shards", "shard-00000.h5")) as a, \
            h5py.File(tmp_path / "s8" / "shards" / "shard-00000.h5") as b:
        assert (a["hr"][...] == b["hr"][...]).all()
        assert not (a["mask"][...] == b["mask"][...]).all()


def test_resume_with_another_config_is_refused(sample_build, tmp_path):
    _, cfg = sample_build
    out = str(tmp_path / "b")
    B.build(SampleSource(), cfg, out, workers=1, partition=B.Partition(7, 0), **QUIET)
    with pytest.raises(B.BuildError, match="another config"):
        B.build(SampleSource(), BuildConfig(shard_size=16, seed=99), out, workers=1, partition=B.Partition(7, 0), **QUIET)


def _kill_point_reached(point: str, out, pid: int) -> bool:
    shard_dir = out / "shards"
    if point == "locked":  # planning or building the first shards: the lock is held, nothing written yet
        lock = out / "build.lock"
        return lock.exists() and lock.read_text().strip() == str(pid)
    names = os.listdir(shard_dir) if shard_dir.exists() else []
    if point == "writing":  # a shard is being written under its temporary name
        return any(".tmp" in f for f in names)
    return len([f for f in names if f.endswith(".h5")]) >= 2  # "two_done": mid-build


@pytest.mark.parametrize("point", ["locked", "writing", "two_done"])
def test_kill_9_mid_build_then_resume_gives_identical_bytes(sample_build, tmp_path, point):
    ref, _ = sample_build
    out = tmp_path / "crash"
    cmd = [sys.executable, "-m", "occface_cli.main", "build", "--db", "sample", "--out", str(out), "--workers", "2",
           "--shard-size", "16", "--fill", "noise", "--heatmaps", "fhc4@64,pu7@16", "--seed", "7", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    shard_dir = out / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and not _kill_point_reached(point, out, proc.pid):
        time.sleep(0.001)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: main and workers, no cleanup
    proc.wait()
    done = [f for f in os.listdir(shard_dir) if f.endswith(".h5")]
    assert len(done) < 7, "the kill should land mid-build"
    assert not (out / "manifest.json").exists()
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    if done:
        assert "resuming" in res.stderr
    assert hashes(str(out)) == hashes(ref)
    assert not [f for f in os.listdir(shard_dir) if ".tmp" in f]
    with open(out / "manifest.json") as a, open(os.path.join(ref, "manifest.json")) as b:
        assert json.load(a)["shards"] == json.load(b)["shards"]


def test_verify_catches_a_flipped_byte(sample_build, tmp_path):
    import shutil

    ref, _ = sample_build
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    ok = subprocess.run([sys.executable, "-m", "occface_cli.main", "verify", str(copy)], capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout
    victim = copy / "shards" / "shard-00003.h5"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    bad = subprocess.run([sys.executable, "-m", "occface_cli.main", "verify", str(copy)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "hash mismatch: shards/shard-00003.h5" in bad.stderr


def test_inspect_writes_a_contact_sheet(sample_build, tmp_path):
    ref, _ = sample_build
    png = tmp_path / "sheet.png"
    res = subprocess.run([sys.executable, "-m", "occface_cli.main", "inspect", ref, "--png", str(png), "-n", "6",
                          "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["mask_kinds"] == {"square": summary["totals"]["samples"]}
    sheet = np.asarray(Image.open(png))
    # one sample per row (key, split, mask kind, hole ratio at the left) x five labelled 128 px columns,
    # under a title and two-line headers, above a footer with the units
    assert sheet.ndim == 3 and 6 * 128 < sheet.shape[0] < 6 * 128 + 200 and 5 * 128 + 190 <= sheet.shape[1] < 5 * 128 + 240


# ----------------------------------------------------------------------------- aligned input, padding, hints

@pytest.mark.parametrize("detect,padding", [("aligned", "reflect-blur"), ("hog", "edge")])
def test_aligned_and_padding_modes_are_byte_identical_across_workers(tmp_path, detect, padding):
    """The sample database's LFW faces are tight crops: the aligned mode keeps them, and pads them."""
    from occface.faces.align import AlignConfig
    from occface.faces.detect import DetectConfig

    cfg = BuildConfig(shard_size=25, detect=DetectConfig(detector=detect), align=AlignConfig(padding=padding))
    one = B.build(SampleSource(lfw_faces=40), cfg, str(tmp_path / "w1"), workers=1, **QUIET)
    B.build(SampleSource(lfw_faces=40), cfg, str(tmp_path / "w2"), workers=2, **QUIET)
    assert hashes(str(tmp_path / "w1")) == hashes(str(tmp_path / "w2"))
    meta = shards.read_meta(os.path.join(tmp_path / "w1", one["shards"][0]["file"]))
    assert set(meta["detector"]) == {detect}
    assert (meta["pad_fraction"] > 0).mean() > 0.5  # tight crops: most samples reach past the photo
    if detect == "aligned":
        assert one["totals"]["samples"] >= 39  # 40 LFW faces and the astronaut


def test_many_missing_faces_print_a_hint_after_build_and_in_inspect(tmp_path, lfw_faces):
    from click.testing import CliRunner

    from occface_cli.main import main

    from occface.faces.detect import DetectConfig, detect_faces

    found = [f for f in lfw_faces[:20] if detect_faces(f, DetectConfig(), landmarks=False)]
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(8):
        Image.fromarray(found[i]).save(root / f"face{i}.png")
    for i in range(2):  # 2 of 10 photos without a face: 20 %
        Image.fromarray(np.full((120, 120, 3), 60 + 40 * i, np.uint8)).save(root / f"wall{i}.png")
    runner = CliRunner()
    res = runner.invoke(main, ["build", "--db", "folder", "--root", str(root), "--out", str(tmp_path / "b"),
                               "--workers", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    hint = [ln for ln in res.output.splitlines() if ln.startswith("NOTE")]
    assert len(hint) == 1 and "2 of 10 photos (20%)" in hint[0]
    assert "--detector hog+cnn" in hint[0] and "--aligned" in hint[0]
    res = runner.invoke(main, ["inspect", str(tmp_path / "b"), "--png", str(tmp_path / "s.png")])
    assert res.exit_code == 0 and hint[0] in res.output
    # one wall in ten is not "many"
    (root / "wall1.png").unlink()
    Image.fromarray(found[9]).save(root / "face9.png")
    res = runner.invoke(main, ["build", "--db", "folder", "--root", str(root), "--out", str(tmp_path / "c"),
                               "--workers", "1", "--no-progress"])
    assert res.exit_code == 0 and "NOTE" not in res.output
    from occface.build.summary import missing_faces

    assert missing_faces(manifest_fmt.load_manifest(str(tmp_path / "c"))) is None
    assert missing_faces(manifest_fmt.load_manifest(str(tmp_path / "b")))["fraction"] == 0.2


def test_aligned_flag_refuses_another_detector(tmp_path):
    from click.testing import CliRunner

    from occface_cli.main import main

    res = CliRunner().invoke(main, ["build", "--db", "sample", "--out", str(tmp_path / "x"), "--aligned",
                                    "--detector", "hog+cnn"])
    assert res.exit_code != 0 and "--aligned runs no detector" in res.output
