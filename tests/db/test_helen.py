"""Helen adapter: names and annotations, official / paper splits, x8 augmentation, choosing the annotated face."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from tests.db._faces import astronaut_head, beside, lfw_face, place, save, touch
from occface import build as build_mod
from occface import masks
from occface.faces import resize
from occface.format import shards
from occface.build import BuildConfig
from occface.db.augment import VARIANTS, augment_image, augment_points, point_matrix
from occface.db.helen import HelenSource, pick_annotated, read_annotation
from occface.db.protocols import PartialCopyWarning
from occface.faces.detect import DetectConfig, detect_faces

SMALL = (459.0, 163.0, 546.0, 250.0)  # astronaut's face box on the two-face photo
BIG = (20.0, 100.0, 240.0, 320.0)  # region of the large LFW face


def two_faces() -> np.ndarray:
    """A large LFW face (left) and the astronaut's smaller face (right) in one photo."""
    return place((420, 700), [(lfw_face(0, 220), 20, 100), (astronaut_head(), 400, 100)])


def ellipse(box, n=194):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + 0.55 * (box[2] - box[0]) * np.cos(t), cy + 0.6 * (box[3] - box[1]) * np.sin(t)], 1)


def write_annotation(path, name, pts):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(name + "\n")
        fh.writelines(f"{x:.3f} , {y:.3f}\n" for x, y in pts)


def write_names(root, train, test):
    (root / "trainnames.txt").write_text("".join(f"{n}\n" for n in train))
    (root / "testnames.txt").write_text("".join(f"{n}\r\n" for n in test))  # CRLF copies exist


def quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialCopyWarning)
        return fn(*a, **k)


def test_names_and_annotation_parsing(tmp_path):
    write_annotation(str(tmp_path / "annotation" / "1.txt"), "100032540_1", [(1.5, 2.25), (3, 4)])
    name, pts = read_annotation(str(tmp_path / "annotation" / "1.txt"))
    assert name == "100032540_1" and pts.tolist() == [[1.5, 2.25], [3.0, 4.0]]


def test_official_and_paper_counts(tmp_path):
    train = [f"{1000 + i}_1" for i in range(2000)]
    test = [f"{9000 + i}_1" for i in range(330)]
    write_names(tmp_path, train, [n + ".jpg" for n in test])
    for n in train[:3]:
        touch(str(tmp_path / "helen_1" / f"{n}.jpg"))
    for n in test[:2] + test[-1:]:
        touch(str(tmp_path / "helen_5" / f"{n}.jpg"))
    off = HelenSource(root=str(tmp_path), split="official")
    with pytest.warns(PartialCopyWarning, match="2324 listed images not found"):
        recs = off.records()
    cov = off.describe()["coverage"]
    assert cov["listed"] == {"train": 2000, "test": 330} == cov["expected"]
    assert {r.source: r.split for r in recs}["helen_5/9329_1.jpg"] == "test"
    paper = HelenSource(root=str(tmp_path), split="paper", augment="x8")
    precs = quiet(paper.records)
    d = paper.describe()
    assert d["coverage"]["listed"] == {"train": 2280, "test": 50} and d["protocol"]["version"] == 1
    # the first 50 test names (sorted) stay test; 9329_1 moves to train and is augmented x8
    assert d["counts"]["photos"] == {"test": 2, "train": 4} and d["counts"]["train"] == 4 * 8
    aug = sorted(r.key for r in precs if r.source == "helen_5/9329_1.jpg")
    assert aug[0] == "helen:helen_5/9329_1.jpg" and aug[1:] == sorted(f"helen:helen_5/9329_1.jpg|{v}" for v in VARIANTS[1:])
    assert [r.key for r in precs] == sorted(r.key for r in precs)
    assert {r.meta["augmentation"] for r in precs if r.split == "test"} == {"none"}


def test_wrong_root(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no trainnames\.txt or testnames\.txt under .*found: photos"):
        HelenSource(root=str(tmp_path))
    with pytest.raises(ValueError, match="split must be one of"):
        write_names(tmp_path, ["a_1"], [])
        HelenSource(root=str(tmp_path), split="2000")


def test_augment_points_match_images():
    rng = np.random.default_rng(0)
    img = np.zeros((128, 128), np.uint8)
    pts = rng.integers(0, 128, size=(68, 2))
    img[pts[:, 1], pts[:, 0]] = np.arange(1, 69)
    for v in VARIANTS:
        out = augment_image(img, v)
        moved = augment_points(pts.astype(float), v, 128)
        ids = out[np.rint(moved[:, 1]).astype(int), np.rint(moved[:, 0]).astype(int)]
        assert set(ids.tolist()) == set(range(1, 69))  # every point lands on its pixel
        assert np.allclose(point_matrix(v, 128)[2], [0, 0, 1])


def test_pick_annotated_face_real_detection():
    faces = detect_faces(two_faces(), DetectConfig())
    assert len(faces) >= 2 and faces[0].box[0] < 300  # the largest is the LFW face
    (small,) = pick_annotated(faces, ellipse(SMALL))
    assert small.box[0] > 400
    (big,) = pick_annotated(faces, ellipse(BIG))
    assert big.box[0] < 300
    assert pick_annotated(faces, ellipse((300, 10, 380, 90))) == []


@pytest.mark.slow
def test_build_x8_and_annotated_face(tmp_path):
    photo = two_faces()
    for name, folder in (("111_1", "helen_1"), ("222_1", "helen_5"), ("333_1", "helen_5")):
        save(str(tmp_path / folder / f"{name}.jpg"), photo, quality=95)
    write_annotation(str(tmp_path / "annotation" / "1.txt"), "111_1", ellipse(SMALL))
    write_annotation(str(tmp_path / "annotation" / "2.txt"), "222_1", ellipse(BIG))
    write_annotation(str(tmp_path / "annotation" / "3.txt"), "333_1", ellipse((300, 10, 380, 90)))
    write_names(tmp_path, ["111_1"], ["222_1", "333_1"])
    src = HelenSource(root=str(tmp_path), split="official", augment=True)
    cfg = BuildConfig(shard_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialCopyWarning)
        m = build_mod.build(src, cfg, str(beside(tmp_path, "out")), workers=1, progress=False, log=lambda s: None)
    assert m["totals"]["splits"] == {"test": 1, "train": 8}
    (rej,) = m["rejections"]["log"]
    assert rej["reason"] == "annotated_face_not_found" and rej["path"] == "helen_5/333_1.jpg"
    path = str(beside(tmp_path, "out") / "shards" / "shard-00000.h5")
    meta = shards.read_meta(path)
    import h5py

    with h5py.File(path) as f:
        hr, hr_occ, mask, lr = f["hr"][...], f["hr_occluded"][...], f["mask"][...], f["lr"][...]
        lm = f["landmarks"][...]
        heat = f["heatmaps/fhc4@64"][...]
    aug = list(meta["augmentation"])
    assert sorted(a for a, s in zip(aug, meta["split"]) if s == "train") == sorted(VARIANTS)
    test_i = list(meta["split"]).index("test")
    assert meta["det_box"][test_i][0] < 300 and meta["annotation"][test_i] == "annotation/2.txt"  # big face
    base = aug.index("none")
    assert meta["det_box"][base][0] > 400  # the annotated (smaller) face, not the largest
    from occface.faces import heatmaps

    for i, v in enumerate(aug):
        if meta["split"][i] != "train":
            continue
        assert np.array_equal(hr[i], augment_image(hr[base], v)), v
        assert np.allclose(lm[i], augment_points(lm[base], v, 128), atol=1e-3), v
        params = __import__("json").loads(meta["mask_params"][i])
        assert np.array_equal(mask[i], augment_image(masks.render(params, 128), v)), v
        assert np.array_equal(lr[i], resize.resize(hr_occ[i][None], 16, "bilinear-aa")[0]), v
        ref = heatmaps.to_uint8(heatmaps.render(lm[i], "fhc4", 64, 1.0, frame=128))
        assert np.array_equal(heat[i], ref), v
    # a flip mirrors the landmark indices: the image-left eye stays 36..41
    f = aug.index("flip")
    assert lm[f][36:42, 0].mean() < lm[f][42:48, 0].mean()
    # the eight variants share one decode + detection (Source.photo_key); sharing changes no byte
    from occface.db.base import Source

    class NoSharing(HelenSource):
        def photo_key(self, record):
            return Source.photo_key(self, record)

    calls = {"n": 0}
    from occface.build import sample as build_sample

    real_detect = build_sample.detect_faces

    def counting_detect(*a, **k):
        calls["n"] += 1
        return real_detect(*a, **k)

    build_sample.detect_faces = counting_detect
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PartialCopyWarning)
            build_mod.build(src, cfg, str(beside(tmp_path, "shared")), workers=1, progress=False, log=lambda s: None)
            shared_calls, calls["n"] = calls["n"], 0
            build_mod.build(NoSharing(root=str(tmp_path), split="official", augment=True), cfg,
                            str(beside(tmp_path, "unshared")), workers=1, progress=False, log=lambda s: None)
    finally:
        build_sample.detect_faces = real_detect
    assert shared_calls == 3 and calls["n"] == 10  # 3 photos vs 8 train variants + 2 test photos
    a = (beside(tmp_path, "shared") / "shards" / "shard-00000.h5").read_bytes()
    b = (beside(tmp_path, "unshared") / "shards" / "shard-00000.h5").read_bytes()
    assert a == b
