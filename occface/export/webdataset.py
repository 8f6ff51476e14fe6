"""``webdataset``: POSIX tar shards for streaming (``wds.WebDataset``), written with the
``webdataset`` library's ``TarWriter``.

Each sample is five tar members sharing its key (``NAME``, :func:`.base.sample_name`)::

    NAME.hr.png  NAME.hr_occluded.png  NAME.json  NAME.lr.png  NAME.mask.png

``mask.png`` is greyscale, 255 = missing; ``json`` holds the key, the landmarks ((68, 2) HR
pixels) and every per-sample field of the shard.  Shards are ``occface-000000.tar``,
``occface-000001.tar``, ... of ``samples_per_tar`` samples each, the brace pattern of all of
them is in ``export.json`` (``files.urls``), and ``shards.txt`` lists them one per line.
Members carry mtime 0, owner ``occface`` and mode 0444, so a re-export is byte-identical; each
tar is written under a temporary name and renamed, so a resumed export keeps the finished ones.

Reading::

    import webdataset as wds
    ds = wds.WebDataset("EXPORT/occface-{000000..000003}.tar", shardshuffle=False).decode("rgb8")
    for s in ds:
        s["hr.png"], s["lr.png"], s["mask.png"], s["json"]   # (128,128,3) u8, (16,16,3) u8, ...
"""

from __future__ import annotations

import json
import os

from ..format.atomic import atomic_path, write_bytes_atomic
from .base import ExportConfig, ExportError, Samples, clean_stale, float_text, png_bytes, progress_bar

PREFIX = "occface"


def _wds():
    try:
        import webdataset
    except ImportError:  # a dependency of occface: only a broken install lacks it
        raise ExportError("the webdataset package is not installed (pip install webdataset)") from None
    return webdataset


def installed_versions() -> dict:
    """The webdataset version the export was written with, for the export record."""
    return {"webdataset": getattr(_wds(), "__version__", "unknown")}


def tar_name(k: int) -> str:
    return f"{PREFIX}-{k:06d}.tar"


def sample_record(s: dict) -> dict:
    """What one sample becomes: the ``TarWriter`` dict (bytes per member)."""
    level = s["level"]
    meta = {"key": s["meta"]["key"], "landmarks": [[float(float_text(x)), float(float_text(y))]
                                                   for x, y in s["landmarks"].tolist()],
            "meta": s["meta"]}
    return {
        "__key__": s["name"],
        "hr.png": png_bytes(s["hr"], level),
        "hr_occluded.png": png_bytes(s["hr_occluded"], level),
        "lr.png": png_bytes(s["lr"], level),
        "mask.png": png_bytes(s["mask"] * 255, level),
        "json": json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8"),
    }


def write(samples: Samples, out_dir: str, cfg: ExportConfig, progress=None) -> dict:
    wds = _wds()
    clean_stale(out_dir)
    n, per = len(samples), cfg.samples_per_tar
    n_tars = -(-n // per)
    bar = progress_bar(n, progress, "export webdataset")
    names = []
    for k in range(n_tars):
        name = tar_name(k)
        names.append(name)
        path = os.path.join(out_dir, name)
        lo, hi = k * per, min(n, (k + 1) * per)
        if not os.path.exists(path):
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                w = wds.TarWriter(fh, user=PREFIX, group=PREFIX, mode=0o444, mtime=0.0, encoder=False)
                for i in range(lo, hi):
                    s = samples.get(i)
                    s["level"] = cfg.png_compression
                    w.write(sample_record(s))
                w.close()
        if bar is not None:
            bar.update(hi - lo)
    if bar is not None:
        bar.close()
    write_bytes_atomic(os.path.join(out_dir, "shards.txt"), ("\n".join(names) + "\n").encode("utf-8"))
    urls = (f"{PREFIX}-{{000000..{n_tars - 1:06d}}}.tar" if n_tars > 1 else (names[0] if names else ""))
    return {"tars": names, "urls": urls, "list": "shards.txt", "samples_per_tar": per}
