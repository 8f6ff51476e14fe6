"""``basicsr``: BasicSR's paired-image layout, so ``PairedImageDataset`` trains on a build unchanged.

Layout (``NAME`` = the sample's position, :func:`.base.sample_name`)::

    gt/NAME.png            clean HR (the ground truth), RGB
    lq/NAME.png            occluded LR (the low-quality input), RGB; same file names as gt/
    meta_info.txt          one line per pair: "NAME.png (H,H,3)"  (the GT name and shape)
    basicsr_dataset.yml    a dataset block for BasicSR options (paths relative to this folder)
    meta.jsonl             name, key and every per-sample field of the shard, one JSON per line
    export.json            the export record

BasicSR options: ``type: PairedImageDataset``, ``dataroot_gt: <export>/gt``, ``dataroot_lq:
<export>/lq``, ``meta_info_file: <export>/meta_info.txt``, ``io_backend: {type: disk}``,
``filename_tmpl: '{}'``, ``scale: 8`` (128 / 16).  The GT is the clean face and the LQ the
occluded thumbnail, so a BasicSR super-resolution model learns joint hallucination and
inpainting, as Pro-UIGAN does.
"""

from __future__ import annotations

import json
import os

from ..format.atomic import write_bytes_atomic, write_bytes_renamed
from .base import ExportConfig, Samples, clean_stale, png_bytes, progress_bar

DATASET_YML = """\
# A BasicSR dataset block for this export (paste under datasets: in a BasicSR options file;
# the paths are relative to this folder: prefix them with where it lies).
name: {name}
type: PairedImageDataset
dataroot_gt: gt
dataroot_lq: lq
meta_info_file: meta_info.txt
filename_tmpl: '{{}}'
io_backend:
  type: disk
scale: {scale}
gt_size: {gt}
use_hflip: false
use_rot: false
"""


def write(samples: Samples, out_dir: str, cfg: ExportConfig, progress=None) -> dict:
    for d in ("gt", "lq"):
        os.makedirs(os.path.join(out_dir, d), exist_ok=True)
        clean_stale(os.path.join(out_dir, d))
    bar = progress_bar(len(samples), progress, "export basicsr")
    lines, meta_lines = [], []
    hr = lr = None
    for i in range(len(samples)):
        s = samples.get(i)
        name = s["name"]
        hr, lr = s["hr"].shape[0], s["lr"].shape[0]
        for d, key in (("gt", "hr"), ("lq", "lr")):
            p = os.path.join(out_dir, d, f"{name}.png")
            if not os.path.exists(p):
                write_bytes_renamed(p, png_bytes(s[key], cfg.png_compression))
        lines.append(f"{name}.png ({hr},{hr},3)")
        meta_lines.append(json.dumps({"name": name, **s["meta"]}, sort_keys=True, ensure_ascii=False))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    write_bytes_atomic(os.path.join(out_dir, "meta_info.txt"), ("\n".join(lines) + "\n").encode("utf-8"))
    write_bytes_atomic(os.path.join(out_dir, "meta.jsonl"), ("\n".join(meta_lines) + "\n").encode("utf-8"))
    split = cfg.split or "all"
    yml = DATASET_YML.format(name=f"occface-{split}", scale=(hr // lr) if hr else 8, gt=hr or 128)
    write_bytes_atomic(os.path.join(out_dir, "basicsr_dataset.yml"), yml.encode("utf-8"))
    return {"gt": "gt", "lq": "lq", "meta_info": "meta_info.txt", "options": "basicsr_dataset.yml",
            "meta": "meta.jsonl"}
