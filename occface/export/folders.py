"""``folders``: plain PNG folders any tool can read.

Layout (``NAME`` = the sample's position, :func:`.base.sample_name`)::

    hr/NAME.png           clean HR, RGB
    hr_occluded/NAME.png  HR with the hole filled, RGB
    mask/NAME.png         greyscale, 255 = missing, 0 = kept
    lr/NAME.png           occluded LR, RGB
    landmarks.csv         name,key,x0,y0,...,x67,y67  (HR pixels, pixel centres at integers)
    meta.jsonl            one JSON object per sample: name plus every per-sample field of the shard
    export.json           the export record
"""

from __future__ import annotations

import json
import os

from ..format.atomic import write_bytes_atomic, write_bytes_renamed
from .base import ExportConfig, Samples, clean_stale, float_text, png_bytes, progress_bar

FOLDERS = ("hr", "hr_occluded", "mask", "lr")


def write(samples: Samples, out_dir: str, cfg: ExportConfig, progress=None) -> dict:
    """Write the folders (keeping files a killed run finished); returns the index files."""
    for d in FOLDERS:
        os.makedirs(os.path.join(out_dir, d), exist_ok=True)
        clean_stale(os.path.join(out_dir, d))
    bar = progress_bar(len(samples), progress, "export folders")
    csv_lines = ["name,key," + ",".join(f"x{k},y{k}" for k in range(68))]
    meta_lines = []
    for i in range(len(samples)):
        s = samples.get(i)
        name = s["name"]
        for d in FOLDERS:
            p = os.path.join(out_dir, d, f"{name}.png")
            if not os.path.exists(p):  # finished by an earlier, interrupted run
                write_bytes_renamed(p, png_bytes(s[d] * 255 if d == "mask" else s[d], cfg.png_compression))
        lm = ",".join(float_text(v) for v in s["landmarks"].reshape(-1))
        csv_lines.append(f"{name},{_csv_field(s['meta']['key'])},{lm}")
        meta_lines.append(json.dumps({"name": name, **s["meta"]}, sort_keys=True, ensure_ascii=False))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    write_bytes_atomic(os.path.join(out_dir, "landmarks.csv"), ("\n".join(csv_lines) + "\n").encode("utf-8"))
    write_bytes_atomic(os.path.join(out_dir, "meta.jsonl"), ("\n".join(meta_lines) + "\n").encode("utf-8"))
    return {"folders": list(FOLDERS), "landmarks": "landmarks.csv", "meta": "meta.jsonl"}


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
