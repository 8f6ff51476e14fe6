"""Loader benchmark: complete training items from shards, side by side with image files + Pillow.

Baseline (what a loader over image files does at the least): the same HR faces written as
128x128 JPEG files (quality 95); per sample, Pillow opens and decodes the file and
downsamples it to the LR size with ``Image.BILINEAR``.  Nothing else: no mask, no heatmaps,
no float conversion.

Ours, complete training items: occluded LR, clean HR, occluded HR, mask, landmarks and
heatmaps (plus keys, index, split, subject, mask kind, hole ratio).  The configurations:

(a) per-item float32 Pro-UIGAN items, heatmaps read from the shards (``ShardReader.get_item``);
(b) batched uint8 items with the default build's stored heatmaps (``fhc4@64``) through
    ``ShardDataset`` + ``DataLoader(batch_size=64, num_workers=0, collate_fn=collate)``
    (the batched fetch, ``ShardDataset.__getitems__``);
(c) the same for the Pro-UIGAN set (7@16, 42@32, 68@64) read from the shards;
(d) batched uint8 items without heatmaps (landmarks only) + ``add_heatmaps`` /
    ``render_heatmaps_torch`` rendering the Pro-UIGAN set in torch *on this CPU* (on a GPU
    this is the device's work; shown here to put a number on it);
(e) (b) with re-masking: a fresh square mask, fill and LR every epoch.

(b), (c) and the landmarks-only loader of (d) are timed in both batch memory formats:
contiguous (B, 3, H, W) planes and ``memory_format="channels_last"`` (same shape and values,
the shard's interleaved bytes copied as they are).  Plus, for context: (b) per item through
the same DataLoader without the batched fetch (``default_collate``) and (b) with ``to_float``
on this CPU.  Without torch (``torch_items=False``) only the baseline, (a) and the numpy batches of
``ShardReader.get_batch`` are timed.

Both sides read the same samples in the same (shuffled) order, warm (files in the page cache,
shard handles open and mapped).  Each of ``rounds`` rounds times the baseline and then every
configuration once over all samples (interleaved, so drifting load on a shared machine hits
all of them alike); speeds are the median over rounds of items/s and of the within-round ratio
to the baseline.  Run it pinned to one core (``taskset -c 0``) for per-core figures; the
benchmark itself also sets OpenCV and torch to one thread.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

import numpy as np

from ..data import PRO_UIGAN, LoaderConfig, ShardReader
from ..faces import heatmaps as heatmaps_mod
from ..masks import SquareMask

TARGET = 10.0  # x the baseline, per core
FHC = ("fhc4@64",)


def item_bytes(reader: ShardReader) -> int:
    """Bytes of one item's arrays in ``reader``'s dtype (images, mask, landmarks, heatmaps)."""
    H, L = reader.hr_size, reader.lr_size
    per = 1 if reader.config.dtype == "uint8" else 4
    n = (3 * L * L * (2 if reader.config.lr_clean else 1) + 2 * 3 * H * H + H * H) * per + 68 * 2 * 4
    for spec in reader.config.heatmaps:
        g, s = heatmaps_mod.parse_spec(spec)
        n += heatmaps_mod.channels(g) * s * s * per
    return n


def write_jpegs(reader: ShardReader, indices, out_dir: str, quality: int = 95) -> list[str]:
    """The HR faces of ``indices`` as JPEG files (the baseline's input)."""
    from PIL import Image

    paths = []
    for i in indices:
        _, row = reader.location(int(i))
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


def _cases(build_dirs, order, stored, torch_items: bool, batch_size: int):
    """(label, what the items hold, bytes per item, pass function) for every configuration timed."""
    def src(specs):
        return "read" if all(s in stored for s in specs) else "rendered"

    def cfg(heat, **kw):
        return LoaderConfig(split=None, heatmaps=heat, **kw)

    cases = []
    ra = ShardReader(build_dirs, cfg(PRO_UIGAN))
    cases.append(("(a) per-item f32, Pro-UIGAN", f"7@16+42@32+68@64 {src(PRO_UIGAN)}", item_bytes(ra),
                  _item_pass(ra, order)))
    r_fhc = ShardReader(build_dirs, cfg(FHC, dtype="uint8"))
    r_pu = ShardReader(build_dirs, cfg(PRO_UIGAN, dtype="uint8"))
    r_lm = ShardReader(build_dirs, cfg((), dtype="uint8"))
    r_re = ShardReader(build_dirs, cfg(FHC, dtype="uint8", remask=SquareMask(), memory_format="channels_last"))
    if not torch_items:
        for label, r, what in (("(b) batched u8, fhc4 [numpy]", r_fhc, f"fhc4@64 {src(FHC)}"),
                               ("(c) batched u8, Pro-UIGAN [numpy]", r_pu, f"7@16+42@32+68@64 {src(PRO_UIGAN)}"),
                               ("    batched u8, landmarks only [numpy]", r_lm, "no heatmaps"),
                               ("(e) batched u8, fhc4, re-mask, ch_last [numpy]", r_re, f"fhc4@64 {src(FHC)}, square")):
            cases.append((label, what, item_bytes(r), _batch_pass(r, order, batch_size)))
        return cases

    import torch

    from .. import data

    sigma = r_lm.heatmap_sigma

    def loader(r, **kw):
        return torch.utils.data.DataLoader(data.ShardDataset(r), batch_size=batch_size, sampler=order.tolist(),
                                           num_workers=0, **kw)

    class _PerItem(torch.utils.data.Dataset):  # the same dataset without the batched fetch
        def __init__(self, ds):
            self.ds = ds

        def __len__(self):
            return len(self.ds)

        def __getitem__(self, i):
            return self.ds[i]

    fhc_b = item_bytes(r_fhc)
    cases.append(("    per-item u8, fhc4, DataLoader", f"fhc4@64 {src(FHC)}", fhc_b,
                  _loader_pass(torch.utils.data.DataLoader(_PerItem(data.ShardDataset(r_fhc)), batch_size=batch_size,
                                                           sampler=order.tolist(), num_workers=0))))
    cases.append(("(b) batched u8, fhc4", f"fhc4@64 {src(FHC)}", fhc_b,
                  _loader_pass(loader(r_fhc, collate_fn=data.collate))))
    rng = r_fhc.config.range
    r_fcl = ShardReader(build_dirs, cfg(FHC, dtype="uint8", memory_format="channels_last"))
    cases.append(("(b) batched u8, fhc4, channels_last", f"fhc4@64 {src(FHC)}", fhc_b,
                  _loader_pass(loader(r_fcl, collate_fn=data.collate))))
    cases.append(("    (b) + to_float on this CPU", f"fhc4@64 {src(FHC)}, f32", fhc_b * 4,
                  _loader_pass(loader(r_fhc, collate_fn=data.collate), lambda b: data.to_float(b, rng))))
    cases.append(("(c) batched u8, Pro-UIGAN", f"7@16+42@32+68@64 {src(PRO_UIGAN)}", item_bytes(r_pu),
                  _loader_pass(loader(r_pu, collate_fn=data.collate))))
    r_pcl = ShardReader(build_dirs, cfg(PRO_UIGAN, dtype="uint8", memory_format="channels_last"))
    cases.append(("(c) batched u8, Pro-UIGAN, channels_last", f"7@16+42@32+68@64 {src(PRO_UIGAN)}", item_bytes(r_pcl),
                  _loader_pass(loader(r_pcl, collate_fn=data.collate))))
    lm_b = item_bytes(r_lm)
    cases.append(("    batched u8, landmarks only", "no heatmaps", lm_b,
                  _loader_pass(loader(r_lm, collate_fn=data.collate))))
    r_lcl = ShardReader(build_dirs, cfg((), dtype="uint8", memory_format="channels_last"))
    cases.append(("    batched u8, landmarks only, ch_last", "no heatmaps", lm_b,
                  _loader_pass(loader(r_lcl, collate_fn=data.collate))))
    pu_f32 = sum(heatmaps_mod.channels(g) * s * s * 4 for g, s in map(heatmaps_mod.parse_spec, PRO_UIGAN))
    cases.append(("(d) landmarks only + torch render (CPU)", "7@16+42@32+68@64 f32 rendered", lm_b + pu_f32,
                  _loader_pass(loader(r_lcl, collate_fn=data.collate),
                               lambda b: data.add_heatmaps(b, PRO_UIGAN, sigma))))
    cases.append(("(e) batched u8, fhc4, re-mask, ch_last", f"fhc4@64 {src(FHC)}, square", item_bytes(r_re),
                  _loader_pass(loader(r_re, collate_fn=data.collate))))
    return cases


def run(build_dirs, n: int = 2000, rounds: int = 5, seed: int = 0, torch_items: bool = True, batch_size: int = 64,
        echo=print) -> dict:
    """Time the baseline and each loader configuration; returns and prints the figures."""
    import cv2

    cv2.setNumThreads(1)
    if torch_items:
        import torch

        torch.set_num_threads(1)
    probe = ShardReader(build_dirs, LoaderConfig(split=None, heatmaps=()))
    total = len(probe)
    if total == 0:
        raise ValueError("the build holds no samples")
    order = np.random.default_rng(seed).permutation(total)[: min(n, total)]
    stored = tuple(sorted({s for sh in probe._shards for s in sh.stored_heatmaps}))  # noqa: SLF001
    tmp = tempfile.mkdtemp(prefix="occface-bench-data-")
    try:
        paths = write_jpegs(probe, order, tmp)
        cases = _cases(build_dirs, order, stored, torch_items, batch_size)
        baseline_pass(paths, probe.lr_size)  # warm the page cache and Pillow
        for *_, fn in cases:  # open and map every shard, warm the page cache
            fn()
        speeds: dict[str, list[float]] = {"baseline": []}
        ratios: dict[str, list[float]] = {}
        for _ in range(rounds):
            t0 = time.perf_counter()
            baseline_pass(paths, probe.lr_size)
            base = len(order) / (time.perf_counter() - t0)
            speeds["baseline"].append(base)
            for name, _, _, fn in cases:
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
        "batch_size": batch_size,
        "stored_heatmaps": list(stored),
        "baseline_per_s": statistics.median(speeds["baseline"]),
        "target_ratio": TARGET,
        "configs": {name: {"heatmaps": what, "bytes_per_item": nbytes,
                           "items_per_s": statistics.median(speeds[name]), "ratio": statistics.median(ratios[name])}
                    for name, what, nbytes, _ in cases},
    }
    echo(f"{len(order)} samples x {rounds} rounds (medians), batches of {batch_size}; "
         f"stored heatmaps: {', '.join(stored) or 'none'}")
    echo(f"{'configuration':42s} {'heatmaps':32s} {'KB/item':>7s} {'items/s':>8s} {'x base':>6s}  10x?")
    echo(f"{'baseline: Pillow JPEG 128 + resize to 16':42s} {'-':32s} {49.9:7.1f} {result['baseline_per_s']:8.0f} "
         f"{1.0:6.2f}")
    for name, v in result["configs"].items():
        ok = "yes" if v["ratio"] >= TARGET else "no"
        echo(f"{name:42s} {v['heatmaps']:32s} {v['bytes_per_item'] / 1000:7.1f} {v['items_per_s']:8.0f} "
             f"{v['ratio']:6.2f}  {ok}")
    return result


def _loader_pass(loader, post=None):
    def fn():
        for b in loader:
            if post is not None:
                post(b)

    return fn


def _batch_pass(reader: ShardReader, order, batch_size: int):
    def fn():
        for s in range(0, len(order), batch_size):
            reader.get_batch(order[s : s + batch_size])

    return fn


def _item_pass(dataset, order):
    def fn():  # items are dropped as they come, as a training step would
        for i in order:
            dataset[int(i)]

    return fn
