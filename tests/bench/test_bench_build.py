"""``occface bench build`` on a few real faces: variants, accuracy against .pts truth, tight crops."""

import numpy as np
import pytest
from PIL import Image

from occface.bench import build as bb
from occface.bench.landmarks import read_pts
from occface.faces.detect import DetectConfig, detect_faces, with_landmarks


def _write_pts(path, pts, header=True):
    rows = "\n".join(f"{x + 1:.3f} {y + 1:.3f}" for x, y in pts)  # 1-based, as 300-W writes them
    path.write_text(f"version: 1\nn_points: 68\n{{\n{rows}\n}}\n" if header else rows + "\n")


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, lfw_faces):
    """Six real faces framed in larger photos, each with a .pts file of dlib's own landmarks."""
    root = tmp_path_factory.mktemp("annotated")
    n = 0
    for i, face in enumerate(lfw_faces[:12]):
        photo = np.ascontiguousarray(np.pad(face, ((30, 30), (30, 30), (0, 0)), mode="edge"))
        faces = detect_faces(photo, DetectConfig(), landmarks=False)
        if not faces:
            continue
        Image.fromarray(photo).save(root / f"p{i:02d}.png")
        _write_pts(root / f"p{i:02d}.pts", with_landmarks(photo, faces[0]).landmarks, header=n % 2 == 0)
        n += 1
        if n == 6:
            break
    (root / "notes.txt").write_text("not a photo: skipped when scoring against .pts\n")
    return root


def test_read_pts_both_forms(annotated):
    a, b = read_pts(str(annotated / "p00.pts")), sorted(annotated.glob("*.pts"))[1]
    assert a.shape == (68, 2) and read_pts(str(b)).shape == (68, 2)
    (annotated / "bad.pts").write_text("1 2\n")
    with pytest.raises(ValueError, match="68 points"):
        read_pts(str(annotated / "bad.pts"))
    (annotated / "bad.pts").unlink()


def test_bench_scores_variants_against_the_truth(annotated, tmp_path):
    res = bb.run(str(annotated), limit=50, workers=[1, 2], rounds=1, scratch=str(tmp_path), log=lambda s: None,
                 truth="pts", variants=("detect-max-side-0", "reflect-blur"), chunk=4,  # two chunks, 4 + 2 photos
                 degrade=(), profile=5)
    assert len(res["profile_ms_per_photo"]) == 5 and all(ms > 0 for _, ms, _ in res["profile_ms_per_photo"])
    assert res["photos"] == 6 and set(res["variants"]) == {"detect-max-side-0", "reflect-blur"}
    assert res["chunk"] == 4 and res["speedup_1_to_2_workers"] > 0 and set(res["pipeline_ms_per_photo"]) == {1, 2}
    acc = res["accuracy"]["truth"]["per_config"]
    for name in ("default", "detect-max-side-0", "reflect-blur"):
        # the truth is dlib's own landmarks: every face found, the same points (float32 rounding only)
        assert acc[name]["rate_pct"] == 100.0 and acc[name]["nrmse_mean"] < 0.01, (name, acc[name])
    assert res["accuracy"]["truth"]["nrmse_on_common_photos"]["photos"] == 6


def test_bench_on_tight_crops_compares_aligned_with_the_detectors(annotated, tmp_path):
    res = bb.run(str(annotated), limit=50, workers=[1], rounds=1, scratch=str(tmp_path), log=lambda s: None,
                 truth="pts", crops="tight-dark", variants=("aligned",), degrade=())
    assert res["photos"] == 6 and res["crops"]["skipped"] == 0
    assert set(res["accuracy"]) == {"full-photo", "truth"}
    # the truth here is the full photo's own landmarks: the full-photo run scores 0 against it
    assert res["accuracy"]["truth"]["full_photo_run_nrmse_mean"] < 0.01
    assert set(res["accuracy"]["truth"]["minus_full_photo_run"]) == {"default", "aligned"}
    got = res["accuracy"]["full-photo"]["per_config"]["aligned"]
    assert got["rate_pct"] == 100.0 and got["nrmse_mean"] < 10.0
    with pytest.raises(ValueError, match="unknown variant"):
        bb.run(str(annotated), variants=("nope",))


def test_the_photo_subset_skips_annotation_files_beside_the_photos(annotated, tmp_path):
    """A 300-W-style folder alternates photo.png / photo.pts: --limit N means N photos, with or
    without --truth."""
    for with_pts in (False, True):
        dest = tmp_path / f"sub{int(with_pts)}"
        files = bb._subset(str(annotated), 4, str(dest), with_pts=with_pts)
        assert len(files) == 4 and all(f.endswith(".png") for f in files)
        assert sorted(p.name for p in dest.iterdir()) == sorted(files)
