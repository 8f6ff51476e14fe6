"""occface.train / ``occface train-ref``: the three-stage schedule, checkpoints, bit-exact resume,
NaN handling, VGG from explicit files, DDP (gloo, two processes).  Real HDF5 from a sample
build, real torch modules with tiny widths, CPU."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
import sys

import cv2
import pytest
import torch
from click.testing import CliRunner

from occface import train as T
from occface.train import inputs as train_inputs
from occface.model import (ProUIGANConfig, ProUIGANLoss, ProUIGenerator, VGGFeatures,
                           VGGWeightsMissing)
from occface.model.vgg import FEATURE_TAPS, STYLE_TAPS
from occface_cli.main import main as cli

from tests.conftest import PROUIGAN_HEATMAPS as HEATMAPS, TINY_PROUIGAN as TINY

QUIET = dict(progress=False, log=lambda s: None)


def tiny_cfg(**kw) -> T.TrainConfig:
    base = dict(model=ProUIGANConfig(**TINY), stage_steps=(2, 2, 3), batch_size=16, no_vgg=True,
                log_every=1, ckpt_every=100, image_every=3, grid_size=4)
    base.update(kw)
    return T.TrainConfig(**base)


@pytest.fixture(scope="module")
def straight(prouigan_build, tmp_path_factory):
    """An uninterrupted tiny run: stages (2, 2, 3), batch 16 (5 batches per epoch)."""
    out = str(tmp_path_factory.mktemp("train") / "straight")
    summary = T.train(tiny_cfg(), prouigan_build, out, **QUIET)
    return out, summary


def assert_same(a, b, path=""):
    """Recursive bit-exact equality of checkpoint contents."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


# ----------------------------------------------------------------------------- schedule

def test_schedule_is_a_pure_function_of_the_step():
    cfg = tiny_cfg(stage_steps=(3, 2, 4), lrs=(1e-4, 2e-4, 1e-3), lr_d=5e-5)
    assert T.stage_bounds(cfg) == [(0, 3), (3, 5), (5, 9)]
    assert [T.stage_of(s, cfg) for s in range(10)] == [1, 1, 1, 2, 2, 3, 3, 3, 3, 3]
    assert T.lr_at(0, cfg) == {"block1": 1e-4, "local_d": 5e-5}
    assert T.lr_at(3, cfg) == {"block2": 2e-4}
    assert T.lr_at(5, cfg) == {"block1": 1e-4, "block2": 2e-4, "block3": 1e-3,
                               "local_d": 5e-5, "global_d": 5e-5}
    assert T.lr_at(0, tiny_cfg(stage1_adversarial=False)) == {"block1": 1e-4}
    assert set(T.lr_at(3, tiny_cfg(stage_steps=(3, 2, 4), stage2_trains="blocks12"))) == {"block1", "block2"}
    # the paper's stage-3 rates are the defaults
    assert T.TrainConfig().lrs == (1e-4, 1e-4, 1e-3)
    # warm-up restarts with every stage; a stage of 0 steps is skipped
    w = tiny_cfg(stage_steps=(0, 4, 4), warmup_steps=2)
    assert T.stage_of(0, w) == 2
    assert T.lr_at(0, w)["block2"] == pytest.approx(0.5e-4)
    assert T.lr_at(1, w)["block2"] == pytest.approx(1e-4)
    assert T.lr_at(4, w)["block3"] == pytest.approx(0.5e-3)
    assert T.lr_at(5, w) == T.lr_at(7, w)


def test_config_checks():
    from occface.data import LoaderConfig

    assert tiny_cfg().loader == LoaderConfig(split="train", heatmaps=HEATMAPS, range="[-1,1]", dtype="uint8")
    with pytest.raises(ValueError, match="range"):
        tiny_cfg(loader=LoaderConfig(heatmaps=HEATMAPS, range="[0,1]"))
    with pytest.raises(ValueError, match="heatmaps"):
        tiny_cfg(loader=LoaderConfig(heatmaps=("pu7@16",)))
    with pytest.raises(ValueError, match="amp"):
        tiny_cfg(amp="fp16")
    with pytest.raises(ValueError, match="stage_steps"):
        tiny_cfg(stage_steps=(1, 2))


# ----------------------------------------------------------------------------- batches

def test_batch_plan_is_independent_of_the_world_size(prouigan_build):
    cfg = tiny_cfg(batch_size=8)
    take = lambda it, k: [next(it) for _ in range(k)]  # noqa: E731
    one = take(T.batch_plan(84, cfg, T.DistContext(0, 1)), 12)
    r0 = take(T.batch_plan(84, cfg, T.DistContext(0, 2)), 12)
    r1 = take(T.batch_plan(84, cfg, T.DistContext(1, 2)), 12)
    assert [p[:3] for p in one] == [p[:3] for p in r0] == [p[:3] for p in r1]
    assert one[9][:3] == (0, 9, 10) and one[10][:3] == (1, 0, 10)  # 84 // 8 = 10 steps per epoch
    for a, b, c in zip(one, r0, r1):
        assert len(b[3]) == len(c[3]) == 4 and set(a[3]) == set(b[3]) | set(c[3])
    # a resumed plan picks up exactly where the first left off
    assert take(T.batch_plan(84, cfg, T.DistContext(0, 1), epoch=0, pos=9), 3) == one[9:12]


def test_loader_workers_give_the_same_batches(prouigan_build):
    from occface.data import ShardReader

    cfg0, cfg2 = tiny_cfg(batch_size=16), tiny_cfg(batch_size=16, num_workers=2)
    reader = ShardReader(prouigan_build, cfg0.loader)
    dev = torch.device("cpu")
    a = train_inputs.loader(reader, cfg0, T.DistContext(), dev, epoch=0, pos=3)
    b = train_inputs.loader(reader, cfg2, T.DistContext(), dev, epoch=0, pos=3)
    for _ in range(4):  # crosses into epoch 1
        (ka, xa), (kb, xb) = next(a), next(b)
        assert ka == kb
        assert xa["key"] == xb["key"]
        for name in ("lr", "hr", "mask", "landmarks"):
            assert xa[name].dtype == xb[name].dtype and torch.equal(xa[name], xb[name])
        assert xa["lr"].dtype == torch.uint8
    assert ka == (1, 1, 5)
    del a, b


# ----------------------------------------------------------------------------- a tiny run

def test_tiny_cpu_run_goes_through_all_three_stages(prouigan_build, straight):
    out, summary = straight
    assert summary["done"] and summary["steps"] == 7 and summary["steps_run"] == 7
    assert summary["images_per_s"] > 0
    for name in ("last.pt", "stage1.pt", "stage2.pt", "stage3.pt", "generator.pt", "run.json"):
        assert os.path.exists(os.path.join(out, name)), name
    g, info = T.load_generator(os.path.join(out, "generator.pt"))
    assert info["step"] == 7 and not g.training
    assert_same(g.state_dict(), T.load_checkpoint(os.path.join(out, "last.pt"))["generator"])
    assert not glob.glob(os.path.join(out, "*.tmp"))
    s1, s2, s3 = (T.load_checkpoint(os.path.join(out, f"stage{k}.pt")) for k in (1, 2, 3))
    assert (s1["step"], s2["step"], s3["step"]) == (2, 4, 7)
    assert (s1["optimizers"]["stage"], s2["optimizers"]["stage"], s3["optimizers"]["stage"]) == (1, 2, 3)
    assert [g["name"] for g in s3["optimizers"]["g"]["param_groups"]] == ["block1", "block2", "block3"]
    assert [g["lr"] for g in s3["optimizers"]["g"]["param_groups"]] == [1e-4, 1e-4, 1e-3]

    # which parameters each stage trains
    cfg = tiny_cfg()
    torch.manual_seed(cfg.seed)
    init = ProUIGenerator(cfg.model).state_dict()

    def changed(a, b, prefix):  # the heatmap templates are set from the data before step 1
        return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix)
                   and not k.endswith(".template"))

    g1, g2, g3 = s1["generator"], s2["generator"], s3["generator"]
    assert changed(init, g1, "blocks.0.") and changed(init, g1, "prior.")
    assert not changed(init, g1, "blocks.1.") and not changed(init, g1, "blocks.2.")
    assert changed(g1, g2, "blocks.1.")
    assert not changed(g1, g2, "blocks.0.") and not changed(g1, g2, "prior.")  # frozen in stage 2
    assert not changed(init, g2, "blocks.2.")
    assert all(changed(g2, g3, p) for p in ("blocks.0.", "blocks.1.", "blocks.2.", "prior."))
    assert changed(s1["discriminators"]["local"], s2["discriminators"]["local"], "") is False
    assert changed(s2["discriminators"]["global"], s3["discriminators"]["global"], "")

    # provenance: run.json and every checkpoint hold the resolved config and the manifest hash
    run = json.load(open(os.path.join(out, "run.json")))
    with open(os.path.join(prouigan_build, "manifest.json"), "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    assert run["manifest_sha256"] == sha == s3["manifest_sha256"]
    assert run["config"] == s3["config"]
    assert run["config"]["model"]["widths"] == [8, 6, 4]
    assert run["config"]["loader"]["heatmaps"] == list(HEATMAPS)

    # TensorBoard: scalars and the image grid (input, blocks 1-3, ground truth)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(os.path.join(out, "tb"), size_guidance={"images": 0, "scalars": 0})
    ev.Reload()
    tags = ev.Tags()
    assert {"loss/g/total", "loss/g/block1/mse", "loss/d/block3/d_global", "lr/block3",
            "speed/images_per_s"} <= set(tags["scalars"])
    assert [e.step for e in ev.Scalars("loss/g/total")] == list(range(1, 8))
    img = ev.Images("grid/input_block1_block2_block3_gt")[-1]
    # labelled: five named rows of 128 px, four faces, a title, headers and PSNR captions around them
    assert img.step == 7 and 5 * 128 < img.height < 5 * 128 + 200 and 4 * 128 < img.width < 4 * 128 + 260
    png = cv2.imread(os.path.join(out, "grids", "step-0000007.png"))
    assert png.shape[:2] == (img.height, img.width)


def test_resumed_run_equals_an_uninterrupted_one(prouigan_build, straight, tmp_path):
    out_a, _ = straight
    out_b = str(tmp_path / "resumed")
    cfg = tiny_cfg()
    first = T.train(cfg, prouigan_build, out_b, stop_at_step=3, **QUIET)  # mid stage 2, mid epoch
    assert first["stopped"] and first["steps"] == 3
    mid = T.load_checkpoint(os.path.join(out_b, "last.pt"))
    assert (mid["step"], mid["epoch"], mid["position"], mid["optimizers"]["stage"]) == (3, 0, 3, 2)
    second = T.train(cfg, prouigan_build, out_b, resume=True, **QUIET)  # crosses the epoch boundary at 5
    assert second["done"] and second["steps_run"] == 4
    a = T.load_checkpoint(os.path.join(out_a, "last.pt"))
    b = T.load_checkpoint(os.path.join(out_b, "last.pt"))
    for key in ("generator", "discriminators", "optimizers", "rng", "step", "stage", "epoch",
                "position", "losses", "config", "manifest_sha256"):
        assert_same(a[key], b[key], key)
    assert (a["epoch"], a["position"]) == (1, 2)
    # resuming a finished run does nothing
    third = T.train(cfg, prouigan_build, out_b, resume=True, **QUIET)
    assert third["steps_run"] == 0 and third["done"]


def test_resume_checks_config_and_data(prouigan_build, straight, tmp_path):
    out, _ = straight
    with pytest.raises(T.RunExists, match="already holds a run"):
        T.train(tiny_cfg(), prouigan_build, out, **QUIET)
    with pytest.raises(T.ConfigMismatch, match="lrs"):
        T.train(tiny_cfg(lrs=(1e-4, 1e-4, 2e-3)), prouigan_build, out, resume=True, **QUIET)
    # execution fields may change
    s = T.train(tiny_cfg(ckpt_every=7, num_workers=1), prouigan_build, out, resume=True, **QUIET)
    assert s["steps_run"] == 0


def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(prouigan_build, tmp_path, monkeypatch):
    real = ProUIGANLoss.generator_loss
    calls = []

    def poisoned(self, *a, **kw):
        total, terms = real(self, *a, **kw)
        calls.append(1)
        if len(calls) >= 4:  # the 4th step goes wrong
            total = total * float("nan")
        return total, terms

    monkeypatch.setattr(ProUIGANLoss, "generator_loss", poisoned)
    out = str(tmp_path / "nan")
    with pytest.raises(T.NonFiniteLoss, match=r"last good checkpoint: .*last.pt \(step 2\)"):
        T.train(tiny_cfg(ckpt_every=2, log_every=1), prouigan_build, out, **QUIET)
    ck = T.load_checkpoint(os.path.join(out, "last.pt"))
    assert ck["step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["generator"].values())
    assert not glob.glob(os.path.join(out, "*.tmp"))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = str(tmp_path / "last.pt")
    T.save_checkpoint(path, {"format": T.CHECKPOINT_FORMAT, "step": 1})
    real_save = torch.save

    def crash(obj, fh, *a, **kw):
        real_save(obj, fh, *a, **kw)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        T.save_checkpoint(path, {"format": T.CHECKPOINT_FORMAT, "step": 2})
    assert T.load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


def test_bf16_autocast_and_channels_last_run_on_cpu(prouigan_build, tmp_path):
    s = T.train(tiny_cfg(stage_steps=(1, 1, 1), batch_size=4, amp="bf16", channels_last=True),
                prouigan_build, str(tmp_path / "bf16"), **QUIET)
    assert s["done"]
    assert all(v == v and abs(v) != float("inf") for v in s["losses"].values())


def test_heatmaps_rendered_on_the_device_equal_the_stored_ones(prouigan_build, tmp_path):
    from occface import data as D
    from occface.train.loop import build_heatmap_sigma

    dev = torch.device("cpu")
    stored, rendered = tiny_cfg(batch_size=4), tiny_cfg(batch_size=4, heatmaps_on_device=True)
    assert rendered.loader.heatmaps == ()
    reader = D.ShardReader(prouigan_build, stored.loader)
    batch = D.as_torch(reader.get_batch([0, 5, 9]))
    _, _, a = T.prepare_batch(batch, stored, dev)
    _, _, b = T.prepare_batch(batch, rendered, dev, build_heatmap_sigma(prouigan_build, rendered))
    for x, y in zip(a, b):
        assert x.shape == y.shape and (x - y).abs().max() <= 0.5 / 255 + 1e-6  # stored = round(255 h)
    s = T.train(tiny_cfg(stage_steps=(1, 0, 1), batch_size=4, heatmaps_on_device=True), prouigan_build,
                str(tmp_path / "dev"), **QUIET)
    assert s["done"]


# ----------------------------------------------------------------------------- VGG

def test_vgg_losses_from_explicitly_named_weight_files(prouigan_build, tmp_path):
    """Random-initialised in-project VGGs saved to files stand in for the ImageNet weights."""
    torch.manual_seed(0)
    p16, p19 = str(tmp_path / "vgg16.pth"), str(tmp_path / "vgg19.pth")
    torch.save(VGGFeatures("vgg16", STYLE_TAPS).state_dict(), p16)
    torch.save(VGGFeatures("vgg19", FEATURE_TAPS).state_dict(), p19)
    cfg = tiny_cfg(stage_steps=(1, 1, 0), batch_size=2, no_vgg=False, vgg16=p16, vgg19=p19)
    s = T.train(cfg, prouigan_build, str(tmp_path / "vgg"), **QUIET)
    assert {"g/block1/feature", "g/block1/style", "g/block2/feature", "g/block2/style"} <= set(s["losses"])
    with pytest.raises(VGGWeightsMissing, match="vgg19-dcbb9e9d.pth"):
        T.train(tiny_cfg(no_vgg=False, vgg_hub_dir=str(tmp_path / "nohub")), prouigan_build,
                str(tmp_path / "novgg"), **QUIET)


# ----------------------------------------------------------------------------- CLI and DDP

CLI_TINY = ["--widths", "8,6,4", "--no-vgg", "--device", "cpu", "--workers", "0", "--no-progress",
            "--batch-size", "8", "--log-every", "1"]


def test_cli_train_ref_stop_and_resume(prouigan_build, tmp_path):
    out = str(tmp_path / "cli")
    args = ["train-ref", "--data", prouigan_build, "--out", out, "--steps", "1,0,1", *CLI_TINY]
    r = CliRunner().invoke(cli, [*args, "--stop-at-step", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == 1
    r = CliRunner().invoke(cli, args)
    assert r.exit_code != 0 and "--resume" in r.output
    r = CliRunner().invoke(cli, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["done"] and summary["steps"] == 2 and summary["steps_run"] == 1
    assert not os.path.exists(os.path.join(out, "stage2.pt"))  # a 0-step stage is skipped
    # no VGG weights and no flag: one line naming the ways out, and nothing written
    r = CliRunner().invoke(cli, ["train-ref", "--data", prouigan_build, "--out", str(tmp_path / "v"),
                                 "--steps", "1,0,0", *[a for a in CLI_TINY if a != "--no-vgg"]],
                           env={"OCCFACE_VGG_DIR": str(tmp_path / "none"), "TORCH_HOME": str(tmp_path)})
    assert r.exit_code != 0
    msg = r.output.strip()
    assert len(msg.splitlines()) == 1 and "Traceback" not in msg
    for needle in ("--download-vgg", "--no-vgg", "--vgg16", str(tmp_path / "hub" / "checkpoints")):
        assert needle in msg, needle
    assert not os.path.exists(tmp_path / "v")
    # a loss set without VGG terms trains without any weights
    r = CliRunner().invoke(cli, ["train-ref", "--data", prouigan_build, "--out", str(tmp_path / "m"),
                                 "--steps", "1,0,1", "--variant", "lg-minus",
                                 *[a for a in CLI_TINY if a != "--no-vgg"]],
                           env={"TORCH_HOME": str(tmp_path)})
    assert r.exit_code == 0, r.output


@pytest.mark.slow
def test_ddp_two_cpu_processes_equal_one_process(prouigan_build, tmp_path):
    """torchrun, 2 ranks, gloo: global batch 8 as 2 x 4 gives the parameters one process
    gets from batch 8 (up to float rounding, far below one Adam step of ~lr)."""
    steps = ["--steps", "1,1,1"]
    ddp_out, one_out = str(tmp_path / "ddp"), str(tmp_path / "one")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "occface_cli.main", "train-ref", "--data", prouigan_build, "--out", ddp_out, *steps, *CLI_TINY]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "over 2 rank(s)" in p.stderr
    r = CliRunner().invoke(cli, ["train-ref", "--data", prouigan_build, "--out", one_out, *steps, *CLI_TINY])
    assert r.exit_code == 0, r.output
    a, b = (T.load_checkpoint(os.path.join(d, "last.pt")) for d in (ddp_out, one_out))
    assert a["world_size"] == 2 and b["world_size"] == 1
    # Adam's first steps are lr * g / (|g| + eps): where a gradient is ~eps, float rounding in
    # the all-reduce can move that one element by up to a step (lr <= 1e-3, three steps). So
    # every element must agree within three of the largest steps, and all but 1 in 10,000
    # within 2e-5.
    pairs = [(k, a["generator"][k], b["generator"][k]) for k in a["generator"]]
    pairs += [((d, k), a["discriminators"][d][k], b["discriminators"][d][k])
              for d in ("local", "global") for k in a["discriminators"][d]]
    far, total = 0, 0
    for k, x, y in pairs:
        diff = (x - y).abs()
        assert diff.max() < 3e-3, k
        far += int((diff >= 2e-5).sum())
        total += diff.numel()
    assert far <= total * 1e-4, (far, total)


def test_train_says_once_when_the_build_lacks_its_heatmaps(prouigan_build, tmp_path):
    from occface import build as B
    from occface.build import BuildConfig
    from occface.db import SampleSource

    assert T.heatmap_note(tiny_cfg(), prouigan_build) is None  # all68@16/32/64 stored
    assert T.heatmap_note(tiny_cfg(heatmaps_on_device=True), prouigan_build) is None
    default = str(tmp_path / "default")
    B.build(SampleSource(lfw_faces=8), BuildConfig(), default, workers=1, progress=False, log=lambda s: None)
    note = T.heatmap_note(tiny_cfg(), default)
    assert "stores heatmaps fhc4@64, not all68@16, all68@32, all68@64" in note
    assert "build with heatmaps all68@16,all68@32,all68@64" in note and "--" not in note


# ----------------------------------------------------------------------------- the landmark prior

def _scalars(out: str) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(os.path.join(out, "tb"), size_guidance={"scalars": 0})
    ev.Reload()
    return {t: [(e.step, e.value) for e in ev.Scalars(t)] for t in ev.Tags()["scalars"]}


def test_heatmap_loss_falls_below_the_all_zero_baseline_in_a_tiny_run(prouigan_build, tmp_path):
    """A real seeded stage-1 run on the sample build, templates off so that only gradient
    descent can move the heads: block 1's and the learned prior's L_h (normalised: predicting
    all zeros scores exactly 1, logged beside it) fall well below 1."""
    model = ProUIGANConfig(**{**TINY, "heatmap_template": False, "widths": (16, 6, 4), "prior_width": 16})
    cfg = tiny_cfg(model=model, stage_steps=(20, 0, 0), lrs=(5e-3, 1e-4, 1e-3), log_every=2,
                   stage1_adversarial=False, heatmaps_on_device=True)
    out = str(tmp_path / "prior")
    T.train(cfg, prouigan_build, out, **QUIET)
    sc = _scalars(out)
    zero = [v for _, v in sc["loss/g/block1/heatmap_zero"]]
    assert zero == pytest.approx([1.0] * len(zero))
    for tag in ("loss/g/block1/heatmap", "loss/g/prior/heatmap"):
        first, last = sc[tag][0][1], sc[tag][-1][1]
        assert last < 0.97 and last < first - 0.15, (tag, first, last)
    assert "train/prior/nme_block1" in sc and "train/prior/nme_estimator" in sc


def test_heatmap_templates_start_at_the_mean_training_heatmap(prouigan_build, tmp_path):
    from occface.train.inputs import mean_heatmaps
    from occface.train.loop import build_heatmap_sigma

    cfg = tiny_cfg(stage_steps=(1, 0, 0), lrs=(1e-9, 1e-9, 1e-9))
    out = str(tmp_path / "tpl")
    T.train(cfg, prouigan_build, out, **QUIET)
    g, _ = T.load_generator(os.path.join(out, "last.pt"))
    means = mean_heatmaps(prouigan_build, cfg, build_heatmap_sigma(prouigan_build, cfg))
    assert [tuple(m.shape) for m in means] == [(68, 16, 16), (68, 32, 32), (68, 64, 64)]
    for block, m in zip(g.blocks, means):
        torch.testing.assert_close(block.heatmap_head.template.detach(), m, atol=1e-6, rtol=0)
    # and the untrained blocks' L_h already beats all zeros at step 1
    sc = _scalars(out)
    assert sc["loss/g/block1/heatmap"][0][1] < 1.0


# ----------------------------------------------------------------------------- variants, conveniences

@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory):
    """Random-initialised in-project VGG stacks saved as files (stand-ins for ImageNet's)."""
    d = tmp_path_factory.mktemp("vgg")
    torch.manual_seed(0)
    p16, p19 = str(d / "vgg16.pth"), str(d / "vgg19.pth")
    torch.save(VGGFeatures("vgg16", STYLE_TAPS).state_dict(), p16)
    torch.save(VGGFeatures("vgg19", FEATURE_TAPS).state_dict(), p19)
    return p16, p19


@pytest.mark.parametrize("variant", ["lg-minus", "lg-plus", "lg-star", "lg-dagger", "full"])
def test_every_variant_trains_one_step_and_its_config_round_trips(prouigan_build, vgg_files, tmp_path, variant):
    from occface.model import LossWeights

    p16, p19 = vgg_files
    loss = LossWeights.preset(variant, heatmap=0.5)
    cfg = tiny_cfg(loss=loss, stage_steps=(0, 0, 1), batch_size=2, no_vgg=False, vgg16=p16, vgg19=p19)
    out = str(tmp_path / variant)
    s = T.train(cfg, prouigan_build, out, **QUIET)
    assert s["done"] and s["steps"] == 1
    terms = set(s["losses"])
    assert ("g/block1/feature" in terms) == (variant in ("lg-star", "lg-dagger", "full"))
    assert ("g/block3/feature" in terms) == (variant != "lg-minus")
    assert ("g/block1/style" in terms) == (variant in ("lg-dagger", "full"))
    assert ("g/block3/adv_local" in terms) == (variant in ("lg-dagger", "full"))
    assert ("g/block3/adv_global" in terms) == ("d/block3/d_global" in terms) == (variant == "full")
    ck = T.load_checkpoint(os.path.join(out, "last.pt"))
    assert T.loss_weights_from_dict(ck["config"]["loss"]) == loss
    assert ck["config"]["loss"]["variant"] == variant
    # a stage-3 optimiser trains only the discriminators the loss set uses
    names = [g["name"] for g in (ck["optimizers"]["d"] or {"param_groups": []})["param_groups"]]
    assert names == [n for n, on in (("local_d", loss.uses_local_d), ("global_d", loss.uses_global_d)) if on]


def test_lr_decay_is_a_pure_function_of_the_step():
    cos = tiny_cfg(stage_steps=(5, 0, 11), lr_decay="cosine", lr_decay_min=0.1)
    assert T.lr_at(0, cos)["block1"] == pytest.approx(1e-4)
    assert T.lr_at(4, cos)["block1"] == pytest.approx(1e-5)                 # stage 1 ends at 0.1x
    assert T.lr_at(5, cos)["block3"] == pytest.approx(1e-3)                 # stage 3 restarts
    assert T.lr_at(10, cos)["block3"] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half way
    assert T.lr_at(15, cos)["block3"] == pytest.approx(1e-4)
    step = tiny_cfg(stage_steps=(0, 0, 8), lr_decay="step", lr_decay_gamma=0.5,
                    lr_decay_milestones=(0.5, 0.75))
    assert [T.lr_at(s, step)["block3"] / 1e-3 for s in range(8)] == pytest.approx(
        [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25])
    assert T.lr_at(3, step) == T.lr_at(3, step)
    with pytest.raises(ValueError, match="lr_decay"):
        tiny_cfg(lr_decay="linear")


def test_ema_clipping_decay_and_periodic_validation(prouigan_build, tmp_path):
    """EMA generator (exported in generator.pt), gradient clipping, cosine decay and the
    periodic validation on the test split, all in one small run."""
    cfg = tiny_cfg(stage_steps=(2, 2, 2), ema_decay=0.5, grad_clip=0.5, lr_decay="cosine",
                   val_every=3, val_images=6)
    out = str(tmp_path / "ema")
    logs = []
    s = T.train(cfg, prouigan_build, out, progress=False, log=logs.append)
    assert s["done"]
    assert any(os.path.join(out, "tb") in m and os.path.join(out, "grids") in m for m in logs)
    assert any("validation on 6 test faces" in m for m in logs)
    last = T.load_checkpoint(os.path.join(out, "last.pt"))
    gen = T.load_checkpoint(os.path.join(out, "generator.pt"))
    assert gen["ema"] is True and "generator_ema" not in gen
    assert_same(gen["generator"], last["generator_ema"])
    assert any(not torch.equal(last["generator"][k], last["generator_ema"][k]) for k in last["generator"])
    g, info = T.load_generator(os.path.join(out, "last.pt"))
    assert info["ema"] and torch.equal(g.state_dict()["blocks.2.to_image.weight"],
                                       last["generator_ema"]["blocks.2.to_image.weight"])
    sc = _scalars(out)
    for k in (1, 2, 3):
        assert [st for st, _ in sc[f"val/psnr_block{k}"]] == [3, 6]
        assert f"val/ssim_block{k}" in sc and f"val/nme_block{k}" in sc
    assert "val/nme_mean_shape" in sc and "val/nme_estimator" in sc
    assert "loss/g/grad_norm" in sc  # the norm before clipping, logged
    # a resumed run continues from the saved EMA, bit-exactly like an uninterrupted one
    out2 = str(tmp_path / "ema2")
    T.train(cfg, prouigan_build, out2, stop_at_step=3, **QUIET)
    T.train(cfg, prouigan_build, out2, resume=True, **QUIET)
    b = T.load_checkpoint(os.path.join(out2, "last.pt"))
    assert_same(last["generator_ema"], b["generator_ema"])


def test_cli_loss_options_reach_the_config(prouigan_build, tmp_path):
    out = str(tmp_path / "opts")
    r = CliRunner().invoke(cli, ["train-ref", "--data", prouigan_build, "--out", out, "--steps", "1,0,0",
                                 *CLI_TINY, "--variant", "lg-plus", "--loss-weights",
                                 "alpha=0.02,gamma=5,4,3,heatmap=0.3,prior=2", "--loss-reduction", "sum",
                                 "--heatmap-norm", "none", "--ema", "0.9", "--grad-clip", "1",
                                 "--lr-decay", "step", "--stop-prior-gradients", "--prior", "points",
                                 "--heatmap-residual"])
    assert r.exit_code == 0, r.output
    cfg = json.load(open(os.path.join(out, "run.json")))["config"]
    assert cfg["loss"] == {**cfg["loss"], "variant": "lg-plus", "alpha": 0.02, "gamma_a": 5.0, "gamma_b": 4.0,
                           "gamma_c": 3.0, "heatmap": 0.3, "prior": 2.0, "reduction": "sum",
                           "heatmap_norm": "none", "feature_blocks": [2, 3]}
    assert (cfg["ema_decay"], cfg["grad_clip"], cfg["lr_decay"]) == (0.9, 1.0, "step")
    assert cfg["model"]["detach_prior"] is True and cfg["model"]["detach_heatmaps"] is True
    assert cfg["model"]["prior_kind"] == "points" and cfg["model"]["heatmap_residual"] is True
    r = CliRunner().invoke(cli, ["train-ref", "--data", prouigan_build, "--out", str(tmp_path / "bad"),
                                 *CLI_TINY, "--loss-weights", "beta=1"])
    assert r.exit_code != 0 and "unknown weight 'beta'" in r.output


def test_points_prior_learns_in_a_tiny_run_and_round_trips(prouigan_build, tmp_path):
    """A real seeded stage-1 run with the points prior and residual heads: the prior starts at the
    mean training shape, its L_h (on its rendered points) falls, the checkpoint keeps the config,
    and the points are what the estimator's NME is taken from."""
    import numpy as np

    from occface.evaluate.inference import run_generator_with_prior
    from occface.evaluate.landmarks import nme
    from occface.train.inputs import mean_landmarks

    model = ProUIGANConfig(**{**TINY, "widths": (16, 6, 4), "prior_width": 16, "prior_kind": "points",
                              "heatmap_residual": True})
    cfg = tiny_cfg(model=model, stage_steps=(20, 0, 0), lrs=(5e-3, 1e-4, 1e-3), log_every=2,
                   stage1_adversarial=False, heatmaps_on_device=True)
    out = str(tmp_path / "points")
    T.train(cfg, prouigan_build, out, **QUIET)
    sc = _scalars(out)
    first, last = sc["loss/g/prior/heatmap"][0][1], sc["loss/g/prior/heatmap"][-1][1]
    assert last < 0.9 * first, (first, last)  # the mean shape already scores ~0.1 of all zeros
    ck = T.load_checkpoint(os.path.join(out, "last.pt"))
    assert ck["config"]["model"]["prior_kind"] == "points" and ck["config"]["model"]["heatmap_residual"] is True
    g, _ = T.load_generator(os.path.join(out, "last.pt"))
    torch.testing.assert_close(g.prior.mean_shape, mean_landmarks(prouigan_build))
    from occface.data import LoaderConfig, ShardReader

    b = ShardReader(prouigan_build, LoaderConfig(split="train", heatmaps=(), dtype="uint8")).get_batch(list(range(8)))
    res = run_generator_with_prior(g, b["lr"].transpose(0, 2, 3, 1))
    with torch.no_grad():
        pts = g(torch.from_numpy(b["lr"]).float() / 127.5 - 1).prior_points.double().numpy()
    np.testing.assert_allclose(res.prior, pts, atol=1e-4)
    assert np.isfinite(nme(res.prior, np.asarray(b["landmarks"]))).all()
