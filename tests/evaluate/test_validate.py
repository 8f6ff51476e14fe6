"""occface.metrics, occface.validate, occface.hallucinate and their CLIs: metric values on
constructed inputs, cross-checks against scikit-image, the baselines, dlib NRMSE / identity
on a real sample build, the report files."""

from __future__ import annotations

import json
import math
import os

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from occface import metrics as M
from occface.faces import resize
from occface import train as T
from occface.evaluate import baselines, downstream, report
from occface.evaluate import validate as V
from occface.model import ProUIGANConfig
from occface_cli.main import main as cli

from tests.conftest import TINY_PROUIGAN as TINY


def nchw(img_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img_hwc.transpose(2, 0, 1)))[None]


@pytest.fixture(scope="module")
def ckpt(prouigan_build, tmp_path_factory):
    """A (barely) trained tiny generator: one stage-3 step."""
    out = str(tmp_path_factory.mktemp("val") / "run")
    cfg = T.TrainConfig(model=ProUIGANConfig(**TINY), stage_steps=(0, 0, 1), batch_size=4, no_vgg=True)
    T.train(cfg, prouigan_build, out, progress=False, log=lambda s: None)
    return os.path.join(out, "last.pt")


# ----------------------------------------------------------------------------- metrics

def test_identical_images_give_psnr_inf_and_ssim_one(astronaut):
    x = nchw(astronaut[100:228, 180:308])
    batch = torch.cat([x, x.flip(-1)])
    for kw in ({}, {"y_channel": True}, {"crop": 8}):
        assert torch.isinf(M.psnr(batch, batch, **kw)).all()
        assert torch.equal(M.ssim(batch, batch, **kw), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_of_known_variance_gives_the_known_psnr(sigma):
    g = torch.Generator().manual_seed(int(sigma))
    clean = torch.full((8, 3, 128, 128), 128.0, dtype=torch.float64)  # mid-grey: no clipping
    noisy = clean + sigma * torch.randn(clean.shape, generator=g, dtype=torch.float64)
    assert noisy.min() > 0 and noisy.max() < 255
    p = M.psnr(noisy, clean)
    assert p.shape == (8,)
    # 10·log10(255²/σ²); the sample variance of 49,152 values per image is within ~0.6 %
    # (0.03 dB, one standard deviation), and the mean of 8 images within 0.01 dB
    assert p.mean().item() == pytest.approx(M.expected_psnr(sigma), abs=0.05)
    assert M.expected_psnr(sigma) == pytest.approx(20 * math.log10(255 / sigma))
    emp = (noisy - clean).square().flatten(1).mean(1)
    torch.testing.assert_close(p, 10 * torch.log10(255.0 ** 2 / emp))


def test_ssim_and_y_channel_match_scikit_image(astronaut):
    from skimage.color import rgb2ycbcr
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = astronaut[60:188, 160:288]
    noisy = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(a, (7, 7), 2)
    kw = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    for b in (noisy, blurred):
        ref = structural_similarity(a, b, channel_axis=-1, **kw)
        assert M.ssim(nchw(a), nchw(b)).item() == pytest.approx(ref, abs=1e-9)
        ya, yb = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
        torch.testing.assert_close(M.rgb_to_y(nchw(a).double())[0, 0], torch.from_numpy(ya))
        assert M.ssim(nchw(a), nchw(b), y_channel=True).item() == pytest.approx(
            structural_similarity(ya, yb, **kw), abs=1e-9)
    # crop = scoring the cropped images
    c = 8
    assert M.psnr(nchw(a), nchw(noisy), crop=c).item() == pytest.approx(
        M.psnr(nchw(a[c:-c, c:-c]), nchw(noisy[c:-c, c:-c])).item())
    with pytest.raises(ValueError, match="crop"):
        M.psnr(nchw(a), nchw(a), crop=64)


# ----------------------------------------------------------------------------- baselines, dlib helpers

def test_lr_holes_are_the_lr_pixels_the_fill_leaked_into():
    mask = np.zeros((2, 128, 128), np.uint8)
    mask[0, 40:56, 64:80] = 1  # a 16 px square on 8-px cell boundaries
    holes = baselines.lr_hole_mask(mask, 16, "bilinear-aa")
    assert holes[1].sum() == 0
    # any LR pixel whose weight touches the hole: exactly where a zero fill changes the LR
    white = np.full((128, 128, 3), 255, np.uint8)
    filled = white.copy()
    filled[mask[0] == 1] = 0
    diff = (resize.resize(white, 16) != resize.resize(filled, 16)).any(-1)
    np.testing.assert_array_equal(holes[0].astype(bool), diff)
    lr = resize.resize(np.stack([filled, white]), 16)
    out = baselines.baselines(lr, mask)
    assert set(out) == set(baselines.BASELINES)
    assert all(v.shape == (2, 128, 128, 3) and v.dtype == np.uint8 for v in out.values())
    np.testing.assert_array_equal(out["bicubic"][0], cv2.resize(lr[0], (128, 128), interpolation=cv2.INTER_CUBIC))
    # no hole: the inpainting baselines are plain bicubic
    np.testing.assert_array_equal(out["telea-lr+bicubic"][1], out["bicubic"][1])
    np.testing.assert_array_equal(out["bicubic+telea-hr"][1], out["bicubic"][1])
    # with a hole, Telea brightens the black square
    assert out["telea-lr+bicubic"][0].mean() > out["bicubic"][0].mean()
    assert out["bicubic+telea-hr"][0].mean() > out["bicubic"][0].mean()


def test_nrmse_and_face_box():
    gt = np.zeros((68, 2))
    gt[:, 0] = np.linspace(20, 100, 68)
    gt[:, 1] = 60
    iod = abs(gt[45, 0] - gt[36, 0])
    assert downstream.nrmse(gt, gt) == 0
    assert downstream.nrmse(gt + [3, 4], gt) == pytest.approx(5 / iod * 100)
    eye = np.array([[1.0, 0, 0], [0, 1, 0]])
    assert downstream.face_box([10, 20, 90, 100], eye, gt) == (10, 20, 90, 100)
    half = np.array([[0.5, 0, 4], [0, 0.5, 0]])
    assert downstream.face_box([10, 20, 90, 100], half, gt) == (9, 10, 49, 50)
    assert downstream.face_box(None, None, gt) == (20, 60, 100, 60)


# ----------------------------------------------------------------------------- validate on a real build

def test_validate_reports_model_and_baselines_side_by_side(prouigan_build, ckpt, tmp_path):
    out = str(tmp_path / "report")
    rep = V.validate(ckpt, prouigan_build, out, V.ValidateConfig(batch_size=4), log=lambda s: None)
    assert rep["methods"] == ["bicubic", "telea-lr+bicubic", "bicubic+telea-hr", "model"]
    n = rep["data"]["images"]
    assert n == 10 and rep["data"]["split"] == "test"
    for m in rep["methods"]:
        row = rep["overall"][m]
        assert row["n"] == n and 5 < row["psnr"] < 40 and 0 < row["ssim"] < 1
        assert row["nrmse"] > 0 and row["identity_distance"] > 0
        assert len(rep["per_image"]["psnr"][m]) == n
    # the ground-truth HR is the reference row: dlib on the clean face
    ref = rep["ground_truth_reference"]["nrmse"]
    assert 0 < ref < 5
    assert all(rep["overall"][m]["nrmse"] > ref for m in rep["methods"])
    assert rep["checkpoint"]["step"] == 1 and rep["checkpoint"]["trained_on_same_build"]
    assert set(rep["breakdowns"]) == {"mask kind", "square side", "hole ratio (PConv bucket)"}
    assert set(rep["breakdowns"]["mask kind"]) == {"square"}
    sides = rep["breakdowns"]["square side"]
    assert set(sides) <= {f"m{k + 1} ({s})" for k, s in enumerate(report.SQUARE_SIDES)}
    assert sum(row["bicubic"]["n"] for row in sides.values()) == n
    assert rep["speed"]["model_images_per_s"] > 0
    # files
    on_disk = json.load(open(os.path.join(out, "report.json")))
    assert on_disk["overall"].keys() == rep["overall"].keys()
    md = open(os.path.join(out, "report.md")).read()
    for name in ("| bicubic |", "| telea-lr+bicubic |", "| bicubic+telea-hr |", "| Pro-UIGAN (step 1) |",
                 "| ground-truth HR (reference) |", "## By square side"):
        assert name in md
    grid = cv2.imread(os.path.join(out, "grid.png"))
    # 8 rows (key, mask kind, hole ratio at the left; PSNR under each scored image) x LR, 3 baselines,
    # blocks 1-3, GT, under a title and two-line headers
    assert 8 * (128 + 13) < grid.shape[0] < 8 * (128 + 13) + 120 and 8 * 128 + 170 <= grid.shape[1] < 8 * 136 + 200
    assert [r["key"] for r in rep["grid_rows"]] == rep["per_image"]["key"][:8]  # each row labelled with its own key
    plot = cv2.imread(os.path.join(out, "psnr_by_mask.png"))
    assert plot is not None and plot.shape[1] > 2 * plot.shape[0]  # two panels: square side, hole-ratio bucket
    assert rep["files"]["psnr_by_mask"].endswith("psnr_by_mask.png")


def test_validate_options_and_baselines_only(prouigan_build, tmp_path):
    rep = V.validate(None, prouigan_build, str(tmp_path / "b"),
                     V.ValidateConfig(y_channel=True, crop=4, downstream=False, limit=5),
                     log=lambda s: None)
    assert rep["methods"] == list(baselines.BASELINES) and rep["data"]["images"] == 5
    assert rep["ground_truth_reference"] is None and "nrmse" not in rep["overall"]["bicubic"]
    assert "Y channel" in rep["conventions"]["psnr"] and "4-px border crop" in rep["conventions"]["psnr"]
    rgb = V.validate(None, prouigan_build, str(tmp_path / "c"), V.ValidateConfig(downstream=False, limit=5),
                     log=lambda s: None, progress=True)  # the tqdm bar (stderr) instead of log lines
    assert rep["overall"]["bicubic"]["psnr"] != rgb["overall"]["bicubic"]["psnr"]


def test_cli_validate_prints_the_table(prouigan_build, ckpt, tmp_path):
    out = str(tmp_path / "cli")
    r = CliRunner().invoke(cli, ["validate", "--checkpoint", ckpt, "--data", prouigan_build, "--split", "test",
                                 "--out", out, "--device", "cpu", "--no-identity", "--limit", "4",
                                 "--workers", "2"])
    assert r.exit_code == 0, r.output
    for name in ("| bicubic |", "| telea-lr+bicubic |", "| bicubic+telea-hr |", "Pro-UIGAN (step 1)",
                 "NRMSE", "images/s"):
        assert name in r.stdout
    assert "identity" not in r.stdout
    assert os.path.exists(os.path.join(out, "report.md"))


# ----------------------------------------------------------------------------- hallucinate

def test_hallucinate_from_lr_images_and_from_photo_plus_mask(prouigan_build, ckpt, tmp_path):
    import h5py

    with h5py.File(os.path.join(prouigan_build, "shards", "shard-00000.h5"), "r") as f:
        lr, hr, mask = f["lr"][0], f["hr"][0], f["mask"][0]
    lr_path, hr_path, mask_path = (str(tmp_path / n) for n in ("face_lr.png", "photo.png", "mask.png"))
    cv2.imwrite(lr_path, lr[..., ::-1])
    cv2.imwrite(hr_path, hr[..., ::-1])
    cv2.imwrite(mask_path, mask * 255)
    out = str(tmp_path / "out")
    r = CliRunner().invoke(cli, ["hallucinate", lr_path, "--checkpoint", ckpt, "--out", out, "--hr", hr_path,
                                 "--mask", mask_path, "--stages", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    a = cv2.imread(os.path.join(out, "face_lr.png"))
    assert a.shape == (128, 128, 3)
    assert cv2.imread(os.path.join(out, "face_lr_block1.png")).shape == (32, 32, 3)
    assert cv2.imread(os.path.join(out, "photo_block2.png")).shape == (64, 64, 3)
    # the photo + mask path rebuilds the build's LR exactly (zero fill, bilinear-aa)
    np.testing.assert_array_equal(cv2.imread(os.path.join(out, "photo_lr.png"))[..., ::-1], lr)
    np.testing.assert_array_equal(cv2.imread(os.path.join(out, "photo.png")), a)
    r = CliRunner().invoke(cli, ["hallucinate", hr_path, "--checkpoint", ckpt, "--out", out, "--device", "cpu"])
    assert r.exit_code != 0 and "16x16" in r.output


def test_hallucinate_never_overwrites_its_inputs(prouigan_build, ckpt, tmp_path):
    import h5py

    with h5py.File(os.path.join(prouigan_build, "shards", "shard-00000.h5"), "r") as f:
        lr = f["lr"][0]
    lr_path = str(tmp_path / "face.png")
    cv2.imwrite(lr_path, lr[..., ::-1])
    before = open(lr_path, "rb").read()
    r = CliRunner().invoke(cli, ["hallucinate", lr_path, "--checkpoint", ckpt, "--out", str(tmp_path),
                                 "--device", "cpu"])
    assert r.exit_code == 1 and "would overwrite the input" in r.output and "Traceback" not in r.output
    assert open(lr_path, "rb").read() == before
    # an LR input "x_lr.png" and an HR photo "x.png" would both write x_lr.png
    for d in ("a", "b"):
        os.makedirs(tmp_path / d)
    cv2.imwrite(str(tmp_path / "a" / "x_lr.png"), lr[..., ::-1])
    cv2.imwrite(str(tmp_path / "b" / "x.png"), lr[..., ::-1])
    r = CliRunner().invoke(cli, ["hallucinate", str(tmp_path / "a" / "x_lr.png"), "--checkpoint", ckpt,
                                 "--out", str(tmp_path / "o"), "--hr", str(tmp_path / "b" / "x.png"),
                                 "--mask", lr_path, "--device", "cpu"])
    assert r.exit_code == 1 and "would both be written" in r.output


# ----------------------------------------------------------------------------- per block and the prior

def test_decoded_landmarks_of_perfect_heatmaps_have_nme_zero():
    """Heatmaps rendered from landmarks that sit on each grid's pixel centres decode back to
    them exactly (NME 0); off-grid points decode to within half a heatmap pixel."""
    from occface.evaluate import blocks as B
    from occface.evaluate import landmarks as L
    from occface.faces import heatmaps as H

    rng = np.random.default_rng(0)
    for side in (16, 32, 64):
        f = 128 / side
        grid_pts = (rng.integers(2, side - 2, size=(3, 68, 2)) + 0.5) * f - 0.5   # pixel centres
        on_grid = lambda u: (u + 0.5) * f - 0.5  # noqa: E731
        grid_pts[:, 36] = [on_grid(side // 4), on_grid(side // 3)]               # a real inter-ocular span
        grid_pts[:, 45] = [on_grid(3 * side // 4), on_grid(side // 3)]
        hm = np.stack([H.render(p, "all68", side) for p in grid_pts])
        np.testing.assert_allclose(L.decode_heatmaps(hm), grid_pts)
        assert np.all(L.nme(L.decode_heatmaps(hm), grid_pts) == 0)
        scores = B.prior_scores([L.decode_heatmaps(hm)] * 3, ("all68",) * 3, grid_pts)
        assert scores["block1"] == scores["block3"] == [0.0, 0.0, 0.0]
        np.testing.assert_allclose(L.decode_heatmaps(hm, subpixel=True), grid_pts)  # symmetric: no shift
        off = grid_pts + rng.uniform(-0.49, 0.49, grid_pts.shape) * f
        hm_off = np.stack([H.render(p, "all68", side) for p in off])
        err = np.abs(L.decode_heatmaps(hm_off) - off)
        err_sub = np.abs(L.decode_heatmaps(hm_off, subpixel=True) - off)
        assert err.max() <= f / 2 and err_sub.max() <= 0.75 * f / 2 + 1e-9
        assert err_sub.mean() < 0.7 * err.mean()  # the quarter-cell read-out halves the quantisation
    # single-point groupings decode to their points; grouped channels do not decode
    pts = grid_pts[0]
    pu7 = H.render(pts, "pu7", 64)[None]
    assert L.heatmap_nme(pu7, "pu7", pts[None]) == pytest.approx([0.0], abs=1e-9)
    assert L.heatmap_nme(H.render(pts, "fhc4", 64)[None], "fhc4", pts[None]) is None
    # the mean-shape baseline is the NME of the mean shape taken as every face's prediction
    faces = rng.normal(64, 3, size=(5, 68, 2))
    faces[:, 36, 0] -= 25
    faces[:, 45, 0] += 25
    shape = L.mean_shape(faces)
    want = [float(np.linalg.norm(shape - f_, axis=1).mean() / np.linalg.norm(f_[36] - f_[45]) * 100) for f_ in faces]
    np.testing.assert_allclose(B.mean_shape_scores(shape, faces), want)


@pytest.fixture(scope="module")
def stage2_ckpt(prouigan_build, tmp_path_factory):
    """A tiny run stopped in stage 2: block 3 never trained."""
    out = str(tmp_path_factory.mktemp("val2") / "run")
    cfg = T.TrainConfig(model=ProUIGANConfig(**TINY), stage_steps=(1, 1, 1), batch_size=4, no_vgg=True)
    T.train(cfg, prouigan_build, out, stop_at_step=2, progress=False, log=lambda s: None)
    return os.path.join(out, "stage2.pt")


def test_validate_reports_every_block_and_the_prior(prouigan_build, ckpt, stage2_ckpt, tmp_path):
    from occface.evaluate import blocks as B
    from occface.evaluate.inference import run_generator_with_prior
    from occface.data import LoaderConfig, ShardReader

    cfg = V.ValidateConfig(batch_size=4, downstream=False)
    rep = V.validate(ckpt, prouigan_build, str(tmp_path / "r"), cfg, log=lambda s: None)
    assert [b["block"] for b in rep["blocks"]] == [1, 2, 3] and [b["side"] for b in rep["blocks"]] == [32, 64, 128]
    assert rep["blocks"][2]["psnr"] == pytest.approx(rep["overall"]["model"]["psnr"])
    assert rep["blocks"][2]["ssim"] == pytest.approx(rep["overall"]["model"]["ssim"])
    # recompute the prior section independently
    g, _ = T.load_generator(ckpt)
    b = ShardReader(prouigan_build, LoaderConfig(split="test", heatmaps=(), dtype="uint8")).get_batch(list(range(10)))
    lm = b["landmarks"].astype(np.float64)
    o = run_generator_with_prior(g, b["lr"].transpose(0, 2, 3, 1).copy())
    train_lm = B.split_landmarks(prouigan_build, "train")
    assert len(train_lm) == 84
    shape = train_lm.astype(np.float64).mean(0)
    prior = rep["prior"]
    assert prior["mean_shape_from"] == "train"
    assert prior["mean_shape_nme"] == pytest.approx(np.mean(B.mean_shape_scores(shape, lm)))
    for k in range(3):
        scores = B.prior_scores(o.points, g.config.heatmap_groupings, lm, None, o.points_subpixel)
        assert prior["blocks"][k] == {"block": k + 1, "nme": pytest.approx(np.mean(scores[f"block{k + 1}"])),
                                      "nme_subpixel": pytest.approx(np.mean(scores[f"block{k + 1}_subpixel"]))}
    assert prior["estimator"]["nme"] > 0
    ups = B.upsample(o.images[0])
    assert ups.shape == (10, 128, 128, 3)
    psnr1 = M.psnr(torch.from_numpy(ups.transpose(0, 3, 1, 2).copy()),
                   torch.from_numpy(b["hr"].copy())).mean()
    assert rep["blocks"][0]["psnr"] == pytest.approx(float(psnr1))
    md = open(tmp_path / "r" / "report.md").read()
    assert "## By UI-block" in md and "| block 3 | 128 px |" in md and "mean train shape (baseline)" in md
    assert not any("not been trained" in w for w in rep["warnings"])
    # a checkpoint from before stage 3 is scored with a warning, in the JSON, the Markdown and the CLI
    rep2 = V.validate(stage2_ckpt, prouigan_build, str(tmp_path / "r2"), cfg, log=lambda s: None)
    assert any("block 3 has not been trained" in w for w in rep2["warnings"])
    assert "**warning**: block 3 has not been trained" in open(tmp_path / "r2" / "report.md").read()
    r = CliRunner().invoke(cli, ["validate", "--checkpoint", stage2_ckpt, "--data", prouigan_build,
                                 "--out", str(tmp_path / "r3"), "--device", "cpu", "--no-downstream"])
    assert r.exit_code == 0, r.output
    assert "warning: block 3 has not been trained" in r.stderr and "## By UI-block" in r.stdout
    assert B.trained_blocks(2, (1, 1, 1)) == (True, True, False)
    assert B.trained_blocks(3, (1, 1, 1)) == (True, True, True)
    assert B.trained_blocks(1, (0, 2, 0)) == (False, True, False)
