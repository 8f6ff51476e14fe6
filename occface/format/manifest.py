"""The build manifest (``manifest.json``, documented in docs/format.md): write, read, join, verify.

A manifest lists every shard of a build with its record / sample / rejection counts,
its split counts and its SHA-256, plus the resolved build config, the database
description, the library versions and the rejection log.  It holds no timestamps, so
the same build gives the same manifest bytes.  A partition of a build writes
``manifest-part-IIII-of-KKKK.json`` instead; :func:`join` turns the parts into the
manifest an unpartitioned build would have written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np

from .. import __version__
from ..errors import BuildError, FormatError
from . import shards
from .atomic import write_json_atomic
from .canonical import sha256_file

MANIFEST = "manifest.json"
FORMAT = "occface-build-manifest"
MANIFEST_VERSION = 1


def part_manifest_name(index: int, count: int) -> str:
    return f"manifest-part-{index:04d}-of-{count:04d}.json"


def versions() -> dict:
    """Versions of everything that can change a build's bytes."""
    from importlib.metadata import version

    import cv2
    import dlib
    import h5py

    return {
        "occface": __version__,
        "dlib": dlib.__version__,
        "opencv": cv2.__version__,
        "albumentations": version("albumentations"),  # read from the metadata: importing it costs seconds
        "albucore": version("albucore"),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "python": ".".join(map(str, sys.version_info[:3])),
    }


# ----------------------------------------------------------------------------- writing

def shard_entry(out_dir: str, index: int) -> tuple[dict, list[dict], dict]:
    """(manifest entry, rejection log, root attributes) of shard ``index`` of a build."""
    rel = f"shards/{shards.shard_name(index)}"
    path = os.path.join(out_dir, rel)
    attrs = shards.read_attrs(path)
    meta = shards.read_meta(path)
    splits: dict[str, int] = {}
    for s in meta["split"]:
        splits[s] = splits.get(s, 0) + 1
    entry = {
        "file": rel,
        "index": index,
        "records": int(attrs["num_records"]),
        "samples": int(attrs["num_samples"]),
        "rejected": len(attrs["rejections"]),
        "splits": dict(sorted(splits.items())),
        "sha256": sha256_file(path),
    }
    return entry, attrs["rejections"], attrs


def assemble_manifest(entries: list[dict], rejections: list[dict], cfg_dict: dict, source_desc: dict,
                      n_shards: int, partition: dict | None) -> dict:
    counts: dict[str, int] = {}
    for r in rejections:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    splits: dict[str, int] = {}
    for e in entries:
        for k, v in e["splits"].items():
            splits[k] = splits.get(k, 0) + v
    return {
        "format": FORMAT,
        "manifest_version": MANIFEST_VERSION,
        "schema_version": shards.SCHEMA_VERSION,
        "seed": cfg_dict["seed"],
        "config": cfg_dict,
        "source": source_desc,
        "versions": versions(),
        "num_shards": n_shards,
        "partition": partition,
        "shards": entries,
        "totals": {
            "records": sum(e["records"] for e in entries),
            "samples": sum(e["samples"] for e in entries),
            "rejected": len(rejections),
            "splits": dict(sorted(splits.items())),
        },
        "rejections": {"counts": dict(sorted(counts.items())), "log": rejections},
    }


def write_manifest(out_dir: str, cfg_dict: dict, source_desc: dict, n_shards: int, owned: list[int],
                   partition: dict | None = None) -> dict:
    """Write the manifest of the shards ``owned`` (all of them, or one partition's) and return it.

    ``partition``: ``{"index", "count"}`` for one partition of a job array (its part
    manifest is written), ``None`` for a whole build (``manifest.json``).
    """
    entries, rejections = [], []
    for j in owned:
        e, rej, _ = shard_entry(out_dir, j)
        entries.append(e)
        rejections.extend(rej)
    manifest = assemble_manifest(entries, rejections, cfg_dict, source_desc, n_shards, partition)
    name = MANIFEST if partition is None else part_manifest_name(partition["index"], partition["count"])
    write_json_atomic(os.path.join(out_dir, name), manifest)
    return manifest


# ----------------------------------------------------------------------------- reading

def manifest_path(path: str) -> str:
    """``path`` itself, or ``path/manifest.json`` for a build directory."""
    path = os.fspath(path)
    return os.path.join(path, MANIFEST) if os.path.isdir(path) else path


def load_manifest(path: str) -> dict:
    """The manifest of a build directory (or a manifest file).

    Raises :class:`~occface.errors.FormatError` when there is none, when it is not valid
    JSON, or when it is not an occface build manifest.
    """
    mpath = manifest_path(path)
    if not os.path.exists(mpath):
        raise FormatError(f"no manifest at {mpath}: is the build finished (or are its partitions joined)?")
    try:
        with open(mpath, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{mpath} is not valid JSON ({exc}); rebuild, or restore it from a copy") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FormatError(f"{mpath} is not an occface build manifest")
    return manifest


def manifest_sha256(path: str) -> str:
    """SHA-256 of a build's manifest.json (``path``: build directory or manifest path)."""
    return sha256_file(manifest_path(path))


def shard_paths(path: str) -> list[tuple[str, dict]]:
    """(absolute shard path, manifest entry) of every shard of a build, in shard order."""
    mpath = manifest_path(path)
    manifest = load_manifest(mpath)
    root = os.path.dirname(os.path.abspath(mpath))
    return [(os.path.join(root, e["file"]), e) for e in sorted(manifest["shards"], key=lambda e: e["index"])]


# ----------------------------------------------------------------------------- join / verify

def join(out_dir: str, part_dirs: list[str] | None = None) -> dict:
    """Join partition manifests (``manifest-part-*.json``) into ``manifest.json``.

    Part manifests are read from ``out_dir`` and from each of ``part_dirs``; shard files found in a
    part dir are hard-linked (or copied) into ``out_dir/shards``.  Checks that every partition is
    present, that all were built with one config and database, and that every shard exists with the
    hash its partition recorded.  The result equals the manifest of an unpartitioned build.
    """
    os.makedirs(out_dir, exist_ok=True)
    dirs = [out_dir] + [d for d in (part_dirs or []) if os.path.abspath(d) != os.path.abspath(out_dir)]
    parts = {}
    for d in dirs:
        for fn in sorted(os.listdir(d)):
            if fn.startswith("manifest-part-") and fn.endswith(".json"):
                with open(os.path.join(d, fn)) as fh:
                    m = json.load(fh)
                parts[m["partition"]["index"]] = (d, m)
    if not parts:
        raise BuildError(f"no manifest-part-*.json in {dirs}")
    first = next(iter(parts.values()))[1]
    count = first["partition"]["count"]
    missing = sorted(set(range(count)) - set(parts))
    if missing:
        raise BuildError(f"partitions missing: {missing} of {count}")
    for i, (d, m) in parts.items():
        if m["config"] != first["config"] or m["source"] != first["source"] or m["num_shards"] != first["num_shards"]:
            raise BuildError(f"partition {i} in {d} was built with another config or database")
    os.makedirs(os.path.join(out_dir, "shards"), exist_ok=True)
    entries = []
    for i in sorted(parts):
        d, m = parts[i]
        for e in m["shards"]:
            src, dst = os.path.join(d, e["file"]), os.path.join(out_dir, e["file"])
            if os.path.abspath(src) != os.path.abspath(dst) and not os.path.exists(dst):
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst + ".tmp")
                    os.replace(dst + ".tmp", dst)
            if sha256_file(dst) != e["sha256"]:
                raise BuildError(f"{dst} does not match the hash in partition {i}'s manifest")
            entries.append(e)
    entries.sort(key=lambda e: e["index"])
    if [e["index"] for e in entries] != list(range(first["num_shards"])):
        raise BuildError("joined partitions do not cover every shard exactly once")
    rejections = []
    for e in entries:
        rejections.extend(shards.read_attrs(os.path.join(out_dir, e["file"]))["rejections"])
    manifest = assemble_manifest(entries, rejections, first["config"], first["source"], first["num_shards"], None)
    write_json_atomic(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def verify(out_dir: str) -> list[str]:
    """Re-hash every shard against the manifest.  Returns a list of problems (empty = verified)."""
    manifest = load_manifest(out_dir)
    problems = []
    listed = set()
    for e in manifest["shards"]:
        path = os.path.join(out_dir, e["file"])
        listed.add(os.path.basename(path))
        if not os.path.exists(path):
            problems.append(f"missing: {e['file']}")
        elif sha256_file(path) != e["sha256"]:
            problems.append(f"hash mismatch: {e['file']}")
    shard_dir = os.path.join(out_dir, "shards")
    for fn in sorted(os.listdir(shard_dir)) if os.path.isdir(shard_dir) else []:
        if fn.endswith(".h5") and fn not in listed:
            problems.append(f"not in manifest: shards/{fn}")
    return problems
