"""Alignment, heatmaps and the downsampling rule, on real faces with real dlib."""

import numpy as np
import pytest
import torch

from occface.faces import heatmaps, resize
from occface.faces.align import AlignConfig, alignment_matrix, anchors, fit_similarity, template_points, transform_points, warp
from occface.faces.detect import DetectConfig, detect_faces


def _aligned(rgb, cfg=AlignConfig()):
    faces = detect_faces(rgb, DetectConfig())
    assert faces, "dlib found no face"
    m = alignment_matrix(faces[0].landmarks, cfg)
    crop, _ = warp(rgb, m, cfg)
    return crop, transform_points(m, faces[0].landmarks), m


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 200, (5, 2))
    ang, s, t = 0.3, 0.47, np.array([12.5, -3.0])
    R = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    m = fit_similarity(src, src @ R.T + t)
    assert np.allclose(m[:, :2], R, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-8)


def test_eye_centres_land_on_the_template_astronaut(astronaut):
    cfg = AlignConfig()
    crop, lm, _ = _aligned(astronaut, cfg)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    eyes_t = template_points(cfg)[:2]
    eyes = anchors(lm)[:2]
    assert np.abs(eyes - eyes_t).max() < 3.0
    # independent check: dlib run again on the aligned crop finds an upright face with the eyes on the row
    # (padded, because HOG needs context around a face that fills its frame)
    padded = np.pad(crop, ((64, 64), (64, 64), (0, 0)), mode="edge")
    again = detect_faces(padded, DetectConfig(hog_upsample=(1,)))
    assert again
    eyes_again = anchors(again[0].landmarks)[:2] - 64
    assert np.abs(eyes_again[:, 1] - eyes_t[:, 1]).max() < 4.0  # on the template's eye row
    assert eyes_again[0, 0] < 64 < eyes_again[1, 0]  # either side of the centre line


def test_eye_row_is_level_and_spacing_fixed_on_lfw(lfw_faces):
    cfg = AlignConfig()
    eyes_t = template_points(cfg)[:2]
    errors = []
    for face in lfw_faces[:30]:
        faces = detect_faces(face, DetectConfig())
        if not faces:
            continue
        lm = transform_points(alignment_matrix(faces[0].landmarks, cfg), faces[0].landmarks)
        errors.append(np.abs(anchors(lm)[:2] - eyes_t).max())
    assert len(errors) >= 25
    assert np.median(errors) < 2.0 and max(errors) < 5.0


def test_prefilter_kicks_in_only_when_shrinking_more_than_2x(astronaut):
    big = np.ascontiguousarray(np.repeat(np.repeat(astronaut, 3, axis=0), 3, axis=1))  # 1536 px, face ~270 px
    cfg = AlignConfig()
    _, _, m_small = _aligned(astronaut, cfg)
    crop_small, k_small = warp(astronaut, m_small, cfg)
    m_big = m_small @ np.array([[1 / 3, 0, -1 / 3], [0, 1 / 3, -1 / 3], [0, 0, 1]])
    crop_big, k_big = warp(big, m_big, cfg)
    assert k_small == 1 and k_big >= 2
    assert np.abs(crop_big.astype(int) - crop_small).mean() < 6  # same face, same place


@pytest.mark.parametrize("spec", ["all68@64", "pu7@16", "pu42@32", "fhc4@64", "parts5@48", "all68@37"])
def test_heatmap_peaks_sit_on_the_landmarks(astronaut, spec):
    _, lm, _ = _aligned(astronaut)
    name, size = heatmaps.parse_spec(spec)
    h = heatmaps.render(lm, name, size, sigma=1.0)
    assert h.shape == (heatmaps.channels(name), size, size) and h.dtype == np.float32
    assert h.max() <= 1.0 and h.min() >= 0.0
    for c, members in enumerate(heatmaps.GROUPINGS[name]):
        yx = np.unravel_index(np.argmax(h[c]), h[c].shape)
        pts = (lm[members] + 0.5) * size / 128 - 0.5
        inside = (pts >= 0).all(1) & (pts <= size - 1).all(1)
        if not inside.any():
            continue
        d = np.hypot(pts[:, 0] - yx[1], pts[:, 1] - yx[0]).min()
        assert d <= 0.75, (spec, c, d)  # the argmax pixel is the one nearest a member point


@pytest.mark.parametrize("shape, out", [((128, 128, 3), 16), ((97, 131, 3), (13, 20)), ((50, 50), 7)])
def test_resize_equals_torch_bilinear_antialias(shape, out):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    got = resize.resize(img, out)
    hw = (out, out) if isinstance(out, int) else out
    t = torch.from_numpy(img.reshape(*img.shape[:2], -1)).permute(2, 0, 1)[None].double()
    ref = torch.nn.functional.interpolate(t, size=hw, mode="bilinear", antialias=True, align_corners=False)
    ref = ref[0].permute(1, 2, 0).numpy().reshape(got.shape)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 0.5 + 1e-6  # i.e. exactly the rounded torch result


def test_plain_bilinear_rule_matches_two_tap_sampling():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    got = resize.resize(img, 16, "bilinear")
    # at exactly 8x each LR pixel is the mean of the 2x2 HR block at its centre (pixels 8i+3, 8i+4)
    blocks = img.astype(float)[3::8][:16, :, :][:, 3::8][:, :16]
    nxt = img.astype(float)[4::8][:16][:, 4::8][:, :16]
    a = img.astype(float)[3::8][:16][:, 4::8][:, :16]
    b = img.astype(float)[4::8][:16][:, 3::8][:, :16]
    assert np.abs(got - np.rint((blocks + nxt + a + b) / 4)).max() <= 1


@pytest.mark.parametrize("spec", ["all68@64", "pu7@16", "pu42@32", "fhc4@64", "parts5@37"])
@pytest.mark.parametrize("sigma", [0.6, 1.0, 1.7])
def test_windowed_uint8_heatmaps_equal_the_full_render(spec, sigma):
    """The fast stored-heatmap path is bit-identical to quantising the exact render, landmarks off-frame included."""
    rng = np.random.default_rng(11)
    name, size = heatmaps.parse_spec(spec)
    for _ in range(40):
        lm = rng.uniform(-12, 140, (68, 2))
        exact = heatmaps.to_uint8(heatmaps.render(lm, name, size, sigma))
        assert (heatmaps.render_uint8(lm, name, size, sigma) == exact).all()
