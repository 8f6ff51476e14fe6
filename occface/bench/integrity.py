"""What the build's integrity checks cost per photo, against the work they replace or add to.

Timed in process CPU seconds (``time.process_time``), so other jobs on the machine inflate the
figures far less than wall-clock time; each part is run ``rounds`` times, interleaved, and the
fastest run is kept.  Parts, per photo:

* listing: :func:`occface.db.walk.walk` (every entry accounted for) against the plain sorted
  ``os.walk`` + ``isfile`` listing a folder build used before;
* duplicates: :func:`occface.db.walk.find_duplicates` (sizes, last 4 KiB, SHA-256 where needed);
* fingerprints: the input fingerprint line of every record (occface.build.inputs);
* strict decoding: ``cv2.imdecode`` with libjpeg's warnings captured, against plain ``cv2.imdecode``;
* pipeline: ``occface.build.build`` with the default config and one worker, end to end, for scale.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np

from ..build import BuildConfig, build
from ..build import inputs as inputs_mod
from ..db.folder import FolderSource
from ..db.walk import find_duplicates, walk
from ..faces.decode import imdecode_strict
from .build import _subset


def _plain_listing(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            if not fn.startswith(".") and os.path.isfile(full):
                out.append(os.path.relpath(full, root))
    return sorted(out)


def run(root: str, limit: int = 1024, rounds: int = 5, scratch: str | None = None, log=print) -> dict:
    import cv2

    tmp = scratch or tempfile.mkdtemp(prefix="occface-bench-")
    try:
        photos = os.path.join(tmp, "photos")
        shutil.rmtree(photos, ignore_errors=True)
        files = _subset(root, limit, photos)
        n = len(files)
        src = FolderSource(photos)
        found, _ = walk(photos)
        inv = src.inventory()
        blobs = [open(os.path.join(photos, f), "rb").read() for f in files]
        gray = [b for b in blobs if b[:3] == b"\xff\xd8\xff"]
        parts = {
            "listing_before": lambda: _plain_listing(photos),
            "listing_walk": lambda: walk(photos),
            "duplicates": lambda: find_duplicates(photos, found),
            "fingerprints": lambda: [inputs_mod.record_line(r, src, inv.stats) for r in inv.records],
            "imdecode_plain": lambda: [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED) for b in gray],
            "imdecode_strict": lambda: [imdecode_strict(b, cv2.IMREAD_UNCHANGED) for b in gray],
        }
        best = {k: float("inf") for k in parts}
        best["pipeline"] = float("inf")
        for r in range(rounds):
            for k, fn in parts.items():
                t = time.process_time()
                fn()
                best[k] = min(best[k], time.process_time() - t)
            if r < 2:  # the pipeline is only the scale: two runs are enough
                out = os.path.join(tmp, "build")
                shutil.rmtree(out, ignore_errors=True)
                t = time.process_time()
                build(src, BuildConfig(), out, workers=1, progress=False, log=lambda s: None)
                best["pipeline"] = min(best["pipeline"], time.process_time() - t)
            log(f"round {r + 1}: " + ", ".join(f"{k} {1e6 * v / n:.1f} us" for k, v in best.items()))
        us = {k: round(1e6 * v / (len(gray) if k.startswith("imdecode") else n), 2) for k, v in best.items()}
        added = (us["listing_walk"] - us["listing_before"] + us["duplicates"] + us["fingerprints"]
                 + us["imdecode_strict"] - us["imdecode_plain"])
        return {
            "photos": n,
            "rounds": rounds,
            "cpu_us_per_photo": us,
            "added_us_per_photo": round(added, 2),
            "added_fraction_of_pipeline": round(added / us["pipeline"], 5),
            "load_average": round(os.getloadavg()[0], 2),
        }
    finally:
        if scratch is None:
            shutil.rmtree(tmp, ignore_errors=True)
