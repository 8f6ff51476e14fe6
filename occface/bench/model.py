"""Size, FLOPs and speed of the Pro-UIGAN reference model.

Used by ``occface bench model`` and by the model card (docs/model_card.md).
All timings use ``torch.inference_mode`` and report the median of timed
iterations after warm-up.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from functools import partial

import torch
from torch import nn

from ..model.attention import attend
from ..model.config import LR_SIZE, ProUIGANConfig
from ..model.discriminators import GlobalDiscriminator, LocalDiscriminator
from ..model.generator import ProUIGenerator
from ..runtime import autocast


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def saved_bytes(module: nn.Module) -> int:
    """Size of ``torch.save(module.state_dict())`` on disk, fp32."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "state.pt")
        torch.save(module.state_dict(), path)
        return os.path.getsize(path)


def model_size(config: ProUIGANConfig | None = None) -> dict[str, dict[str, int]]:
    """Parameters and saved size of G (and its prior estimator), Local-D
    and Global-D."""
    config = config or ProUIGANConfig()
    parts = {"generator": ProUIGenerator(config), "local_d": LocalDiscriminator(config),
             "global_d": GlobalDiscriminator(config)}
    out = {name: {"params": count_parameters(m), "bytes": saved_bytes(m)}
           for name, m in parts.items()}
    prior = parts["generator"].prior
    out["generator"]["prior_params"] = count_parameters(prior) if prior is not None else 0
    return out


def _example_inputs(config: ProUIGANConfig, batch: int, device, channels_last: bool):
    lr = torch.rand(batch, 3, LR_SIZE, LR_SIZE, device=device) * 2 - 1
    hm = None
    if config.landmark_input == "gt":
        hm = torch.rand(batch, config.heatmap_channels[0], LR_SIZE, LR_SIZE, device=device)
    if channels_last:
        lr = lr.contiguous(memory_format=torch.channels_last)
    return lr, hm


def generator_flops(config: ProUIGANConfig | None = None) -> dict[str, int]:
    """FLOPs of one generator forward pass on one image, counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts
    as 2), in total and per top-level submodule.  The CPU flash-attention
    op has no formula in PyTorch's table; it gets the standard SDPA one
    (Q Kᵀ and A V products) so fused softmax attention is counted too."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_flash_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(q_shape, k_shape, v_shape)

    config = config or ProUIGANConfig()
    model = ProUIGenerator(config).eval()
    lr, hm = _example_inputs(config, 1, "cpu", False)
    counter = FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_flash_flops})
    with torch.inference_mode(), counter:
        model(lr, hm)
    per_module = counter.get_flop_counts()
    out = {"total": counter.get_total_flops()}
    for name in ("ProUIGenerator.prior", "ProUIGenerator.blocks.0",
                 "ProUIGenerator.blocks.1", "ProUIGenerator.blocks.2"):
        if name in per_module:
            out[name.split(".", 1)[1]] = sum(per_module[name].values())
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, iters: int, warmup: int, max_seconds: float) -> tuple[float, int]:
    """Median seconds per call; stops after ``iters`` calls or once
    ``max_seconds`` have been spent timing (at least one call)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times, start = [], time.perf_counter()
    while len(times) < iters and (not times or time.perf_counter() - start < max_seconds):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def time_generator(config: ProUIGANConfig | None = None, *, batch: int = 1,
                   device: str = "cpu", bf16: bool = False, channels_last: bool = False,
                   compile: bool = False, iters: int = 20, warmup: int = 2,
                   max_seconds: float = 10.0) -> dict[str, float]:
    """Inference speed of the generator: ms per batch, ms per image and
    images per second at ``batch``."""
    config = config or ProUIGANConfig()
    dev = torch.device(device)
    model = ProUIGenerator(config).eval().to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    run = torch.compile(model) if compile else model
    lr, hm = _example_inputs(config, batch, dev, channels_last)

    def step():
        with torch.inference_mode(), autocast(dev, "bf16" if bf16 else "none"):
            run(lr, hm)

    sec, n = _timed(step, dev, iters, warmup, max_seconds)
    return {"batch": batch, "iters": n, "ms_per_batch": sec * 1e3,
            "ms_per_image": sec * 1e3 / batch, "images_per_s": batch / sec}


def _peak_bytes(fn, device: torch.device) -> int:
    """Peak bytes allocated while ``fn`` runs (CUDA allocator statistics, or
    the CPU profiler's allocation events)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def attention_comparison(*, side: int = 64, width: int = 32, qk_dim: int | None = None,
                         batch: int = 1, device: str = "cpu", bf16: bool = False,
                         iters: int = 20, warmup: int = 2,
                         max_seconds: float = 5.0) -> list[dict[str, float]]:
    """Fused/associative vs naive N x N attention at ``side`` x ``side``
    positions (N = side^2), for both kernels: time and peak memory of one
    call, and their ratios (naive / fused)."""
    dev = torch.device(device)
    n = side * side
    d = qk_dim or width
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(batch, n, d, generator=gen).to(dev) for _ in range(2))
    v = torch.randn(batch, n, width, generator=gen).to(dev)
    rows = []
    for kind in ("cosine", "softmax"):
        calls = {impl: partial(_attention_call, kind, q, k, v, naive, dev, bf16)
                 for impl, naive in (("fused", False), ("naive", True))}
        for call in calls.values():
            for _ in range(warmup):
                call()
        # alternate the two so that machine load affects both alike
        times: dict[str, list[float]] = {impl: [] for impl in calls}
        start = time.perf_counter()
        while len(times["fused"]) < iters and (
                not times["fused"] or time.perf_counter() - start < max_seconds):
            for impl, call in calls.items():
                times[impl].append(_timed(call, dev, 1, 0, 0.0)[0])
        row = {"kind": kind, "positions": n, "iters": len(times["fused"])}
        for impl, call in calls.items():
            row[f"{impl}_ms"] = statistics.median(times[impl]) * 1e3
            row[f"{impl}_peak_bytes"] = _peak_bytes(call, dev)
        row["time_ratio"] = row["naive_ms"] / row["fused_ms"]
        row["memory_ratio"] = row["naive_peak_bytes"] / max(row["fused_peak_bytes"], 1)
        rows.append(row)
    return rows


def _attention_call(kind, q, k, v, naive, device, bf16):
    with torch.inference_mode(), autocast(device, "bf16" if bf16 else "none"):
        return attend(kind, q, k, v, naive=naive)
