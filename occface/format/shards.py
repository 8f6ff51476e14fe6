"""HDF5 shard format (schema v1, documented in docs/format.md).

One shard holds the accepted samples of a fixed, key-ordered group of input
records.  Image datasets are uncompressed uint8 with one chunk per sample:
measured here, that reads ~66k samples/s/core at random, while gzip saved only
~15% on faces and made random reads ~700x slower.  Small metadata is stored
contiguously so a loader can read it whole when it opens a shard.

Shards are written under a temporary name, fsynced, then renamed: a shard
that exists under its final name is complete.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from ..errors import FormatError
from .atomic import atomic_path
from .canonical import sha256_file  # noqa: F401  (re-exported: shards are hashed by the manifest)

SCHEMA = "occface-shard"
SCHEMA_VERSION = 1

STR = h5py.string_dtype("utf-8")
# Per-sample metadata common to every database: name -> (dtype, trailing shape).
BASE_META = {
    "key": (STR, ()),
    "source": (STR, ()),
    "subject": (STR, ()),
    "split": (STR, ()),
    "face_index": (np.int16, ()),
    "num_faces": (np.int16, ()),
    "detector": (STR, ()),
    "det_upsample": (np.int8, ()),
    "det_score": (np.float32, ()),
    "det_box": (np.float32, (4,)),
    "align_matrix": (np.float64, (2, 3)),
    "align_prefilter": (np.int16, ()),
    "mask_kind": (STR, ()),
    "mask_params": (STR, ()),
    "hole_ratio": (np.float32, ()),
    "fill": (STR, ()),
    "degrade": (STR, ()),
}
EXTRA_TYPES = {"int": np.int32, "float": np.float32, "str": STR}


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.h5"


def _image_dataset(f, name, arrays, shape, n):
    """One uint8 dataset, one chunk per sample.  Each sample's bytes go straight into its chunk
    (``write_direct_chunk``; the chunks are uncompressed, so the bytes are the pixels): stacking
    the shard into one array first cost ~5x more, mostly page faults on the fresh 12 MB buffer."""
    if not n:
        f.create_dataset(name, shape=(0, *shape), dtype=np.uint8)
        return
    ds = f.create_dataset(name, shape=(n, *shape), dtype=np.uint8, chunks=(1, *shape))
    origin = (0,) * len(shape)
    for i, a in enumerate(arrays):
        a = np.ascontiguousarray(a, dtype=np.uint8)
        if a.shape != tuple(shape):
            raise ValueError(f"{name}[{i}] has shape {a.shape}, expected {tuple(shape)}")
        ds.id.write_direct_chunk((i, *origin), a)


def write_shard(path: str, samples: list[dict], attrs: dict, extra_fields: dict[str, str], hr_size: int,
                lr_size: int, heatmap_specs: dict[str, int], alpha: bool = False,
                inputs: list[str] | None = None) -> None:
    """Atomically write one shard.

    samples: dicts with "hr", "hr_occluded" (S,S,3) u8, "mask" (S,S) u8, "lr", "lr_clean" (s,s,3) u8,
    "landmarks" (68,2) f4, "heatmaps" {spec: (C,h,w) u8}, "meta" {BASE_META names + extra fields}.
    attrs: root attributes (JSON-able values are stored as JSON strings).
    heatmap_specs: spec -> channels.
    alpha: also write ``alpha`` (S,S) u8 from each sample's "alpha" (the occluder's opacity, 255 = opaque).
    inputs: the fingerprint line of every input record of the shard (occface.build.inputs), stored
    as the string dataset ``inputs`` (one per record; a dataset, not an attribute, because
    attributes are limited to 64 KiB).
    """
    n = len(samples)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver="earliest") as f:
            f.attrs["schema"] = SCHEMA
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["num_samples"] = n
            for k, v in attrs.items():
                f.attrs[k] = v if isinstance(v, (int, str)) else json.dumps(v, sort_keys=True)
            S, s = hr_size, lr_size
            for name, shape in (("hr", (S, S, 3)), ("hr_occluded", (S, S, 3)), ("mask", (S, S)),
                                ("lr", (s, s, 3)), ("lr_clean", (s, s, 3))):
                _image_dataset(f, name, [x[name] for x in samples], shape, n)
            if alpha:
                _image_dataset(f, "alpha", [x["alpha"] for x in samples], (S, S), n)
            f.create_dataset("landmarks", data=np.array([x["landmarks"] for x in samples], np.float32).reshape(n, 68, 2))
            for spec, ch in heatmap_specs.items():
                size = int(spec.split("@")[1])
                _image_dataset(f, f"heatmaps/{spec}", [x["heatmaps"][spec] for x in samples], (ch, size, size), n)
            meta_types = dict(BASE_META)
            meta_types.update({k: (EXTRA_TYPES[t], ()) for k, t in extra_fields.items()})
            for name, (dtype, shape) in meta_types.items():
                values = [x["meta"][name] for x in samples]
                if dtype is STR:
                    arr = np.array(values, dtype=object).reshape(n)
                else:
                    arr = np.array(values, dtype=dtype).reshape(n, *shape)
                f.create_dataset(f"meta/{name}", data=arr, dtype=dtype)
            if inputs is not None:
                f.create_dataset("inputs", data=np.array(list(inputs), dtype=object).reshape(len(inputs)), dtype=STR)


def read_attrs(path: str) -> dict:
    """Root attributes of a shard, JSON strings decoded."""
    out = {}
    with h5py.File(path, "r") as f:
        for k, v in f.attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, str) and v[:1] in "[{":
                v = json.loads(v)
            elif isinstance(v, np.integer):
                v = int(v)
            out[k] = v
    return out


def read_inputs(path: str) -> list[str]:
    """The fingerprint lines stored in a shard (``[]`` for a shard written without them)."""
    with h5py.File(path, "r") as f:
        return list(f["inputs"].asstr()[...]) if "inputs" in f else []


def read_meta(path: str) -> dict[str, np.ndarray]:
    """All per-sample metadata arrays of a shard (strings decoded to str)."""
    out = {}
    with h5py.File(path, "r") as f:
        for name, ds in f["meta"].items():
            if h5py.check_string_dtype(ds.dtype):
                out[name] = np.array(ds.asstr()[...], dtype=object)
            else:
                out[name] = ds[...]
    return out


#: Per-sample fields a loader reads whole when it indexes a shard.
INDEX_FIELDS = ("key", "split", "subject", "mask_kind")


def read_index(path: str) -> tuple[dict, int, dict, tuple[str, ...]]:
    """What a loader needs to index a shard without reading pixels.

    Returns ``(attrs, num_samples, meta, stored_heatmaps)``: the decoded root attributes
    (``config`` as a dict), the sample count, ``meta`` = {:data:`INDEX_FIELDS`: (n,) bytes
    arrays (UTF-8), ``"hole_ratio"``: (n,) float32} and the stored heatmap specs.  Raises
    :class:`~occface.errors.FormatError` for a file that is not an occface shard of this schema.
    """
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path}: not a readable HDF5 shard ({exc})") from None
    with f:
        if f.attrs.get("schema") != SCHEMA or int(f.attrs.get("schema_version", -1)) != SCHEMA_VERSION:
            raise FormatError(f"{path}: not an occface shard of schema v{SCHEMA_VERSION}")
        attrs = {"config": json.loads(f.attrs["config"])}
        n = int(f.attrs["num_samples"])
        meta = {}
        for name in INDEX_FIELDS:
            meta[name] = np.array([s.encode("utf-8") for s in f[f"meta/{name}"].asstr()[...]], dtype=np.bytes_) \
                if n else np.zeros(0, "S1")
        meta["hole_ratio"] = f["meta/hole_ratio"][...].astype(np.float32)
        stored = tuple(sorted(f["heatmaps"].keys())) if "heatmaps" in f else ()
    return attrs, n, meta, stored
