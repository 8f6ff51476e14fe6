"""The aligned-input mode and the padding modes, on real faces cropped in the test."""

import numpy as np
import pytest

from occface.bench.crops import crop_box, darken_side, tight_crop
from occface.bench.landmarks import nrmse
from occface.build import BuildConfig, process_record
from occface.db.base import Record
from occface.faces import aligned
from occface.faces.align import (FADE_DISTANCE, PADDING_MODES, AlignConfig, align_crop, alignment_matrix,
                                 outside_distance, padding_mask)
from occface.faces.detect import DetectConfig, detect_faces
from occface.seeding import rng_for

from .test_detect import ArraySource

ALIGNED = DetectConfig(detector="aligned")


@pytest.fixture(scope="module")
def crops(astronaut, lfw_faces):
    """Tight crops of real faces, cut around dlib's box on the full photo, one side darkened: (crop, landmarks
    found on the full photo, in crop pixels)."""
    out = [tight_crop(astronaut, "astronaut", darken=True)]
    for i in range(12):  # the sample LFW faces, framed larger first so the crop is cut from a real photo
        photo = np.ascontiguousarray(np.pad(lfw_faces[i], ((40, 40), (40, 40), (0, 0)), mode="edge"))
        got = tight_crop(photo, f"lfw{i}", darken=True)
        if got is not None:
            out.append(got)
    assert len(out) >= 11
    return [(c, lm) for c, lm, _, _ in out]


def test_crop_recipe_is_reproducible(astronaut):
    a = tight_crop(astronaut, "astronaut", darken=True, seed=3)
    b = tight_crop(astronaut, "astronaut", darken=True, seed=3)
    assert np.array_equal(a[0], b[0]) and a[3] == b[3]
    x0, y0, x1, y1 = a[3]["box"]
    face = detect_faces(astronaut, DetectConfig(), landmarks=False)[0]
    assert (x0, y0, x1, y1) == crop_box(face.box, astronaut.shape) and a[0].shape == (y1 - y0, x1 - x0, 3)
    dark, params = darken_side(astronaut, rng_for(3, "astronaut", "crop-light"))
    cols = dark.reshape(512, 512, 3).astype(float).mean(axis=(0, 2)) / astronaut.astype(float).mean(axis=(0, 2))
    dim = cols[:40].mean() if params["dark_side"] == "left" else cols[-40:].mean()
    assert dim < 0.15 and cols[256 - 5 : 256 + 5].mean() > dim  # one side in shadow


def test_aligned_keeps_tight_dark_crops_with_the_full_photo_landmarks(crops):
    """No detector: the landmarks found from the frame agree with those found on the full photo."""
    errs = []
    for crop, ref in crops:
        box, lm, tracking, failed = aligned.locate(crop, ALIGNED.aligned_box, ALIGNED.aligned_refine)
        assert failed is None, failed
        errs.append(nrmse(lm.astype(np.float64), ref))
    assert np.median(errs) < 6.0 and max(errs) < 12.0, errs


def test_aligned_builds_samples_recording_the_mode(crops):
    crop, _ = crops[0]
    src = ArraySource({"crop.png": crop})
    got, rej = process_record(Record(key="arrays:crop.png", source="crop.png"), src, BuildConfig(detect=ALIGNED))
    assert rej is None and len(got) == 1
    meta = got[0]["meta"]
    assert meta["detector"] == "aligned" and meta["det_upsample"] == 0 and meta["det_scale"] == 1.0
    assert meta["det_score"] == 1.0  # no tracking probe by default
    assert got[0]["hr"].shape == (128, 128, 3) and 0.0 < meta["pad_fraction"] < 1.0  # a tight crop is padded


def test_implausible_frames_are_rejected_with_a_reason(crops):
    crop, _ = crops[0]
    cfg = BuildConfig(detect=ALIGNED)

    def reject(img, c=cfg):
        got, rej = process_record(Record(key="arrays:x.png", source="x.png"), ArraySource({"x.png": img}), c)
        assert got == []
        return rej["reason"], rej["detail"].split(":")[0]

    assert reject(np.full((150, 130, 3), 128, np.uint8)) == ("implausible_landmarks", "contrast")
    wide = np.ascontiguousarray(np.pad(crop, ((0, 0), (3 * crop.shape[1], 3 * crop.shape[1]), (0, 0)), mode="edge"))
    assert reject(wide) == ("implausible_landmarks", "eye_distance")  # a face in a panorama is no aligned crop
    # the opt-in tracking probe: the points of a real face stay put when the box moves, a cat's do not
    from skimage import data

    probe = BuildConfig(detect=DetectConfig(detector="aligned", aligned_tracking=0.75))
    assert reject(np.ascontiguousarray(data.chelsea()[50:250, 100:280]), probe) == ("implausible_landmarks", "tracking")


def test_each_plausibility_check_on_moved_real_landmarks(crops):
    crop, _ = crops[0]
    _, lm, _, _ = aligned.locate(crop, ALIGNED.aligned_box, ALIGNED.aligned_refine)
    lm = lm.astype(np.float64)
    shape = crop.shape
    assert aligned.check(lm, shape) is None
    c = lm.mean(axis=0)
    t = np.radians(45)
    rot = (lm - c) @ np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]]) + c
    assert aligned.check(rot, shape)[0] == "roll"
    flipped = lm.copy()
    flipped[:, 1] = 2 * c[1] - flipped[:, 1]  # upside down: the mouth above the eyes
    assert aligned.check(flipped, shape)[0] == "layout"
    assert aligned.check(lm + (shape[1] * 0.6, 0), shape)[0] == "inside"
    assert aligned.check(c + (lm - c) * 0.2, shape)[0] == "eye_distance"
    assert aligned.check(lm, shape, tracking=0.9, max_tracking=0.75)[0] == "tracking"
    assert aligned.check(lm, shape, spread=3.0)[0] == "contrast"


def test_aligned_box_rule_and_refinement():
    box = aligned.frame_box((192, 168, 3), (0.85, 0.5, 0.54))
    side = box[2] - box[0] + 1
    assert side == pytest.approx(0.85 * 168) and (box[0] + box[2]) / 2 == pytest.approx(83.5)
    assert (box[1] + box[3]) / 2 == pytest.approx(0.54 * 192 - 0.5)
    with pytest.raises(ValueError, match="aligned_box"):
        DetectConfig(detector="aligned", aligned_box=(2.0, 0.5, 0.5))
    with pytest.raises(ValueError, match="aligned mode"):
        detect_faces(np.zeros((100, 100, 3), np.uint8), ALIGNED)


# ----------------------------------------------------------------------------- padding modes

def _tight(astronaut):
    face = detect_faces(astronaut, DetectConfig())[0]
    crop = np.ascontiguousarray(astronaut[60:200, 160:290])
    return crop, face.landmarks - (160, 60)


@pytest.mark.parametrize("margin", [0.2, 0.5])
def test_padding_modes_differ_only_in_the_padded_pixels(astronaut, margin):
    crop, lm = _tight(astronaut)
    outs = {}
    for mode in PADDING_MODES:
        cfg = AlignConfig(padding=mode, margin=margin)
        m = alignment_matrix(lm, cfg)
        outs[mode], _, frac = align_crop(crop, m, cfg)
        pad = padding_mask(crop.shape, m, cfg)
        assert frac == pytest.approx(pad.mean()) and 0.2 < frac < 0.9  # the tight crop leaves much to fill
    ref = outs["reflect"]
    for mode in ("reflect-blur", "edge", "constant"):
        changed = (outs[mode] != ref).any(axis=2)
        assert not (changed & ~pad).any(), mode  # nothing outside the padding moved
        assert changed.sum() > 0.9 * pad.sum(), mode  # and the padding did
    assert (outs["constant"][pad] == 0).mean() > 0.9


def test_reflect_blur_fades_to_the_median_colour(astronaut):
    crop, lm = _tight(astronaut)
    cfg = AlignConfig(padding="reflect-blur", margin=0.5)
    m = alignment_matrix(lm, cfg)
    out, _, _ = align_crop(crop, m, cfg)
    sharp, _, _ = align_crop(crop, m, AlignConfig(padding="reflect", margin=0.5))
    pad = padding_mask(crop.shape, m, cfg)
    median = np.median(sharp[~pad].astype(float), axis=0)
    # crop pixels at least 0.3 x 128 crop pixels outside the photo are the flat median colour ...
    far = outside_distance(m, crop.shape, 128) * np.sqrt(abs(np.linalg.det(m[:, :2]))) >= FADE_DISTANCE * 128
    assert far.sum() > 500
    assert np.abs(out[far].astype(float) - median).max() <= 0.5 + 1e-9
    assert sharp[far].astype(float).std(axis=0).max() > 5  # ... where the mirror copies had texture
    # and the blur blends in: no pixel of the padding is further from its neighbours than in the mirror copy
    near = pad & ~far
    assert np.abs(np.diff(out.astype(float), axis=1))[near[:, 1:]].mean() < \
        np.abs(np.diff(sharp.astype(float), axis=1))[near[:, 1:]].mean()


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 1001])
def test_histogram_median_equals_numpy(n):
    from occface.faces.align import median_u8

    v = np.random.default_rng(n).integers(0, 256, (n, 3), dtype=np.uint8)
    assert np.array_equal(median_u8(v), np.median(v, axis=0))


def test_a_crop_inside_the_photo_has_no_padding(astronaut):
    face = detect_faces(astronaut, DetectConfig())[0]
    cfg = AlignConfig(padding="reflect-blur")
    m = alignment_matrix(face.landmarks, cfg)
    out, _, frac = align_crop(astronaut, m, cfg)
    assert frac == 0.0 and not padding_mask(astronaut.shape, m, cfg).any()
    assert np.array_equal(out, align_crop(astronaut, m, AlignConfig())[0])
    with pytest.raises(ValueError, match="padding"):
        AlignConfig(padding="mirror")


@pytest.mark.parametrize("seed", range(3))
def test_grey_spread_is_numpys_percentile_difference(crops, seed):
    """The histogram read-out equals np.percentile (linear) bit for bit: colour, grey, odd sizes, flat regions."""
    rng = rng_for(seed, "grey-spread", "test")
    cases = [c[0] for c in crops]
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 41, 2))
        shape = (h, w, 3) if rng.random() < 0.5 else (h, w)
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        if rng.random() < 0.2:
            img[:] = rng.integers(0, 256)
        cases.append(img)
    for img in cases:
        h, w = img.shape[:2]
        x0, y0 = rng.uniform(-5, w / 2), rng.uniform(-5, h / 2)
        box = (x0, y0, x0 + rng.uniform(0, w + 5), y0 + rng.uniform(0, h + 5))
        r = img[max(0, int(np.floor(box[1]))):min(h, int(np.ceil(box[3])) + 1),
                max(0, int(np.floor(box[0]))):min(w, int(np.ceil(box[2])) + 1)]
        if r.size == 0:
            assert aligned.grey_spread(img, box) == 0.0
            continue
        grey = r.mean(axis=2) if r.ndim == 3 else r
        lo, hi = np.percentile(grey, [2, 98])
        assert aligned.grey_spread(img, box) == float(hi - lo)


@pytest.mark.parametrize("seed", range(3))
def test_outside_mask_is_where_the_distance_is_positive(seed):
    from occface.faces.align import outside_mask

    rng = rng_for(seed, "outside-mask", "test")
    for _ in range(40):
        shape = tuple(int(v) for v in rng.integers(20, 300, 2))
        a = rng.uniform(-np.pi, np.pi)
        s = rng.uniform(0.3, 3.0)
        m = np.array([[s * np.cos(a), -s * np.sin(a), rng.uniform(-200, 100)],
                      [s * np.sin(a), s * np.cos(a), rng.uniform(-200, 100)]])
        d, pad = outside_distance(m, shape, 37), outside_mask(m, shape, 37)
        assert (d is None) == (pad is None)
        if d is not None:
            assert np.array_equal(pad, d > 0)
