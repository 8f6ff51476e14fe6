"""The mask library (occface.masks): every kind, its ranges, exact buckets, borders, faces, seeding."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from occface import masks
from occface.masks import parts as mask_parts
from occface.masks import strokes as mask_strokes
from occface.masks import (
    BucketMask,
    BundledSet,
    LamaMask,
    MixtureMask,
    PartMask,
    PConvMask,
    QuadrantMask,
    SquareMask,
)

SIZE = 128
N = SIZE * SIZE


def gen(spec, n, seed=0, landmarks=None):
    """n (params, mask) pairs from one generator."""
    rng = np.random.default_rng(seed)
    return [masks.sample_mask(spec, rng, landmarks, SIZE) for _ in range(n)]


def frame_is_free(mask, m):
    return not (mask[:m].any() or mask[-m:].any() or mask[:, :m].any() or mask[:, -m:].any())


# ----------------------------------------------------------------------------- the contract


def _synthetic_face():
    """A plausible frontal 68-point layout (only for contract tests; real faces below)."""
    lm = np.zeros((68, 2), np.float32)
    t = np.linspace(-1.0, 1.0, 17)
    lm[0:17] = np.stack([64 + 44 * t, 60 + 48 * np.sqrt(1 - t**2)], 1)
    lm[17:22] = np.stack([np.linspace(34, 58, 5), np.full(5, 50)], 1)
    lm[22:27] = np.stack([np.linspace(70, 94, 5), np.full(5, 50)], 1)
    lm[27:31] = np.stack([np.full(4, 64), np.linspace(58, 76, 4)], 1)
    lm[31:36] = np.stack([np.linspace(56, 72, 5), np.full(5, 80)], 1)
    eye = np.array([[-8, 0], [-4, -3], [2, -3], [8, 0], [2, 3], [-4, 3]], np.float32)
    lm[36:42] = eye + [49, 60]
    lm[42:48] = eye + [79, 60]
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    lm[48:60] = np.stack([64 - 14 * np.cos(ang), 94 + 6 * np.sin(ang)], 1)
    lm[60:68] = np.stack([64 - 9 * np.cos(ang[:8] * 1.5), 94 + 3 * np.sin(ang[:8] * 1.5)], 1)
    return lm


ALL_SPECS = list(masks.PRESETS.values()) + [
    MixtureMask(((2.0, PConvMask()), (1.0, SquareMask()), (1.0, PartMask("eyes", jitter=0.1)))),
    BundledSet("square128-v1", groups=("m2", "paper")),
]


def _spec_id(spec):
    return json.dumps(masks.spec_to_dict(spec))[:70]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_spec_id)
def test_every_kind_keeps_the_api_contract(spec):
    """sample_params -> JSON-able dict with "kind"; render -> (size, size) uint8 in {0, 1}, also from the JSON copy."""
    lm = _synthetic_face()
    for seed in range(3):
        params = masks.sample_params(spec, np.random.default_rng(seed), lm, SIZE)
        assert isinstance(params["kind"], str)
        text = json.dumps(params)
        mask = masks.render(params, SIZE)
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) <= {0, 1}
        assert np.array_equal(masks.render(json.loads(text), SIZE), mask)
        assert masks.hole_ratio(mask) == np.count_nonzero(mask) / N


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_spec_id)
def test_specs_round_trip_through_json(spec):
    back = masks.spec_from_dict(json.loads(json.dumps(masks.spec_to_dict(spec))))
    assert back == spec and type(back) is type(spec)


def test_bad_specs_are_refused():
    for bad in (
        lambda: BucketMask(7),
        lambda: BucketMask(0),
        lambda: PartMask("ear"),
        lambda: LamaMask("huge"),
        lambda: QuadrantMask("middle"),
        lambda: SquareMask(65, 64),
        lambda: MixtureMask(()),
        lambda: MixtureMask(((0.0, PConvMask()),)),
        lambda: PConvMask(kind="square"),
        lambda: masks.spec_from_dict({"kind": "nope"}),
        lambda: masks.spec_from_dict({"kind": "square", "colour": 3}),
        lambda: masks.spec_from_name("m9"),
    ):
        with pytest.raises((ValueError, TypeError)):
            bad()
    with pytest.raises(ValueError):  # facial parts need the face
        masks.sample_params(PartMask("nose"), np.random.default_rng(0), None)


# ----------------------------------------------------------------------------- seeding


def test_same_seed_and_key_give_the_same_mask_and_different_keys_differ():
    for spec in (PConvMask(), BucketMask(4, True), LamaMask("thick"), SquareMask(), QuadrantMask()):
        p1, m1 = masks.mask_for(spec, 7, "folder:alice/01.jpg#0")
        p2, m2 = masks.mask_for(spec, 7, "folder:alice/01.jpg#0")
        assert p1 == p2 and np.array_equal(m1, m2)
    others = {masks.mask_for(PConvMask(), 7, f"k{i}")[1].tobytes() for i in range(20)}
    assert len(others) == 20


def test_no_global_random_state_is_used_or_touched():
    import random

    np.random.seed(1)
    random.seed(1)
    state_np, state_py = np.random.get_state()[1].copy(), random.getstate()
    a = [masks.mask_for(s, 3, "x")[1] for s in (PConvMask(), BucketMask(2), LamaMask("thin"), QuadrantMask())]
    assert np.array_equal(np.random.get_state()[1], state_np) and random.getstate() == state_py
    np.random.seed(99)
    random.seed(99)
    b = [masks.mask_for(s, 3, "x")[1] for s in (PConvMask(), BucketMask(2), LamaMask("thin"), QuadrantMask())]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


_DIGEST = """
import hashlib, numpy as np
from occface import masks
h = hashlib.sha256()
for spec in (masks.PConvMask(), masks.PConvMask(True), masks.BucketMask(1), masks.BucketMask(6, True),
             masks.LamaMask("thin"), masks.LamaMask("thick"), masks.SquareMask()):
    for i in range(40):
        params, mask = masks.mask_for(spec, 11, f"key{i}")
        h.update(mask.tobytes())
print(h.hexdigest())
"""


def test_masks_are_byte_identical_across_processes():
    run = [sys.executable, "-c", _DIGEST]
    out = [subprocess.run(run, capture_output=True, text=True, check=True).stdout for _ in range(2)]
    exec_ns: dict = {}
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(_DIGEST, exec_ns)
    assert out[0] == out[1] == buf.getvalue()


def test_render_is_pure_and_the_sampling_cache_never_leaks():
    """render() gives the sampled raster, recomputes it when params change, and returns a fresh array."""
    rng = np.random.default_rng(5)
    params = masks.sample_params(BucketMask(3), rng)
    m1 = masks.render(params)
    m1[:] = 0  # caller scribbles on its copy
    m2 = masks.render(params)
    assert np.array_equal(m2, mask_strokes.render_strokes(params, SIZE)) and m2.any()
    params["circles"].append([64, 64, 30])  # mutated params -> a different mask, never the cached one
    assert np.array_equal(masks.render(params), mask_strokes.render_strokes(params, SIZE))
    assert masks.render(params)[64, 64] == 1


# ----------------------------------------------------------------------------- ranges per kind


def test_square_sides_positions_and_ratios_over_thousands_of_seeds():
    for spec, lo, hi in [(SquareMask(), 16, 64)] + [(SquareMask.named(k), s, s) for k, s in masks.SQUARE_SIZES.items()]:
        rng = np.random.default_rng(1)
        sides = []
        for _ in range(2000 if lo < hi else 300):
            p = masks.sample_params(spec, rng)
            s, x0, y0 = p["side"], p["x0"], p["y0"]
            assert lo <= s <= hi and 0 <= x0 <= SIZE - s and 0 <= y0 <= SIZE - s
            sides.append(s)
        m = masks.render(p)
        assert masks.hole_ratio(m) == s * s / N and m[y0, x0] == 1 and m[y0 + s - 1, x0 + s - 1] == 1
        assert min(sides) == lo and max(sides) == hi  # the whole range is used
    c = masks.render(masks.sample_params(SquareMask(32, 32, placement="center"), np.random.default_rng(0)))
    assert c[48:80, 48:80].all() and c.sum() == 32 * 32


def test_quadrants_are_exactly_a_quarter_and_any_draws_all_four():
    seen = set()
    for params, mask in gen(QuadrantMask(), 200):
        q = params["quadrant"]
        seen.add(q)
        assert masks.hole_ratio(mask) == 0.25
        r = slice(0, 64) if q.startswith("top") else slice(64, 128)
        c = slice(0, 64) if q.endswith("left") else slice(64, 128)
        assert mask[r, c].all()
    assert seen == set(masks.QUADRANTS)


def test_pconv_masks_follow_their_recipe_over_thousands_of_seeds():
    w = mask_strokes.pconv_width(SIZE)
    assert w == 7
    ratios = []
    for params, mask in gen(PConvMask(), 2000):
        assert 1 <= len(params["lines"]) <= 20 and 1 <= len(params["circles"]) <= 20 and 1 <= len(params["arcs"]) <= 20
        L, C, A = (np.array(params[k]) for k in ("lines", "circles", "arcs"))
        assert L[:, :4].min() >= 0 and L[:, :4].max() < SIZE and 3 <= L[:, 4].min() and L[:, 4].max() <= w
        assert C[:, :2].min() >= 0 and C[:, :2].max() < SIZE and 3 <= C[:, 2].min() and C[:, 2].max() <= w
        assert 1 <= A[:, 2:4].min() and A[:, 2:4].max() <= SIZE and 3 <= A[:, 4:7].min() and A[:, 4:7].max() <= 180
        ratios.append(masks.hole_ratio(mask))
    r = np.array(ratios)
    # stated range, and the PConv-Keras statistics at 128 px (mean ~0.36, 10-90 % about 0.2-0.5)
    assert r.min() > 0.01 and r.max() <= 0.8
    assert 0.33 < r.mean() < 0.39 and 0.17 < np.percentile(r, 10) < 0.23 and 0.47 < np.percentile(r, 90) < 0.54


def test_border_constrained_masks_leave_the_border_free():
    m = mask_strokes.border_margin(SIZE)
    assert m == 8
    for spec in [PConvMask(border=True)] + [BucketMask(b, border=True) for b in range(1, 7)]:
        for _, mask in gen(spec, 300, seed=2):
            assert frame_is_free(mask, m)
    # and without the constraint the border does get holes
    assert any(not frame_is_free(mask, m) for _, mask in gen(PConvMask(), 20))


@pytest.mark.parametrize("border", [False, True])
def test_targeted_buckets_are_hit_exactly(border):
    """3,000 masks over the six PConv buckets: every one inside its bucket, and render() redraws it exactly."""
    for b in range(1, 7):
        lo, hi = mask_strokes.bucket_counts(b, SIZE)
        counts = []
        for params, mask in gen(BucketMask(b, border), 250, seed=b):
            c = int(np.count_nonzero(mask))
            assert lo <= c <= hi and masks.bucket_of(mask) == b
            assert np.array_equal(mask_strokes.render_strokes(params, SIZE), mask)  # from the params alone
            counts.append(c)
        # the targets spread over the bucket rather than piling up at its lower edge
        assert np.percentile(counts, 10) < lo + 0.35 * (hi - lo) and np.percentile(counts, 90) > lo + 0.65 * (hi - lo)


def test_bucket_edges_use_exact_integer_arithmetic():
    assert mask_strokes.bucket_counts(1, 128) == (164, 1638)  # 0.01 * 16384 = 163.84, 0.1 * 16384 = 1638.4
    assert mask_strokes.bucket_counts(6, 128) == (8193, 9830)
    assert mask_strokes.bucket_of_count(1638, N) == 1 and mask_strokes.bucket_of_count(1639, N) == 2
    assert mask_strokes.bucket_of_count(163, N) == 0 and mask_strokes.bucket_of_count(9831, N) == 7
    assert mask_strokes.bucket_counts(2, 100) == (1001, 2000)  # 0.2 exactly on the edge is in bucket 2
    assert mask_strokes.bucket_of_count(2000, 10000) == 2 and mask_strokes.bucket_of_count(1000, 10000) == 1


def test_bucket_safety_net_still_lands_in_the_bucket(monkeypatch):
    """With the candidate budget exhausted at once, the raster-order fill hits the bucket and renders back exactly."""
    monkeypatch.setattr(mask_strokes, "MAX_CANDIDATES", 0)
    for b, border in ((1, False), (6, True)):
        params, mask = mask_strokes.sample_pconv_bucket(np.random.default_rng(0), SIZE, b, border)
        assert masks.bucket_of(mask) == b and params["dots"]
        assert np.array_equal(mask_strokes.render_strokes(params, SIZE), mask)
        if border:
            assert frame_is_free(mask, 8)


@pytest.mark.parametrize("preset", ["thin", "medium", "thick"])
def test_lama_masks_stay_within_half_the_image(preset):
    p = mask_strokes.LAMA_PRESETS[preset]
    max_w = mask_strokes._scale(5 + p["max_width"] - 1, SIZE)
    ratios = []
    for params, mask in gen(LamaMask(preset), 400 if preset == "thin" else 1000, seed=3):
        r = masks.hole_ratio(mask)
        assert 0 < r <= 0.5
        widths = [seg[4] for seg in params["lines"]]
        assert 1 <= min(widths) and max(widths) <= max_w
        nb = len(params["boxes"])
        assert p["boxes"][0] <= nb <= p["boxes"][1]
        ratios.append(r)
    assert np.mean(ratios) > 0.1  # they are not degenerate


def test_mixture_draws_components_by_weight_and_records_which():
    mix = MixtureMask(((3.0, SquareMask()), (1.0, QuadrantMask())))
    rng = np.random.default_rng(0)
    picks = [masks.sample_params(mix, rng) for _ in range(4000)]
    frac = np.mean([p["component"] == 0 for p in picks])
    assert abs(frac - 0.75) < 0.03
    assert all(p["kind"] == ("square" if p["component"] == 0 else "quadrant") for p in picks)


# ----------------------------------------------------------------------------- facial parts on real faces


@pytest.fixture(scope="module")
def aligned_faces(astronaut, lfw_faces):
    """dlib 68-point landmarks of real faces, mapped to the 128 crop with occface.align's template."""
    from occface.faces import align, dlib_models

    det, pred = dlib_models.hog_detector(), dlib_models.shape_predictor68()
    cfg = align.AlignConfig(size=SIZE)
    faces = []
    for img in [astronaut] + list(lfw_faces[:40]):
        dets = sorted(det(img, 0), key=lambda r: -r.area())
        if not dets:
            continue
        shape = pred(img, dets[0])
        lm = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        faces.append(align.transform_points(align.alignment_matrix(lm, cfg), lm).astype(np.float32))
    assert len(faces) >= 30
    return faces


R_EYE, L_EYE = list(range(36, 42)), list(range(42, 48))
R_SIDE = R_EYE + [17, 18, 19] + list(range(0, 6)) + [48]  # clearly off the midline
L_SIDE = L_EYE + [24, 25, 26] + list(range(11, 17)) + [54]
OWN = {
    "right_eye": R_EYE,
    "left_eye": L_EYE,
    "eyes": R_EYE + L_EYE,
    "nose": list(range(27, 36)),
    "mouth": list(range(48, 68)),
    "lower_face": list(range(1, 16)) + list(range(29, 36)) + list(range(48, 68)),
    "left_half": L_SIDE,
    "right_half": R_SIDE,
}
OTHER = {  # landmarks of other parts the mask must leave visible
    "right_eye": L_EYE + list(range(22, 27)) + list(range(30, 36)) + list(range(48, 68)) + list(range(1, 17)),
    "left_eye": R_EYE + list(range(17, 22)) + list(range(30, 36)) + list(range(48, 68)) + list(range(0, 16)),
    "eyes": list(range(31, 36)) + list(range(48, 68)) + list(range(2, 15)),
    "nose": R_EYE + L_EYE + list(range(17, 27)) + list(range(48, 68)) + list(range(0, 17)),
    "mouth": R_EYE + L_EYE + list(range(17, 36)) + [0, 1, 2, 3, 13, 14, 15, 16],
    "lower_face": R_EYE + L_EYE + list(range(17, 27)),
    "left_half": R_SIDE,
    "right_half": L_SIDE,
}
MAX_RATIO = {"right_eye": 0.03, "left_eye": 0.03, "eyes": 0.09, "nose": 0.04, "mouth": 0.08, "lower_face": 0.3,
             "left_half": 0.6, "right_half": 0.6}


def _hits(mask, lm, idx):
    xy = np.rint(lm[idx]).astype(int)
    inside = (xy >= 0).all(1) & (xy < SIZE).all(1)
    return mask[xy[inside, 1], xy[inside, 0]].astype(bool)


@pytest.mark.parametrize("part", masks.PARTS)
def test_facial_part_masks_cover_their_part_and_little_else_on_real_faces(part, aligned_faces):
    assert set(OWN) == set(masks.PARTS)
    other_hits = other_total = 0
    for k, lm in enumerate(aligned_faces):
        mask = masks.render(masks.sample_params(PartMask(part), np.random.default_rng(k), lm))
        assert _hits(mask, lm, OWN[part]).all(), f"face {k}: {part} mask misses a landmark of the part"
        hit = _hits(mask, lm, OTHER[part])
        if k == 0:  # the astronaut: a sharp, well-landmarked face
            assert not hit.any()
        other_hits += int(hit.sum())
        other_total += hit.size
        assert masks.hole_ratio(mask) <= MAX_RATIO[part]
    # the LFW faces are 25 px originals; allow a stray landmark of another part in 1 % of checks
    assert other_hits <= 0.01 * other_total


def test_facial_parts_follow_pose(aligned_faces):
    """Rotating and shifting the face moves the mask with it (a similarity of the landmarks -> the same of the mask)."""
    lm = aligned_faces[0]
    c, s = np.cos(np.deg2rad(20)), np.sin(np.deg2rad(20))
    rot = (lm - 64) @ np.array([[c, s], [-s, c]], np.float32) + 64 + [6, -4]
    for part in ("mouth", "left_eye", "lower_face"):
        a = masks.render(masks.sample_params(PartMask(part), np.random.default_rng(0), lm))
        b = masks.render(masks.sample_params(PartMask(part), np.random.default_rng(0), rot))
        assert _hits(b, rot, OWN[part]).all()
        assert abs(int(a.sum()) - int(b.sum())) < 0.1 * a.sum()  # same size
        ca, cb = np.argwhere(a).mean(0), np.argwhere(b).mean(0)
        expect = ((ca[::-1] - 64) @ np.array([[c, s], [-s, c]]) + 64 + [6, -4])[::-1]
        assert np.abs(cb - expect).max() < 1.5


def test_part_jitter_draws_from_rng_only_when_asked(aligned_faces):
    lm = aligned_faces[0]
    fixed = {json.dumps(masks.sample_params(PartMask("eyes"), np.random.default_rng(i), lm)) for i in range(5)}
    jit = {json.dumps(masks.sample_params(PartMask("eyes", jitter=0.15), np.random.default_rng(i), lm)) for i in range(5)}
    assert len(fixed) == 1 and len(jit) == 5
    assert mask_parts.PART_POINTS["left_eye"] == tuple(range(42, 48))  # subject's left, iBUG order


def test_fcsr_gan_occlusions_map_to_parts():
    assert list(masks.FCSR_GAN_OCCLUSIONS) == ["O1", "O2", "O3", "O4", "O5", "O6"]
    assert set(masks.FCSR_GAN_OCCLUSIONS.values()) <= set(masks.PARTS)
    assert masks.spec_from_name("fcsr-O6") == PartMask("mouth")
