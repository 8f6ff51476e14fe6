"""Degradation chains (occface.degrade): presets, specs, applied parameters, purity, seeding, each step."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from occface import degrade as D
from occface.faces import resize
from occface.seeding import rng_for


@pytest.fixture(scope="module")
def face(astronaut):
    """A real face at the HR size: the astronaut's head, 128 x 128."""
    import cv2

    return cv2.resize(astronaut[20:300, 120:400], (128, 128), interpolation=cv2.INTER_AREA)


def draws(spec, n, seed=0, size=128):
    return [D.sample_params(spec, rng_for(seed, f"k{i}", "degrade"), size, 16) for i in range(n)]


# ----------------------------------------------------------------------------- specs


@pytest.mark.parametrize("name", sorted(D.PRESETS))
def test_presets_round_trip_through_json_and_text(name, tmp_path):
    spec = D.PRESETS[name]
    text = json.dumps(D.spec_to_dict(spec))
    assert D.spec_from_dict(json.loads(text)) == spec
    assert D.from_text(name) == spec and D.from_text(text) == spec
    path = tmp_path / "spec.json"
    path.write_text(text)
    assert D.from_text(f"@{path}") == spec


def test_custom_json_chains_and_bad_specs():
    spec = D.from_text('{"steps": [{"op": "blur", "sigma": [1, 2], "kernel_size": 9}, {"op": "jpeg", "quality": [20, 30]}],'
                       ' "output": "cubic"}')
    assert spec == D.DegradeSpec((D.Blur(9, (1.0, 2.0)), D.Jpeg((20, 30))), output="cubic")
    assert spec.name == "custom" and not spec.is_none and D.NONE.is_none
    for bad in ('{"steps": [{"op": "sharpen"}]}', '{"steps": [{"op": "blur", "radius": 3}]}',
                '{"steps": [{"op": "blur", "kernel_size": 4}]}', '{"steps": [{"op": "noise", "sigma": [5, 1]}]}',
                '{"steps": [{"op": "jpeg", "quality": [0, 50]}]}', '{"steps": [{"op": "resize", "interpolation": "x"}]}',
                '{"steps": [{"op": "gray", "p": 2}]}', '{"steps": {}}', '{"output": "lanczos"}', '{"colour": 1}',
                "{not json", "gfpgan2", "@/nonexistent/spec.json", "[1, 2]"):
        with pytest.raises(ValueError) as e:
            D.from_text(bad)
        assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("name", sorted(D.PRESETS))
def test_stored_params_rebuild_the_lr_exactly(name, face):
    spec = D.PRESETS[name]
    seen = set()
    for i in range(25):
        params, lr = D.degrade_for(spec, 3, f"sample:{i}", face)
        assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
        text = json.dumps(params)
        assert np.array_equal(D.apply(face, json.loads(text)), lr)  # the JSON copy rebuilds the same bytes
        assert np.array_equal(D.apply(face, text), lr)
        assert params == D.degrade_for(spec, 3, f"sample:{i}", face)[0]  # (seed, key) -> the same draw
        assert params["name"] == name and params["steps"][-1]["final"] and params["steps"][-1]["size"] == [16, 16]
        seen.add(lr.tobytes())
    assert len(seen) == (1 if name == "none" else 25)


def test_none_is_the_builds_bilinear_downsample(face):
    params = D.sample_params(D.NONE, None)
    assert params == {"name": "none", "steps": [{"op": "resize", "size": [16, 16], "interpolation": "bilinear-aa",
                                                  "final": True}]}
    assert np.array_equal(D.apply(face, params), resize.resize(face, 16, "bilinear-aa"))
    plain = D.sample_params(D.NONE, None, resize_rule="bilinear")
    assert np.array_equal(D.apply(face, plain), resize.resize(face, 16, "bilinear"))
    assert np.array_equal(D.apply(face, params, size=128), face)  # the HR-size copy of "nothing" is the face


def test_no_global_random_state_is_used_or_touched(face):
    np.random.seed(5)
    random.seed(5)
    before_np, before_py = np.random.get_state()[1].copy(), random.getstate()
    a = [D.degrade_for(D.HEAVY, 0, f"k{i}", face) for i in range(10)]
    assert np.array_equal(np.random.get_state()[1], before_np) and random.getstate() == before_py
    np.random.seed(99)
    random.seed(99)
    b = [D.degrade_for(D.HEAVY, 0, f"k{i}", face) for i in range(10)]
    assert all(pa == pb and np.array_equal(la, lb) for (pa, la), (pb, lb) in zip(a, b))


def test_a_step_draws_the_same_whether_or_not_the_steps_before_it_ran():
    on = D.DegradeSpec((D.Blur(p=1.0), D.Noise((0, 20)), D.Jpeg()))
    off = D.DegradeSpec((D.Blur(p=0.0), D.Noise((0, 20)), D.Jpeg()))
    for a, b in zip(draws(on, 20), draws(off, 20)):
        assert a["steps"][0]["op"] == "blur" and b["steps"][0]["op"] == "noise"
        assert a["steps"][1:] == b["steps"]


# ----------------------------------------------------------------------------- gfpgan and the other presets


def test_gfpgan_draws_inside_its_published_ranges():
    ps = draws(D.GFPGAN, 600)
    ops = [[s["op"] for s in p["steps"]] for p in ps]
    assert all(o == ["blur", "resize", "noise", "jpeg", "resize"] for o in ops)  # blur -> shrink -> noise -> JPEG -> LR
    blur = [p["steps"][0] for p in ps]
    assert {b["ksize"] for b in blur} == {41}
    aniso = np.mean([b["kernel"] == "aniso" for b in blur])
    assert 0.44 < aniso < 0.56
    sig = np.array([[b["sigma_x"], b["sigma_y"]] for b in blur])
    assert sig.min() >= 0.1 and sig.max() <= 10 and sig.min() < 0.3 and sig.max() > 9.7
    assert all(b["sigma_x"] == b["sigma_y"] and b["theta"] == 0 for b in blur if b["kernel"] == "iso")
    th = np.array([b["theta"] for b in blur if b["kernel"] == "aniso"])
    assert th.min() >= -np.pi and th.max() <= np.pi and th.min() < -2.8 and th.max() > 2.8
    for p in ps:
        r = p["steps"][1]
        assert 0.8 <= r["scale"] <= 8 and r["size"] == [int(128 // r["scale"])] * 2 and r["interpolation"] == "linear"
        assert 0 <= p["steps"][2]["sigma"] <= 20 and not p["steps"][2]["gray"]
        q = p["steps"][3]["quality"]
        assert isinstance(q, int) and 60 <= q <= 100
        assert p["steps"][4] == {"op": "resize", "size": [16, 16], "interpolation": "area", "final": True}
    qs = [p["steps"][3]["quality"] for p in ps]
    assert min(qs) == 60 and max(qs) == 100


def test_light_and_heavy_draw_inside_their_documented_ranges():
    for p in draws(D.LIGHT, 200):
        st = {s["op"]: s for s in p["steps"][:-1]}
        assert st["blur"]["ksize"] == 21 and max(st["blur"]["sigma_x"], st["blur"]["sigma_y"]) <= 2.0
        assert st["resize"]["size"] == [16, 16] and 0 <= st["noise"]["sigma"] <= 4 and 80 <= st["jpeg"]["quality"] <= 100
    motion = jitter = 0
    for p in draws(D.HEAVY, 300):
        st = {s["op"]: s for s in p["steps"][:-1]}
        assert 1.0 <= min(st["blur"]["sigma_x"], st["blur"]["sigma_y"]) and max(st["blur"]["sigma_x"], st["blur"]["sigma_y"]) <= 6
        assert 6 <= st["resize"]["scale"] <= 12 and 4 <= st["noise"]["sigma"] <= 20 and 30 <= st["jpeg"]["quality"] <= 75
        if "motion_blur" in st:
            motion += 1
            assert st["motion_blur"]["ksize"] in range(5, 16, 2)
        if "color_jitter" in st:
            jitter += 1
            cj = st["color_jitter"]
            assert 0.75 <= cj["brightness"] <= 1.25 and abs(cj["hue"]) <= 0.02
            assert sorted(cj["order"]) == sorted(["brightness", "contrast", "saturation", "hue"])
        assert p["steps"][-1]["interpolation"] == "linear"
    assert 60 < motion < 120 and 110 < jitter < 190  # p = 0.3 and 0.5 of 300


# ----------------------------------------------------------------------------- each step does what it says


def _one(step, img):
    params = D.sample_params(D.DegradeSpec((step,), output="area"), np.random.default_rng(0), img.shape[0],
                             img.shape[0])
    return params["steps"][0], D.apply(img, params)


def test_blur_kernels_are_normalised_and_blur(face):
    for kernel, sx, sy, th in (("iso", 3.0, 3.0, 0.0), ("aniso", 0.5, 6.0, 0.7)):
        k = D.gaussian_kernel({"kernel": kernel, "ksize": 41, "sigma_x": sx, "sigma_y": sy, "theta": th})
        assert k.shape == (41, 41) and abs(float(k.sum()) - 1) < 1e-5 and np.array_equal(k, k[::-1, ::-1])
    p, out = _one(D.Blur(41, (4.0, 4.0), 0.0), face)
    grad = lambda x: np.abs(np.diff(x.astype(float), axis=1)).mean()  # noqa: E731
    assert grad(out) < 0.5 * grad(face) and abs(out.mean() - face.mean()) < 2


def test_noise_has_the_drawn_sigma_and_gray_noise_is_shared():
    flat = np.full((128, 128, 3), 128, np.uint8)
    p, out = _one(D.Noise((10.0, 10.0)), flat)
    d = out.astype(float) - 128
    assert abs(d.std() - 10) < 0.5 and abs(d.mean()) < 0.3 and np.array_equal(d, np.rint(d))
    p, out = _one(D.Noise((10.0, 10.0), gray_prob=1.0), flat)
    assert p["gray"] and (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_jpeg_quality_orders_the_error(face):
    err = []
    for q in (10, 50, 95):
        _, out = _one(D.Jpeg((q, q)), face)
        err.append(np.abs(out.astype(int) - face).mean())
    assert err[0] > err[1] > err[2] > 0


def test_resize_jitter_and_gray(face):
    p, out = _one(D.Resize((4.0, 4.0), "area"), face)
    assert p["size"] == [32, 32] and out.shape == (128, 128, 3)  # the final step restores the output size
    p, out = _one(D.ColorJitter(0.0, 0.0, 0.0, 0.0), face)
    assert np.array_equal(out, face)  # all factors 1: unchanged
    _, out = _one(D.Gray(), face)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == out[..., 2]).all()
    _, out = _one(D.MotionBlur((9, 9)), face)
    assert not np.array_equal(out, face) and abs(out.mean() - face.mean()) < 2


def test_hr_size_copy_uses_the_same_draw(face):
    params, lr = D.degrade_for(D.GFPGAN, 0, "k", face)
    hr = D.apply(face, params, size=128)
    assert hr.shape == (128, 128, 3)
    assert np.abs(resize.resize(hr, 16, "bilinear-aa").astype(int) - lr).mean() < 12  # the same picture, at 128 px
