"""Export benchmark: samples/s of each export format, side by side with a hand-written baseline.

Baseline (what a user writes by hand to get PNGs out of a build): every sample read through
``ShardReader.get_item`` (uint8) and its clean HR and occluded LR saved as two PNG files with
Pillow's ``Image.save`` (default settings), nothing else: no mask, no metadata, no resume.

Each format writes a complete export of the same samples (``occface.export.export``: the
PNGs, the index files and the export record).  Every round times the baseline and then each
format once, into fresh folders (interleaved, so drifting load hits all alike); figures are
the median over rounds of samples/s and of the within-round ratio to the baseline.  Files go
to a scratch folder (the page cache, like any export's first seconds); run it pinned to one
core (``taskset -c 0``) for per-core figures.  OpenCV is set to one thread.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

from ..data import LoaderConfig, ShardReader
from ..export import FORMATS, ExportConfig, export


def _baseline(build_dir: str, out: str, split) -> int:
    from PIL import Image

    rd = ShardReader(build_dir, LoaderConfig(split=split, heatmaps=(), dtype="uint8"))
    os.makedirs(out)
    for i in range(len(rd)):
        it = rd.get_item(i)
        Image.fromarray(it["hr"].transpose(1, 2, 0)).save(os.path.join(out, f"{i:07d}_hr.png"))
        Image.fromarray(it["lr"].transpose(1, 2, 0)).save(os.path.join(out, f"{i:07d}_lr.png"))
    rd.close()
    return len(rd)


def run(build_dir: str, formats=FORMATS, rounds: int = 3, split=None, scratch: str | None = None,
        echo=print) -> dict:
    """Time the baseline and every format ``rounds`` times; returns the medians (and echoes a table)."""
    import cv2

    cv2.setNumThreads(1)
    root = tempfile.mkdtemp(prefix="occface-bench-export-", dir=scratch)
    rates: dict[str, list[float]] = {"baseline": [], **{f: [] for f in formats}}
    ratios: dict[str, list[float]] = {f: [] for f in formats}
    n = 0
    try:
        for r in range(rounds):
            d = os.path.join(root, f"base{r}")
            t0 = time.perf_counter()
            n = _baseline(build_dir, d, split)
            base = n / (time.perf_counter() - t0)
            shutil.rmtree(d)
            rates["baseline"].append(base)
            for f in formats:
                d = os.path.join(root, f"{f}{r}")
                t0 = time.perf_counter()
                export(build_dir, d, ExportConfig(format=f, split=split), progress=False, log=lambda s: None)
                rate = n / (time.perf_counter() - t0)
                shutil.rmtree(d)
                rates[f].append(rate)
                ratios[f].append(rate / base)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    res = {"samples": n, "rounds": rounds,
           "baseline": {"samples_per_s": statistics.median(rates["baseline"]),
                        "what": "ShardReader.get_item + Pillow Image.save of HR and LR PNGs"}}
    for f in formats:
        res[f] = {"samples_per_s": statistics.median(rates[f]), "x_baseline": statistics.median(ratios[f])}
    echo(f"{n} samples, median of {rounds} rounds (samples/s; ratio to the baseline in the same round)")
    echo(f"  {'baseline (Pillow, HR + LR PNGs)':34s} {res['baseline']['samples_per_s']:8.0f}   x1.00")
    for f in formats:
        echo(f"  {f + ' (complete export)':34s} {res[f]['samples_per_s']:8.0f}   x{res[f]['x_baseline']:.2f}")
    return res
