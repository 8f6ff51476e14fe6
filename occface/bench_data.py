"""Loader benchmark: complete training items from shards, side by side with image files + Pillow.

Baseline (what a loader over image files does at the least): the same HR faces written as
128x128 JPEG files (quality 95); per sample, Pillow opens and decodes the file and
downsamples it to the LR size with ``Image.BILINEAR``.  Nothing else: no mask, no heatmaps,
no float conversion.

Ours: ``ShardReader.get_item`` (the numpy core that ``ShardDataset`` wraps), i.e. a complete
training item: occluded LR, clean HR, occluded HR, mask, landmarks and the configured heatmaps,
float32 and normalised (or uint8 with ``dtype="uint8"``).  For the Pro-UIGAN configurations
also ``ShardDataset`` items (tensors) and ``DataLoader(batch_size=64, num_workers=0)`` batches,
which add collation (a copy of every item into fresh batch memory) with ``default_collate``
and with ``occface.data.collate``.

Both read the same samples in the same (shuffled) order, warm (files in the page cache, shard
handles open).  Each of ``rounds`` rounds times the baseline and then every configuration once
over all samples (interleaved, so drifting load on a shared machine hits all of them alike);
speeds are the median over rounds of items/s and of the within-round ratio to the baseline.
Run it pinned to one core (``taskset -c 0``) for per-core figures; the benchmark itself also
sets OpenCV and torch to one thread.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

import numpy as np

from .data import LoaderConfig, ShardReader

PRO_UIGAN = ("pu7@16", "pu42@32", "all68@64")


def default_configs(stored: tuple[str, ...]) -> list[tuple[str, LoaderConfig]]:
    """The configurations timed (heatmap_source "auto": stored maps are read when the build has them)."""
    from .masks import SquareMask

    cfgs = [("Pro-UIGAN 7@16+42@32+68@64, f32", LoaderConfig(split=None, heatmaps=PRO_UIGAN))]
    if any(sp in stored for sp in PRO_UIGAN):
        cfgs.append(("Pro-UIGAN, f32, rendered", LoaderConfig(split=None, heatmaps=PRO_UIGAN, heatmap_source="render")))
        cfgs.append(("Pro-UIGAN, uint8, rendered",
                     LoaderConfig(split=None, heatmaps=PRO_UIGAN, heatmap_source="render", dtype="uint8")))
    cfgs += [
        ("FHC fhc4@64, f32", LoaderConfig(split=None, heatmaps=("fhc4@64",))),
        ("pu7@16 only, f32", LoaderConfig(split=None, heatmaps=("pu7@16",))),
        ("no heatmaps, f32", LoaderConfig(split=None, heatmaps=())),
        ("no heatmaps, f32, re-mask square", LoaderConfig(split=None, heatmaps=(), remask=SquareMask())),
        ("Pro-UIGAN, uint8", LoaderConfig(split=None, heatmaps=PRO_UIGAN, dtype="uint8")),
        ("pu7@16 only, uint8", LoaderConfig(split=None, heatmaps=("pu7@16",), dtype="uint8")),
    ]
    return cfgs


def write_jpegs(reader: ShardReader, indices, out_dir: str, quality: int = 95) -> list[str]:
    """The HR faces of ``indices`` as JPEG files (the baseline's input)."""
    from PIL import Image

    paths = []
    for i in indices:
        shard, row = reader.location(int(i))
        h = reader._handle(int(reader._shard_of[int(i)]))  # noqa: SLF001 - benchmark reads raw HR
        hr = np.array(h.view("hr", row))
        p = os.path.join(out_dir, f"{int(i):07d}.jpg")
        Image.fromarray(hr).save(p, quality=quality)
        paths.append(p)
    return paths


def baseline_pass(paths: list[str], lr_size: int) -> None:
    from PIL import Image

    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            hr = np.asarray(im)
            lr = np.asarray(im.resize((lr_size, lr_size), Image.BILINEAR))
        del hr, lr


def run(build_dirs, n: int = 2000, rounds: int = 5, seed: int = 0, configs=None, torch_items: bool = True,
        echo=print) -> dict:
    """Time the baseline and each loader configuration; returns and prints the figures."""
    import cv2

    cv2.setNumThreads(1)
    probe = ShardReader(build_dirs, LoaderConfig(split=None, heatmaps=()))
    total = len(probe)
    if total == 0:
        raise ValueError("the build holds no samples")
    order = np.random.default_rng(seed).permutation(total)[: min(n, total)]
    stored = tuple(sorted({s for sh in probe._shards for s in sh.stored_heatmaps}))  # noqa: SLF001
    configs = configs or default_configs(stored)
    tmp = tempfile.mkdtemp(prefix="occface-bench-data-")
    try:
        paths = write_jpegs(probe, order, tmp)
        readers = [(name, ShardReader(build_dirs, cfg)) for name, cfg in configs]
        timed = [(name, _item_pass(r, order)) for name, r in readers]
        if torch_items:
            import torch

            from . import data

            torch.set_num_threads(1)
            for name, r in readers:
                if name.startswith("Pro-UIGAN") and "rendered" not in name:
                    short = name.replace(" 7@16+42@32+68@64", "")
                    ds = data.ShardDataset(r)
                    timed.append((f"{short} | ShardDataset items (torch)", _item_pass(ds, order)))
                    for cname, cfn in (("default_collate", None), ("occface collate", data.collate)):
                        loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=order.tolist(), num_workers=0,
                                                             collate_fn=cfn)
                        timed.append((f"{short} | DataLoader(64), {cname}", _loader_pass(loader)))
        baseline_pass(paths, probe.lr_size)  # warm the page cache and Pillow
        for _, fn in timed:  # open every shard handle
            fn()
        speeds = {"baseline": []}
        ratios: dict[str, list[float]] = {}
        for _ in range(rounds):
            t0 = time.perf_counter()
            baseline_pass(paths, probe.lr_size)
            base = len(order) / (time.perf_counter() - t0)
            speeds["baseline"].append(base)
            for name, fn in timed:
                t0 = time.perf_counter()
                fn()
                v = len(order) / (time.perf_counter() - t0)
                speeds.setdefault(name, []).append(v)
                ratios.setdefault(name, []).append(v / base)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "samples": len(order),
        "rounds": rounds,
        "stored_heatmaps": list(stored),
        "baseline_per_s": statistics.median(speeds["baseline"]),
        "configs": {name: {"items_per_s": statistics.median(speeds[name]), "ratio": statistics.median(ratios[name])}
                    for name, _ in timed},
    }
    echo(f"{len(order)} samples x {rounds} rounds (median); stored heatmaps: {', '.join(stored) or 'none'}")
    echo(f"{'baseline: JPEG 128 decode + bilinear to 16 (Pillow)':56s} {result['baseline_per_s']:7.0f} /s")
    for name, v in result["configs"].items():
        echo(f"{name:56s} {v['items_per_s']:7.0f} items/s {v['ratio']:5.1f}x")
    return result


def _loader_pass(loader):
    def fn():
        for _ in loader:
            pass

    return fn


def _item_pass(dataset, order):
    def fn():  # items are dropped as they come, as a training step would
        for i in order:
            dataset[int(i)]

    return fn
