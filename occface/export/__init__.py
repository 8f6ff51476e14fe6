"""Exporting a build for other tools: ``occface export BUILD --format FORMAT --out DIR``.

* :mod:`.basicsr`: BasicSR's paired folders (``gt/``, ``lq/``, ``meta_info.txt``);
* :mod:`.folders`: ``hr/``, ``hr_occluded/``, ``mask/``, ``lr/`` PNGs, ``landmarks.csv``, ``meta.jsonl``;
* :mod:`.webdataset`: tar shards for ``wds.WebDataset`` (streaming);
* :mod:`.base`: the config, the samples read from the build, PNG bytes, the export record.

Every export is deterministic (the same build and options give byte-identical files) and
resumable (run it again into the same folder).
"""

from __future__ import annotations

import time

from . import basicsr, folders, webdataset
from .base import FORMATS, RECORD, ExportConfig, ExportError, Samples, finish_export, open_export

WRITERS = {"basicsr": basicsr.write, "folders": folders.write, "webdataset": webdataset.write}


def export(build_dir: str, out_dir: str, cfg: ExportConfig = ExportConfig(), *, progress: bool | None = None,
           log=print) -> dict:
    """Export ``cfg.split`` of the build ``build_dir`` into ``out_dir`` as ``cfg.format``.

    Returns the finished export record (``export.json``) plus ``seconds`` and ``samples_per_s``
    of this run.  Raises :class:`ExportError` when ``out_dir`` holds another export.
    """
    extra = webdataset.installed_versions() if cfg.format == "webdataset" else None
    record = open_export(build_dir, out_dir, cfg, extra)
    samples = Samples(build_dir, cfg.split)
    if not len(samples):
        raise ExportError(f"{build_dir} has no samples" + (f" in split {cfg.split!r}" if cfg.split else ""))
    t0 = time.perf_counter()
    files = WRITERS[cfg.format](samples, out_dir, cfg, progress=progress)
    seconds = time.perf_counter() - t0
    done = finish_export(out_dir, record, len(samples), files)
    samples.reader.close()
    log(f"exported {len(samples)} samples as {cfg.format} in {seconds:.1f}s "
        f"({len(samples) / seconds:.0f} samples/s) -> {out_dir}")
    return {**done, "seconds": seconds, "samples_per_s": len(samples) / seconds}


__all__ = ["export", "ExportConfig", "ExportError", "FORMATS", "RECORD", "Samples", "WRITERS"]
