"""``occface bench model``: size, FLOPs and speed of the Pro-UIGAN reference model."""

from __future__ import annotations

import click

from .common import NumberList


@click.command("model")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Device the generator runs on.")
@click.option("--batch", "batches", type=NumberList(int, minimum=1), default="1,256", show_default=True,
              help="Comma-separated batch sizes.")
@click.option("--bf16", is_flag=True, help="Run under bfloat16 autocast.")
@click.option("--channels-last", is_flag=True, help="channels_last model and input.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the generator.")
@click.option("--widths", type=NumberList(int, 3, minimum=1), default="128,64,32", show_default=True,
              help="Generator widths (channels) of UI-blocks 1, 2, 3.")
@click.option("--public-code", is_flag=True,
              help="Public code's choices (softmax attention, bilinear, 7/42/68 heatmaps).")
@click.option("--landmark-input", type=click.Choice(["learned", "gt", "none"]),
              default="learned", show_default=True, help="Block-1 landmark input.")
@click.option("--iters", default=20, show_default=True, help="Most timed iterations per batch size.")
@click.option("--warmup", default=2, show_default=True, help="Untimed iterations first.")
@click.option("--max-seconds", default=10.0, show_default=True,
              help="Stop timing a batch size after this long (at least one iteration).")
@click.option("--threads", type=int, default=None, help="torch.set_num_threads (CPU).")
@click.option("--no-size", is_flag=True, help="Skip parameter counts, saved size and FLOPs.")
def bench_model(device, batches, bf16, channels_last, compile_, widths, public_code,
                landmark_input, iters, warmup, max_seconds, threads, no_size):
    """Generator inference speed at each batch size, attention fused vs naive
    at 64x64, and (unless --no-size) parameters, saved size and FLOPs."""
    import torch

    from occface.model import ProUIGANConfig
    from occface.bench import model as mb

    if threads:
        torch.set_num_threads(threads)
    make = ProUIGANConfig.public_code if public_code else ProUIGANConfig
    config = make(widths=widths, landmark_input=landmark_input)
    dev_name = (torch.cuda.get_device_name() if device == "cuda"
                else f"cpu, {torch.get_num_threads()} threads")
    click.echo(f"torch {torch.__version__} | {dev_name} | bf16={bf16} "
               f"channels_last={channels_last} compile={compile_}")
    click.echo(f"config: {config}")
    if not no_size:
        for name, s in mb.model_size(config).items():
            extra = f" (prior estimator {s['prior_params']:,})" if "prior_params" in s else ""
            click.echo(f"{name:9s} {s['params']:>11,} params{extra}  "
                       f"{s['bytes'] / 1e6:7.2f} MB saved fp32")
        flops = mb.generator_flops(config)
        parts = ", ".join(f"{k} {v / 1e9:.3f}" for k, v in flops.items() if k != "total")
        click.echo(f"generator FLOPs/image {flops['total'] / 1e9:.3f} G ({parts})")
    for b in batches:
        r = mb.time_generator(config, batch=b, device=device, bf16=bf16,
                              channels_last=channels_last, compile=compile_, iters=iters,
                              warmup=warmup, max_seconds=max_seconds)
        click.echo(f"batch {b:4d}: {r['ms_per_image']:9.3f} ms/image  "
                   f"{r['images_per_s']:9.1f} images/s  ({r['ms_per_batch']:.1f} ms/batch, "
                   f"median of {r['iters']})")
    click.echo(f"attention at 64x64 (N=4096, width {config.widths[2]}, batch 1):")
    for r in mb.attention_comparison(side=64, width=config.widths[2], qk_dim=config.qk_dim,
                                     device=device, bf16=bf16, iters=iters,
                                     warmup=warmup, max_seconds=max_seconds / 2):
        click.echo(f"  {r['kind']:7s} fused {r['fused_ms']:8.3f} ms {r['fused_peak_bytes'] / 2**20:7.2f} MiB"
                   f" | naive NxN {r['naive_ms']:8.3f} ms {r['naive_peak_bytes'] / 2**20:7.2f} MiB"
                   f" | naive/fused time x{r['time_ratio']:.1f}, memory x{r['memory_ratio']:.1f}")


@click.command("gpu")
@click.option("--data", required=True, type=click.Path(exists=True), help="Build directory (real faces to train on).")
@click.option("--device", default="cuda", show_default=True, help="cuda, cuda:N or cpu (cpu: a tiny check only).")
@click.option("--out", default="bench-gpu", show_default=True, type=click.Path(file_okay=False),
              help="Directory for bench-gpu.json and bench-gpu.md.")
@click.option("--widths", type=NumberList(int, 3, minimum=1), default="128,64,32", show_default=True,
              help="Generator widths (channels) of UI-blocks 1, 2, 3.")
@click.option("--train-batch", default=64, show_default=True, help="Images per training step.")
@click.option("--infer-batch", default=256, show_default=True, help="Images per inference forward pass.")
@click.option("--warmup", default=5, show_default=True, help="Untimed iterations per measurement (compiling happens here).")
@click.option("--seconds", default=20.0, show_default=True, help="Timed seconds per measurement.")
@click.option("--compile", "compile_modes", type=click.Choice(["both", "off", "on"]), default="both",
              show_default=True, help="Measure without torch.compile, with it, or both.")
def bench_gpu(data, device, out, widths, train_batch, infer_batch, warmup, seconds, compile_modes):
    """Training images/s (fp32; bf16 + channels_last, compile off/on), inference images/s at
    batch 256 and peak memory on one device; writes JSON and a Markdown table (about 5 minutes
    with the defaults: 6 measurements of 20 s plus warm-up and compilation)."""
    import json
    import os

    from occface.bench import gpu as gb
    from occface.errors import OccfaceError
    from occface.model import ProUIGANConfig
    from occface.runtime import resolve_device

    try:
        dev = resolve_device(device)
        model = ProUIGANConfig(widths=widths)
        modes = {"both": (False, True), "off": (False,), "on": (True,)}[compile_modes]
        result = gb.run(data, device=dev, model=model, train_batch=train_batch, infer_batch=infer_batch,
                        warmup=warmup, seconds=seconds, compile_modes=modes, log=click.echo)
    except (ValueError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from None
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "bench-gpu.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    md = gb.markdown(result)
    with open(os.path.join(out, "bench-gpu.md"), "w") as fh:
        fh.write(md + "\n")
    click.echo(md)
    click.echo(f"wrote {os.path.join(out, 'bench-gpu.json')} and {os.path.join(out, 'bench-gpu.md')}")
