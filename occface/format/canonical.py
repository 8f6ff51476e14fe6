"""Canonical JSON of configs: the form stored in every shard, manifest and checkpoint.

Frozen dataclasses (nested, with tuples) become plain dicts and lists; ``to_json`` sorts
keys and drops spaces, so equal configs give equal strings and resumes can compare them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json


def to_dict(obj):
    """Plain JSON-able form of a (nested) frozen config: dataclasses -> dicts, tuples -> lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def to_json(obj) -> str:
    """Canonical JSON (sorted keys, no spaces): equal configs give equal strings."""
    return json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"))


def sha256_file(path, bufsize: int = 1 << 18) -> str:
    """Hex SHA-256 of a file's bytes.

    Read unbuffered into one reused buffer: a fresh multi-MB ``read()`` per chunk spends as long in
    allocation and page faults as the hash itself; 256 KiB stays in the CPU's cache."""
    h = hashlib.sha256()
    buf = bytearray(bufsize)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def lines_sha256(lines) -> str:
    """SHA-256 of ASCII lines joined by newlines (input digests: a shard group's fingerprint lines, or
    the group digests of a whole plan in shard order)."""
    return hashlib.sha256("\n".join(lines).encode("ascii")).hexdigest()
