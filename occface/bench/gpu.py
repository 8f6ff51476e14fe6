"""GPU readiness in one run: training and inference speed of the reference model, and memory.

``occface bench gpu --data BUILD`` measures, on one device, within a few minutes:

* **training images/s**: full stage-3 steps (generator, Local-D and Global-D updates, the
  paper's losses; VGG-16/19 stacks with random weights, which cost the same time as the
  ImageNet ones) on real faces of the build, for fp32 eager (the baseline of the run), bf16
  autocast + channels_last eager, and bf16 + channels_last under ``torch.compile``;
* **inference images/s** of the generator at batch 256 (``torch.inference_mode``), the same
  three ways;
* **peak memory** of each measurement (``torch.cuda.max_memory_allocated``; not measured on
  CPU).

Each measurement runs ``warmup`` untimed iterations (compilation happens there), then timed
iterations until ``seconds`` have passed; the figure is images / timed seconds, and the ratio
to the fp32 eager figure of the same run.  The results are a JSON object and one Markdown row
per measurement (docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import platform
import time

import numpy as np
import torch

from ..data import LoaderConfig, ShardReader
from ..data.convert import as_torch
from ..faces.heatmaps import render_torch
from ..model import (GlobalDiscriminator, LocalDiscriminator, LossWeights, ProUIGANConfig,
                     ProUIGANLoss, ProUIGenerator, VGGFeatures)
from ..model.vgg import FEATURE_TAPS, STYLE_TAPS
from ..runtime import autocast

#: (name, amp, channels_last, compile) of the three measured set-ups; the first is the baseline.
SETUPS = (("fp32 eager", "none", False, False),
          ("bf16 channels_last eager", "bf16", True, False),
          ("bf16 channels_last compiled", "bf16", True, True))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def real_batch(data, n: int, device: torch.device, seed: int = 0) -> dict:
    """``n`` real training faces of ``data`` (repeated when the split is smaller) as float32
    tensors on ``device``: lr (n, 3, 16, 16), hr (n, 3, 128, 128) in [-1, 1], landmarks."""
    reader = ShardReader(data, LoaderConfig(split="train", heatmaps=(), dtype="uint8"))
    if not len(reader):
        reader = ShardReader(data, LoaderConfig(split=None, heatmaps=(), dtype="uint8"))
    if not len(reader):
        raise ValueError(f"{data} holds no samples")
    idx = np.resize(np.random.default_rng(seed).permutation(len(reader))[:n], n)
    b = as_torch(reader.get_batch(idx.tolist()))
    lr = b["lr"].to(device).float() / 127.5 - 1
    hr = b["hr"].to(device).float() / 127.5 - 1
    return {"lr": lr, "hr": hr, "landmarks": b["landmarks"].to(device)}


def _timed(fn, device, warmup: int, seconds: float, images_per_call: int) -> tuple[float, int]:
    for _ in range(warmup):
        fn()
    _sync(device)
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        _sync(device)
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return calls * images_per_call / dt, calls


def bench_training(batch: dict, model: ProUIGANConfig, device: torch.device, *, batch_size: int,
                   amp: str, channels_last: bool, compile: bool, warmup: int, seconds: float,
                   sigma: float = 1.0) -> dict:
    """Stage-3 training images/s (and peak memory) of one set-up."""
    from ..train import TrainConfig
    from ..train.loop import setup_stage, train_step

    torch.manual_seed(0)
    cfg = TrainConfig(model=model, loss=LossWeights(), stage_steps=(0, 0, 1), batch_size=batch_size,
                      amp=amp, channels_last=channels_last, compile=compile, device=str(device),
                      heatmaps_on_device=True, no_vgg=False)
    g, ld, gd = ProUIGenerator(model), LocalDiscriminator(model), GlobalDiscriminator(model)
    criterion = ProUIGANLoss(model, cfg.loss, vgg19=VGGFeatures("vgg19", FEATURE_TAPS),
                             vgg16=VGGFeatures("vgg16", STYLE_TAPS))
    mem = torch.channels_last if channels_last else torch.contiguous_format
    for m in (g, ld, gd, criterion):
        m.to(device=device, memory_format=mem)
    st = setup_stage(3, cfg, g, ld, gd, device, False, None)
    lr, hr = batch["lr"][:batch_size], batch["hr"][:batch_size]
    hms = [render_torch(batch["landmarks"][:batch_size], g_, s, sigma)
           for g_, s in zip(model.heatmap_groupings, (16, 32, 64))]
    if channels_last:
        lr, hr = (t.contiguous(memory_format=torch.channels_last) for t in (lr, hr))
        hms = [t.contiguous(memory_format=torch.channels_last) for t in hms]

    def step():
        train_step(st, criterion, lr, hr, hms, device, amp)

    _peak_reset(device)
    ips, calls = _timed(step, device, warmup, seconds, batch_size)
    return {"images_per_s": ips, "timed_steps": calls, "peak_memory_gib": _peak_gib(device)}


def bench_inference(batch: dict, model: ProUIGANConfig, device: torch.device, *, batch_size: int,
                    amp: str, channels_last: bool, compile: bool, warmup: int, seconds: float) -> dict:
    """Generator inference images/s (and peak memory) of one set-up at ``batch_size``."""
    torch.manual_seed(0)
    g = ProUIGenerator(model).eval().to(device)
    lr = batch["lr"][:batch_size]
    if lr.shape[0] < batch_size:
        lr = lr.repeat((batch_size + lr.shape[0] - 1) // lr.shape[0], 1, 1, 1)[:batch_size]
    if channels_last:
        g = g.to(memory_format=torch.channels_last)
        lr = lr.contiguous(memory_format=torch.channels_last)
    run = torch.compile(g) if compile else g

    def fwd():
        with torch.inference_mode(), autocast(device, amp):
            run(lr)

    _peak_reset(device)
    ips, calls = _timed(fwd, device, warmup, seconds, batch_size)
    return {"images_per_s": ips, "timed_batches": calls, "peak_memory_gib": _peak_gib(device)}


def run(data, *, device: str = "cuda", model: ProUIGANConfig | None = None, train_batch: int = 64,
        infer_batch: int = 256, warmup: int = 5, seconds: float = 20.0, compile_modes=(False, True),
        log=print) -> dict:
    """Every set-up of :data:`SETUPS` whose compile flag is in ``compile_modes``, training
    then inference; returns the JSON-ready result (device, versions, rows)."""
    dev = torch.device(device)
    model = model or ProUIGANConfig()
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    batch = real_batch(data, max(train_batch, infer_batch), dev)
    rows = []
    t_all = time.perf_counter()
    for name, amp, cl, comp in SETUPS:
        if comp not in compile_modes:
            continue
        for kind, fn, bs in (("training", bench_training, train_batch), ("inference", bench_inference, infer_batch)):
            t0 = time.perf_counter()
            r = fn(batch, model, dev, batch_size=bs, amp=amp, channels_last=cl, compile=comp,
                   warmup=warmup, seconds=seconds)
            r.update(kind=kind, setup=name, amp=amp, channels_last=cl, compile=comp, batch=bs,
                     wall_s=time.perf_counter() - t0)
            rows.append(r)
            mem = "" if r["peak_memory_gib"] is None else f", peak {r['peak_memory_gib']:.2f} GiB"
            log(f"{kind:9s} {name:28s} batch {bs:4d}: {r['images_per_s']:10.1f} images/s{mem} "
                f"({r['wall_s']:.0f} s)")
    for kind in ("training", "inference"):
        base = next((r["images_per_s"] for r in rows if r["kind"] == kind and r["setup"] == SETUPS[0][0]), None)
        for r in rows:
            if r["kind"] == kind:
                r["x_fp32_eager"] = r["images_per_s"] / base if base else None
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {"device": name, "torch": torch.__version__, "model": dataclasses.asdict(model),
            "targets": {"training_images_per_s": 2000, "inference_images_per_s_batch_256": 10000},
            "total_wall_s": time.perf_counter() - t_all, "rows": rows}


def markdown(result: dict) -> str:
    """One Markdown table row per measurement, with a header."""
    lines = [f"Device: {result['device']}, torch {result['torch']}; total {result['total_wall_s']:.0f} s.", "",
             "| measurement | set-up | batch | images/s | x fp32 eager | peak memory (GiB) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        ratio = "—" if r.get("x_fp32_eager") is None else f"{r['x_fp32_eager']:.2f}"
        mem = "not measured" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}"
        lines.append(f"| {r['kind']} | {r['setup']} | {r['batch']} | {r['images_per_s']:.1f} | {ratio} | {mem} |")
    return "\n".join(lines)
