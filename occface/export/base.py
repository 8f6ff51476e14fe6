"""What every export shares: its config, the samples it reads, PNG bytes, and its record file.

An export folder holds ``export.json`` (:data:`RECORD`): the export format and options, the
SHA-256 of the build manifest it came from, the split, the versions that can change its bytes,
and, once finished, ``"complete": true`` with the sample count and the files that index the
export.  Samples are named by their position in the export, ``0000000``, ``0000001``, ...
(the build's keys hold ``:``, ``/`` and dots, which neither file names nor WebDataset keys can
carry); each sample's stable key is kept in the export's metadata.

Resume: a re-run of the same export into the same folder keeps every file that exists under
its final name (files are written under a temporary name and renamed) and writes the rest;
the same build and options give byte-identical files however often it is interrupted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..errors import OccfaceError
from ..format import shards as shards_fmt
from ..format.atomic import json_bytes, remove_stale, write_bytes_atomic
from ..format.canonical import to_dict
from ..format.manifest import load_manifest, manifest_sha256

RECORD = "export.json"
RECORD_FORMAT = "occface-export"
FORMATS = ("basicsr", "folders", "webdataset")


class ExportError(OccfaceError):
    """An export cannot be written (or resumed) as asked."""


@dataclass(frozen=True)
class ExportConfig:
    """How a build is exported.

    format: ``"basicsr"``, ``"folders"`` or ``"webdataset"``.
    split: ``"train"``, ``"test"``, ... or ``None`` for every sample.
    png_compression: zlib level of every PNG, 0-9 (1 is several times faster to write than
        OpenCV's default 3 and about as small on faces).
    samples_per_tar: WebDataset samples per tar shard.
    """

    format: str = "folders"
    split: str | None = None
    png_compression: int = 1
    samples_per_tar: int = 1000

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"export format must be one of {FORMATS}, got {self.format!r}")
        if not 0 <= self.png_compression <= 9:
            raise ValueError("png_compression must be in 0..9")
        if self.samples_per_tar < 1:
            raise ValueError("samples_per_tar must be >= 1")


def sample_name(position: int) -> str:
    """File stem / WebDataset key of the sample at ``position`` in the export."""
    return f"{position:07d}"


def png_bytes(img: np.ndarray, level: int = 1) -> bytes:
    """PNG of an (H, W, 3) uint8 RGB or (H, W) uint8 greyscale image (RGB order in the file)."""
    import cv2

    img = np.ascontiguousarray(img)
    if img.ndim == 3:
        img = np.ascontiguousarray(img[..., ::-1])  # OpenCV writes BGR buffers as RGB files
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, int(level)])
    if not ok:
        raise ExportError(f"PNG encoding failed for an image of shape {img.shape}")
    return buf.tobytes()


def float_text(v) -> str:
    """The shortest decimal that reads back as the same float32 (landmarks, hole ratios)."""
    return np.format_float_positional(np.float32(v), unique=True, trim="-")


def _meta_value(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


class Samples:
    """The samples of one split of a build, in build order (shard index, then row).

    ``len(samples)``; ``samples.get(position)`` -> dict with ``name``, ``hr``, ``hr_occluded``
    ((H, H, 3) uint8 RGB), ``mask`` ((H, H) uint8, 1 = missing), ``lr`` ((L, L, 3) uint8),
    ``landmarks`` ((68, 2) float32, HR pixels) and ``meta`` (every per-sample field the shard
    stores, JSON-able; ``mask_params`` and ``fill`` decoded).
    """

    def __init__(self, build_dir: str, split: str | None):
        from ..data import LoaderConfig, ShardReader

        self.reader = ShardReader(build_dir, LoaderConfig(split=split, heatmaps=(), dtype="uint8"))
        self._meta: dict[str, dict] = {}

    def __len__(self) -> int:
        return len(self.reader)

    def meta(self, position: int) -> dict:
        path, row = self.reader.location(position)
        if path not in self._meta:
            self._meta[path] = shards_fmt.read_meta(path)
        m = self._meta[path]
        out = {k: _meta_value(v[row]) for k, v in sorted(m.items())}
        for k in ("mask_params", "fill"):
            if isinstance(out.get(k), str):
                out[k] = json.loads(out[k])
        return out

    def get(self, position: int, pixels: bool = True) -> dict:
        rd = self.reader
        s, row = int(rd.shard_of[position]), int(rd.row[position])
        item = {"name": sample_name(position), "meta": self.meta(position)}
        if pixels:
            sh = rd.handle(s)
            for k in ("hr", "hr_occluded", "mask", "lr"):
                item[k] = sh.view(k, row)
            item["landmarks"] = np.asarray(sh.landmarks[row], np.float32)
        return item

    def __iter__(self) -> Iterator[dict]:
        for i in range(len(self)):
            yield self.get(i)


def versions() -> dict:
    import cv2

    return {"occface": __version__, "opencv": cv2.__version__, "numpy": np.__version__}


def open_export(build_dir: str, out_dir: str, cfg: ExportConfig, extra_versions: dict | None = None) -> dict:
    """Check (or start) the export record of ``out_dir`` and return it.

    Raises :class:`ExportError` when ``out_dir`` holds an export of another build or with other
    options, or files that are not an export."""
    load_manifest(build_dir)  # a clear error for a folder that is not a finished build
    record = {
        "format": RECORD_FORMAT,
        "version": 1,
        "export": to_dict(cfg),
        "build_manifest_sha256": manifest_sha256(build_dir),
        "versions": {**versions(), **(extra_versions or {})},
    }
    path = os.path.join(out_dir, RECORD)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            try:
                old = json.load(fh)
            except json.JSONDecodeError:
                raise ExportError(f"{path} is not valid JSON: export into a fresh folder") from None
        same = {k: old.get(k) for k in record} == record
        if not same:
            raise ExportError(f"{out_dir} holds an export of another build or with other options "
                              f"({old.get('export')}); export into a fresh folder, or delete it")
    elif os.path.isdir(out_dir) and os.listdir(out_dir):
        raise ExportError(f"{out_dir} is not empty and holds no {RECORD}: export into a fresh folder")
    os.makedirs(out_dir, exist_ok=True)
    write_bytes_atomic(path, json_bytes({**record, "complete": False}))
    return record


def finish_export(out_dir: str, record: dict, samples: int, files: dict) -> dict:
    """Mark the export complete: ``export.json`` gains the sample count and its index files."""
    done = {**record, "complete": True, "samples": samples, "files": files}
    write_bytes_atomic(os.path.join(out_dir, RECORD), json_bytes(done))
    return done


def clean_stale(folder: str) -> None:
    """Remove temporary files left in ``folder`` by a killed export."""
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if ".tmp" in name:
                base = name.split(".tmp", 1)[0]
                remove_stale(os.path.join(folder, base))


def progress_bar(total: int, progress: bool | None, desc: str):
    """A tqdm bar on stderr (``None`` = when stderr is a terminal), or None."""
    import sys

    if progress is None:
        progress = sys.stderr.isatty()
    if not progress or not total:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="sample", desc=desc, dynamic_ncols=True)


Log = Callable[[str], None]
