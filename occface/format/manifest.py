"""The build manifest (``manifest.json``, documented in docs/format.md): write, read, join, verify.

A manifest lists every shard of a build with its record / sample / rejection counts,
its split counts, its size, its SHA-256 and the digest of its inputs, plus the resolved
build config, the database description, the library versions, the rejection log, the
entries of the database that are not inputs (``skipped``), the duplicate groups, the
digest of the whole input plan and a digest of its own content (``content_sha256``), so
an edit to any field is caught.  It holds no timestamps, so the same build gives the
same manifest bytes.  A partition of a build writes ``manifest-part-IIII-of-KKKK.json``
instead; :func:`join` turns the parts into the manifest an unpartitioned build would
have written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

import numpy as np

from .. import __version__
from ..errors import BuildError, FormatError
from . import shards
from .atomic import write_json_atomic
from .lock import build_lock
from .canonical import lines_sha256, sha256_file

MANIFEST = "manifest.json"
FORMAT = "occface-build-manifest"
MANIFEST_VERSION = 2


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
    """(manifest entry, rejection log, root attributes) of shard ``index`` of a build, read back from it."""
    path = os.path.join(out_dir, "shards", shards.shard_name(index))
    attrs = shards.read_attrs(path)
    meta = shards.read_meta(path)
    entry = written_entry(out_dir, index, int(attrs["num_records"]), list(meta["split"]), len(attrs["rejections"]),
                          attrs.get("inputs_sha256"))
    if entry["samples"] != int(attrs["num_samples"]):
        raise FormatError(f"{path}: num_samples {attrs['num_samples']} but {entry['samples']} meta/split rows")
    return entry, attrs["rejections"], attrs


def written_entry(out_dir: str, index: int, records: int, splits: list[str], rejected: int,
                  inputs_sha256: str | None) -> dict:
    """Manifest entry of shard ``index`` from what its writer knows (one split name per sample, in
    order), plus the file's size and SHA-256.  The writer calls this right after writing, while the
    file is still in the page cache, so each worker hashes its own shards and the manifest need not
    read them back."""
    rel = f"shards/{shards.shard_name(index)}"
    path = os.path.join(out_dir, rel)
    counts: dict[str, int] = {}
    for s in splits:
        counts[s] = counts.get(s, 0) + 1
    return {
        "file": rel,
        "index": index,
        "records": records,
        "samples": len(splits),
        "rejected": rejected,
        "splits": dict(sorted(counts.items())),
        "sha256": sha256_file(path),
        "bytes": os.path.getsize(path),
        "inputs_sha256": inputs_sha256,
    }


def _counts(log: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in log:
        counts[r["reason"]] = counts.get(r["reason"], 0) + 1
    return dict(sorted(counts.items()))


def content_sha256(manifest: dict) -> str:
    """SHA-256 of a manifest's canonical JSON (sorted keys, no spaces, ASCII), without ``content_sha256``."""
    body = {k: v for k, v in manifest.items() if k != "content_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def assemble_manifest(entries: list[dict], rejections: list[dict], cfg_dict: dict, source_desc: dict,
                      n_shards: int, partition: dict | None, accounting: dict | None = None) -> dict:
    """The manifest of ``entries``.  ``accounting``: ``{"skipped": [{"path", "reason"}], "duplicates":
    [[paths]], "inputs": {"fingerprint", "records", "sha256"}}`` of the whole plan (the same for every
    partition of it)."""
    acc = accounting or {}
    skipped = list(acc.get("skipped", []))
    duplicates = [list(g) for g in acc.get("duplicates", [])]
    splits: dict[str, int] = {}
    for e in entries:
        for k, v in e["splits"].items():
            splits[k] = splits.get(k, 0) + v
    manifest = {
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
            "skipped": len(skipped),
            "splits": dict(sorted(splits.items())),
        },
        "rejections": {"counts": _counts(rejections), "log": rejections},
        "skipped": {"counts": _counts(skipped), "log": skipped},
        "duplicates": {"groups": duplicates, "files": sum(len(g) for g in duplicates)},
        "inputs": acc.get("inputs"),
    }
    manifest["content_sha256"] = content_sha256(manifest)
    return manifest


def write_manifest(out_dir: str, cfg_dict: dict, source_desc: dict, n_shards: int, owned: list[int],
                   partition: dict | None = None, accounting: dict | None = None,
                   written: dict[int, tuple[dict, list[dict]]] | None = None) -> dict:
    """Write the manifest of the shards ``owned`` (all of them, or one partition's) and return it.

    ``partition``: ``{"index", "count"}`` for one partition of a job array (its part
    manifest is written), ``None`` for a whole build (``manifest.json``).  ``accounting``:
    see :func:`assemble_manifest`.  ``written``: shard index -> (entry, rejection log) of the shards
    this run wrote (:func:`written_entry`); the others (complete before a resume) are read back.
    """
    written = written or {}
    entries, rejections = [], []
    for j in owned:
        e, rej = written[j] if j in written else shard_entry(out_dir, j)[:2]
        entries.append(e)
        rejections.extend(rej)
    manifest = assemble_manifest(entries, rejections, cfg_dict, source_desc, n_shards, partition, accounting)
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
        raise FormatError(f"no manifest at {mpath}: not a finished build (a build folder holds manifest.json and "
                          "shards/; is the build still running, or are its partitions not joined yet?)")
    try:
        with open(mpath, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{mpath} is not valid JSON ({exc}); rebuild, or restore it from a copy") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FormatError(f"{mpath} is not an occface build manifest")
    _check_structure(manifest, mpath)
    return manifest


_FIELDS = {"manifest_version": int, "config": dict, "source": dict, "num_shards": int, "shards": list,
           "totals": dict, "rejections": dict, "skipped": dict, "inputs": dict, "content_sha256": str}
_ENTRY = {"file": str, "index": int, "records": int, "samples": int, "rejected": int, "splits": dict,
          "sha256": str, "bytes": int}


def _check_structure(m: dict, mpath: str) -> None:
    """Raise FormatError (one line) unless ``m`` has the fields and types this version reads."""
    version = m.get("manifest_version")
    if version != MANIFEST_VERSION:
        raise FormatError(f"{mpath} is a version-{version} manifest; this occface reads version {MANIFEST_VERSION}: "
                          "build again with this version")
    for k, t in _FIELDS.items():
        if not isinstance(m.get(k), t):
            raise FormatError(f"{mpath} is damaged: field {k!r} is missing or not a {t.__name__}")
    for i, e in enumerate(m["shards"]):
        bad = [k for k, t in _ENTRY.items() if not isinstance(e, dict) or not isinstance(e.get(k), t)]
        if bad:
            raise FormatError(f"{mpath} is damaged: shard entry {i} lacks or mistypes {', '.join(bad)}")
        if os.path.isabs(e["file"]) or ".." in e["file"].replace("\\", "/").split("/"):
            raise FormatError(f"{mpath} is damaged: shard entry {i} points outside the build ({e['file']!r})")


def check_content(manifest: dict, where: str) -> None:
    """Raise FormatError when a manifest's content does not match its ``content_sha256`` (it was edited)."""
    if manifest.get("content_sha256") != content_sha256(manifest):
        raise FormatError(f"{where}: the manifest's content does not match its content_sha256 (it was edited "
                          "after the build wrote it); rebuild, or restore it from a copy")


def manifest_sha256(path: str) -> str:
    """SHA-256 of a build's manifest.json (``path``: build directory or manifest path).

    Raises :class:`~occface.errors.FormatError` when there is no valid manifest there."""
    load_manifest(path)
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
    with build_lock(out_dir):
        return _join_locked(out_dir, part_dirs)


def _join_locked(out_dir: str, part_dirs: list[str] | None) -> dict:
    dirs = [out_dir] + [d for d in (part_dirs or []) if os.path.abspath(d) != os.path.abspath(out_dir)]
    parts = {}
    for d in dirs:
        for fn in sorted(os.listdir(d)):
            if fn.startswith("manifest-part-") and fn.endswith(".json"):
                m = load_manifest(os.path.join(d, fn))
                check_content(m, os.path.join(d, fn))
                if not isinstance(m.get("partition"), dict):
                    raise BuildError(f"{os.path.join(d, fn)} is not a partition manifest")
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
        if any(m[k] != first[k] for k in ("inputs", "skipped", "duplicates")):
            raise BuildError(f"partition {i} in {d} was planned from other photos (its input digest differs): "
                             "rebuild the partitions from one unchanged copy of the database")
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
    accounting = {"skipped": first["skipped"]["log"], "duplicates": first["duplicates"]["groups"],
                  "inputs": first["inputs"]}
    manifest = assemble_manifest(entries, rejections, first["config"], first["source"], first["num_shards"], None,
                                 accounting)
    write_json_atomic(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def verify(out_dir: str, quick: bool = False) -> list[str]:
    """Check a build against its manifest.  Returns a list of problems (empty = verified).

    Always: the manifest's own content digest (any edit), its internal sums (totals, split and
    reason counts, the seed, the shard indices, the input digest), and for every shard its
    presence, its size and its header (schema, sample / record / rejection counts, index,
    config, database, input digest); shard files the manifest does not list.  Unless
    ``quick``: every shard's SHA-256, its split counts and its rejection log re-read from the
    shard itself.
    """
    m = load_manifest(out_dir)
    problems = []
    if m.get("content_sha256") != content_sha256(m):
        problems.append("manifest edited: its content does not match its content_sha256")
    problems += _internal_problems(m)
    listed = set()
    rejections = []
    for e in m["shards"]:
        path = os.path.join(out_dir, e["file"])
        listed.add(os.path.basename(path))
        if not os.path.isfile(path):
            problems.append(f"missing: {e['file']}")
            continue
        if os.path.getsize(path) != e["bytes"]:
            problems.append(f"size mismatch: {e['file']} has {os.path.getsize(path)} bytes, the manifest says {e['bytes']}")
            continue
        try:
            attrs = shards.read_attrs(path)
        except OSError as exc:
            problems.append(f"unreadable: {e['file']} ({exc})")
            continue
        problems += [f"header mismatch: {e['file']}: {p}" for p in _header_problems(attrs, e, m)]
        rejections.extend(attrs.get("rejections", []))
        if quick:
            continue
        if sha256_file(path) != e["sha256"]:
            problems.append(f"hash mismatch: {e['file']}")
            continue
        splits: dict[str, int] = {}
        for sp in shards.read_meta(path)["split"]:
            splits[sp] = splits.get(sp, 0) + 1
        if dict(sorted(splits.items())) != e["splits"]:
            problems.append(f"split counts mismatch: {e['file']} holds {dict(sorted(splits.items()))}, "
                            f"the manifest says {e['splits']}")
    if not quick and not any(p.startswith(("missing", "size", "unreadable", "hash")) for p in problems) \
            and rejections != m["rejections"]["log"]:
        problems.append("rejection log mismatch: the manifest's log is not the shards' rejections")
    shard_dir = os.path.join(out_dir, "shards")
    for fn in sorted(os.listdir(shard_dir)) if os.path.isdir(shard_dir) else []:
        if fn.endswith(".h5") and fn not in listed:
            problems.append(f"not in manifest: shards/{fn}")
    return problems


def _internal_problems(m: dict) -> list[str]:
    """Fields of a manifest that disagree with the manifest's other fields."""
    out = []
    entries = m["shards"]
    tot = m["totals"]
    want = {
        "records": sum(e["records"] for e in entries),
        "samples": sum(e["samples"] for e in entries),
        "rejected": sum(e["rejected"] for e in entries),
    }
    for k, v in want.items():
        if tot.get(k) != v:
            out.append(f"totals.{k} is {tot.get(k)}, the shard entries add up to {v}")
    splits: dict[str, int] = {}
    for e in entries:
        if sum(e["splits"].values()) != e["samples"]:
            out.append(f"{e['file']}: split counts {e['splits']} do not add up to its {e['samples']} samples")
        for k, v in e["splits"].items():
            splits[k] = splits.get(k, 0) + v
    if tot.get("splits") != dict(sorted(splits.items())):
        out.append(f"totals.splits is {tot.get('splits')}, the shard entries add up to {dict(sorted(splits.items()))}")
    rej, skip = m["rejections"], m["skipped"]
    if len(rej.get("log", [])) != tot.get("rejected") or rej.get("counts") != _counts(rej.get("log", [])):
        out.append("rejections: counts or log do not match totals.rejected")
    if len(skip.get("log", [])) != tot.get("skipped") or skip.get("counts") != _counts(skip.get("log", [])):
        out.append("skipped: counts or log do not match totals.skipped")
    dup = m.get("duplicates") or {}
    if not isinstance(dup.get("groups"), list) or dup.get("files") != sum(len(g) for g in dup["groups"]):
        out.append("duplicates: files does not match the groups")
    if m.get("seed") != m["config"].get("seed"):
        out.append(f"seed is {m.get('seed')}, config.seed is {m['config'].get('seed')}")
    idx = [e["index"] for e in entries]
    if len(set(idx)) != len(idx) or any(not 0 <= j < m["num_shards"] for j in idx):
        out.append("shard indices repeat or fall outside num_shards")
    if m.get("partition") is None:
        if sorted(idx) != list(range(m["num_shards"])):
            out.append(f"the shard entries do not cover shards 0..{m['num_shards'] - 1}")
        digests = [e.get("inputs_sha256") for e in sorted(entries, key=lambda e: e["index"])]
        if None in digests or m["inputs"].get("sha256") != lines_sha256(digests):
            out.append("inputs.sha256 is not the digest of the shards' input digests")
        if m["inputs"].get("records") != want["records"]:
            out.append(f"inputs.records is {m['inputs'].get('records')}, the shards hold {want['records']} records")
    for e in entries:
        if e["file"] != f"shards/{shards.shard_name(e['index'])}":
            out.append(f"shard entry {e['index']} names the file {e['file']!r}")
    return out


def _header_problems(attrs: dict, e: dict, m: dict) -> list[str]:
    """Where a shard's root attributes disagree with its manifest entry and the manifest's config."""
    from .canonical import to_json

    out = []
    if attrs.get("schema") != shards.SCHEMA or attrs.get("schema_version") != shards.SCHEMA_VERSION:
        return ["not an occface shard of this schema"]
    pairs = (("num_samples", "samples"), ("num_records", "records"), ("shard_index", "index"),
             ("inputs_sha256", "inputs_sha256"))
    for a, k in pairs:
        if attrs.get(a) != e.get(k):
            out.append(f"{a} is {attrs.get(a)!r}, the manifest says {e.get(k)!r}")
    if len(attrs.get("rejections", [])) != e["rejected"]:
        out.append(f"{len(attrs.get('rejections', []))} rejections, the manifest says {e['rejected']}")
    if to_json(attrs.get("config")) != to_json(m["config"]):
        out.append("built with another config than the manifest's")
    if to_json(attrs.get("source")) != to_json(m["source"]):
        out.append("built from another database description than the manifest's")
    return out
