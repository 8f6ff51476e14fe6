"""Occluders (occface.masks.occluders) on real faces: placement from the landmarks, pose, ratios, purity."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from occface import masks
from occface.masks import OccluderMask, occluders
from occface.masks.occluders import face_frame

SIZE = 128
EYES = list(range(36, 48))
MOUTH = list(range(48, 68))
# documented in docs/masks.md: hole ratio (mask = alpha > 0.5) of each object on the sample faces
RATIO = {"sunglasses": (0.03, 0.13), "eyeglasses": (0.005, 0.05), "face_mask": (0.12, 0.28), "scarf": (0.12, 0.36),
         "hand": (0.04, 0.28), "hair": (0.03, 0.42), "object": (0.01, 0.2)}


def _aligned(photo, upsample=1):
    """dlib 68 points of the largest face in ``photo``, in the 128 crop of occface's template; None if none."""
    from occface.faces import align, dlib_models

    dets = sorted(dlib_models.hog_detector()(photo, upsample), key=lambda r: -r.area())
    if not dets:
        return None
    shape = dlib_models.shape_predictor68()(photo, dets[0])
    lm = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
    cfg = align.AlignConfig(size=SIZE)
    m = align.alignment_matrix(lm, cfg)
    return align.transform_points(m, lm).astype(np.float32), align.warp(photo, m, cfg)[0]


@pytest.fixture(scope="module")
def faces(astronaut, lfw_faces):
    """Real aligned faces of the sample database: (landmarks, hr).  The astronaut first, then 99 LFW faces."""
    out = [f for f in (_aligned(img, 0) for img in [astronaut] + list(lfw_faces[:99])) if f is not None]
    assert len(out) >= 80
    return out


@pytest.fixture(scope="module")
def yawed(faces):
    """The sample faces turned furthest from frontal (|yaw| >= 0.5: about 20-30 degrees)."""
    out = [f for f in faces if abs(face_frame(f[0]).yaw) >= 0.5]
    assert len(out) >= 5
    return out


@pytest.fixture(scope="module")
def rotated(astronaut):
    """The astronaut photo turned 25 degrees, through detection and alignment; and her aligned crop itself
    turned 25 degrees in the 128 frame (landmarks with it): the occluders must roll with the face."""
    turn = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
    photo = cv2.warpAffine(astronaut, turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    via_photo = _aligned(photo)
    assert via_photo is not None
    lm, hr = _aligned(astronaut)
    crop_turn = cv2.getRotationMatrix2D((64, 64), 25, 1.0)
    lm2 = (np.c_[lm, np.ones(68)] @ crop_turn.T).astype(np.float32)
    hr2 = cv2.warpAffine(hr, crop_turn, (SIZE, SIZE), borderMode=cv2.BORDER_REFLECT)
    return [via_photo, (lm2, hr2)]


def _draw(obj, lm, seed, style="any"):
    params = masks.sample_params(OccluderMask(obj, style), np.random.default_rng(seed), lm, SIZE)
    rgb, alpha = occluders.render(params, SIZE)
    return params, rgb, alpha, occluders.mask_of(alpha)


def _at(img, pts):
    xy = np.rint(np.asarray(pts).reshape(-1, 2)).astype(int)
    inside = (xy >= 0).all(1) & (xy < SIZE).all(1)
    return img[xy[inside, 1], xy[inside, 0]]


def _eye_centres(lm):
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0)])


# ----------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("obj", occluders.OBJECTS)
def test_params_round_trip_and_painting_is_pure(obj, faces):
    lm = faces[0][0]
    for style in ("any",) + occluders.STYLES[obj]:
        params, rgb, alpha, mask = _draw(obj, lm, 1, style)
        assert params["kind"] == "occluder" and params["object"] == obj and (style == "any" or params["style"] == style)
        back = json.loads(json.dumps(params))
        rgb2, alpha2 = occluders.render(back, SIZE)
        assert np.array_equal(rgb, rgb2) and np.array_equal(alpha, alpha2)
        assert rgb.shape == (SIZE, SIZE, 3) and alpha.shape == (SIZE, SIZE) and rgb.dtype == alpha.dtype == np.uint8
        assert np.array_equal(masks.render(back, SIZE), mask)  # the mask alone, without painting, is the same
        assert np.array_equal(mask, (alpha >= 128).astype(np.uint8)) and mask.any()
        assert not rgb[alpha == 0].any()


def test_sampling_follows_the_generator_only(faces):
    lm = faces[0][0]
    a = [masks.sample_params(masks.PRESETS["occluders"], np.random.default_rng(s), lm) for s in range(30)]
    b = [masks.sample_params(masks.PRESETS["occluders"], np.random.default_rng(s), lm) for s in range(30)]
    assert a == b
    assert len({json.dumps(p, sort_keys=True) for p in a}) == 30
    assert {p["object"] for p in a} == set(occluders.OBJECTS)
    with pytest.raises(ValueError):
        masks.sample_params(OccluderMask("hand"), np.random.default_rng(0), None)
    with pytest.raises(ValueError):
        masks.sample_params(OccluderMask("hand"), np.random.default_rng(0), np.full((68, 2), 64.0))
    for bad in (lambda: OccluderMask("hat"), lambda: OccluderMask("hand", "foot"), lambda: OccluderMask(kind="part")):
        with pytest.raises(ValueError):
            bad()


_DIGEST = """
import hashlib, json, sys
import numpy as np
from occface import masks
from occface.masks import occluders
lm = np.array(json.loads(sys.stdin.read()), np.float32)
h = hashlib.sha256()
for s in range(12):
    p = masks.sample_params(masks.PRESETS["occluders"], np.random.default_rng(s), lm)
    rgb, alpha = occluders.render(p)
    h.update(json.dumps(p, sort_keys=True).encode()); h.update(rgb.tobytes()); h.update(alpha.tobytes())
print(h.hexdigest())
"""


def test_occluders_are_byte_identical_across_processes(faces):
    lm = faces[0][0]
    h = hashlib.sha256()
    for s in range(12):
        p = masks.sample_params(masks.PRESETS["occluders"], np.random.default_rng(s), lm)
        rgb, alpha = occluders.render(p)
        h.update(json.dumps(p, sort_keys=True).encode())
        h.update(rgb.tobytes())
        h.update(alpha.tobytes())
    out = subprocess.run([sys.executable, "-c", _DIGEST], input=json.dumps(lm.tolist()), capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == h.hexdigest()


def test_compositing_is_exact_integer_blending(faces):
    hr = faces[0][1]
    params, rgb, alpha, mask = _draw("sunglasses", faces[0][0], 0)
    out = occluders.composite(hr, rgb, alpha)
    a = alpha.astype(np.int64)[..., None]
    assert np.array_equal(out, (hr * (255 - a) + rgb * a + 127) // 255)
    assert np.array_equal(out[alpha == 0], hr[alpha == 0]) and np.array_equal(out[alpha == 255], rgb[alpha == 255])


# ----------------------------------------------------------------------------- placement on real faces


def _check_placement(obj, lm, params, alpha, mask):
    f = face_frame(lm)
    eyes = _eye_centres(lm)
    where = f"{obj}/{params['style']} (yaw {f.yaw:.2f})"
    if obj == "sunglasses":
        assert _at(mask, eyes).all(), f"{where}: an eye centre is visible"
    elif obj == "eyeglasses":
        a = _at(alpha, eyes)
        assert (a > 0).all() and (a < 128).all(), f"{where}: the eyes must show through tinted lenses"
        ring = np.hypot(*np.meshgrid(np.arange(SIZE) - eyes[0, 0], np.arange(SIZE) - eyes[0, 1])) < 0.7 * f.iod
        assert mask[ring].any(), f"{where}: no frame around the eye"
    elif obj == "face_mask":
        assert _at(mask, lm[MOUTH]).all() and _at(mask, lm[30]).all(), f"{where}: mouth or nose tip visible"
        assert not _at(mask, lm[EYES]).any(), f"{where}: covers an eye"
    elif obj == "scarf":
        assert _at(mask, lm[4:13]).all(), f"{where}: the jaw shows"
        assert not _at(mask, lm[EYES]).any() and not _at(mask, lm[27:31]).any(), f"{where}: too high"
    elif obj == "hand":
        target = {"mouth": lm[48:60].mean(0), "right_eye": eyes[0], "left_eye": eyes[1], "chin": lm[8] - 0.1 * f.iod * f.v,
                  "right_cheek": (lm[3] + lm[31]) / 2, "left_cheek": (lm[13] + lm[35]) / 2}[params["style"]]
        assert _at(mask, target).all(), f"{where}: misses its target"
    elif obj == "hair":
        assert not _at(mask, lm[MOUTH]).any(), f"{where}: hair over the mouth"
        if params["style"] == "fringe":
            assert _at(mask, f.at(f.eye_mid, 0, -0.9)).all(), f"{where}: the forehead shows"
    elif obj == "object":
        near = np.hypot(*np.meshgrid(np.arange(SIZE) - lm[48:60, 0].mean(), np.arange(SIZE) - lm[48:60, 1].mean()))
        assert mask[near < 0.6 * f.iod].any(), f"{where}: not at the mouth"
        assert not _at(mask, eyes).any(), f"{where}: covers an eye"


@pytest.mark.parametrize("obj", occluders.OBJECTS)
def test_each_occluder_lands_on_its_landmarks(obj, faces, yawed, rotated):
    styles = occluders.STYLES[obj]
    cases = [(lm, k) for k, (lm, _) in enumerate(faces[:40])] + [(lm, 100 + k) for k, (lm, _) in enumerate(yawed)]
    cases += [(lm, 200 + k) for k, (lm, _) in enumerate(rotated)]
    for lm, k in cases:
        for style in styles:
            params, rgb, alpha, mask = _draw(obj, lm, k, style)
            assert params["fallback"] is None
            _check_placement(obj, lm, params, alpha, mask)


@pytest.mark.parametrize("obj", occluders.OBJECTS)
def test_hole_ratios_stay_in_the_documented_range(obj, faces):
    lo, hi = RATIO[obj]
    ratios = [masks.hole_ratio(_draw(obj, lm, k * 7 + d)[3]) for k, (lm, _) in enumerate(faces) for d in range(3)]
    assert lo <= min(ratios) and max(ratios) <= hi, (min(ratios), max(ratios))


def test_occluders_roll_with_the_face(rotated, faces):
    lm, _ = faces[0]
    lm_turned, _ = rotated[1]
    assert abs(face_frame(lm_turned).u[1]) > 0.4  # the eye line is really tilted (sin 25 deg = 0.42)
    for obj in ("sunglasses", "face_mask"):
        a = _draw(obj, lm, 5)[0]
        b = _draw(obj, lm_turned, 5)[0]
        assert a["style"] == b["style"] and a["layers"] != b["layers"]
        ra, rb = masks.hole_ratio(masks.render(a)), masks.hole_ratio(masks.render(b))
        assert abs(ra - rb) < 0.15 * ra  # the same object, turned


def test_far_lens_narrows_on_yawed_faces(yawed):
    for lm, _ in yawed:
        f = face_frame(lm)
        params = _draw("sunglasses", lm, 0, "round")[0]
        lens_r, lens_l = (np.array(s["poly"]).reshape(-1, 2) / 16 for s in params["layers"][0]["shapes"])
        w_r = np.ptp(lens_r @ f.u)
        w_l = np.ptp(lens_l @ f.u)
        assert (w_r < w_l) == (f.eye_scale[0] < f.eye_scale[1])


def test_a_profile_gets_the_documented_fallback(faces):
    """Landmarks of a near-profile (the far half of the face squashed onto the nose line): one lens, recorded."""
    lm = faces[0][0].astype(np.float64).copy()
    f = face_frame(lm)
    nose = lm[30]
    a = (lm - nose) @ f.u
    far = a > 0  # the subject's left side
    lm[far] -= np.outer(a[far] * 0.85, f.u)
    prof = face_frame(lm)
    assert prof.yaw > 0.85 or min(prof.eye_scale) < 0.5 * max(prof.eye_scale)
    for obj in ("sunglasses", "eyeglasses"):
        params, rgb, alpha, mask = _draw(obj, lm, 3)
        assert params["fallback"] == "near_lens_only" and len(params["layers"][0]["shapes"]) == 1
        if obj == "sunglasses":
            near, far_eye = _eye_centres(lm)
            assert _at(mask, near).all() and not _at(mask, far_eye).any()
    params = _draw("face_mask", lm, 3)[0]  # face masks follow the squashed jaw: no fallback needed
    assert params["fallback"] is None
