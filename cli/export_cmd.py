"""``occface export`` and ``occface bench export``."""

from __future__ import annotations

import json

import click

from .common import info, progress_default, user_errors


@click.command("export")
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["basicsr", "folders", "webdataset"]), required=True,
              help="basicsr: gt/ + lq/ PNGs and meta_info.txt (PairedImageDataset); folders: hr/, hr_occluded/, "
                   "mask/, lr/ PNGs + landmarks.csv + meta.jsonl; webdataset: tar shards for wds.WebDataset.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Export folder (fresh, or an interrupted export of the same build and options to resume).")
@click.option("--split", default=None, help="Export only this split (train, test, ...) [default: every sample].")
@click.option("--samples-per-tar", default=1000, show_default=True, type=click.IntRange(min=1),
              help="webdataset: samples per tar shard.")
@click.option("--png-compression", default=1, show_default=True, type=click.IntRange(0, 9),
              help="zlib level of every PNG (0 = none, 9 = smallest and slowest).")
@click.option("--progress/--no-progress", default=None, help="tqdm bar (default: when stderr is a terminal).")
def export_cmd(build_dir, fmt, out, split, samples_per_tar, png_compression, progress):
    """Export a build for other tools: BasicSR paired folders, plain PNG folders, or WebDataset tars.

    Deterministic (the same build and options give the same bytes) and resumable (run the
    same command again after an interruption)."""
    from occface.export import ExportConfig, export

    with user_errors(OSError):
        cfg = ExportConfig(format=fmt, split=split, png_compression=png_compression, samples_per_tar=samples_per_tar)
        rec = export(build_dir, out, cfg, progress=progress_default(progress), log=info)
    files = rec["files"]
    where = files.get("urls") or ", ".join(str(v) for v in files.values() if isinstance(v, str))
    click.echo(f"{rec['samples']} samples ({fmt}) -> {out}: {where}")


@click.command("export")
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1),
              help="Interleaved rounds; figures are medians.")
@click.option("--split", default=None, help="Time one split only [default: every sample].")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Scratch folder (default: a temp dir).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON too.")
def bench_export(build_dir, rounds, split, out, as_json):
    """Samples/s of every export format against Pillow PNGs written by hand (run pinned: taskset -c 0)."""
    from occface.bench import export as bench_mod

    with user_errors(OSError):
        res = bench_mod.run(build_dir, rounds=rounds, split=split, scratch=out, echo=click.echo)
    if as_json:
        click.echo(json.dumps(res, indent=1))
