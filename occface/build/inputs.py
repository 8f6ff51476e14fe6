"""What a build reads: the input fingerprint of every shard, and what changed since a shard was built.

Each record's *fingerprint line* is canonical JSON (ASCII) of its key, source, split,
subject, metadata, adapter rejection and, for every file it is made from
(``Source.input_files``), the file's size and modification time in nanoseconds::

    {"files":[[25634,1719232323123456789]],"key":"folder:bob/f0.png","meta":{},...}

A shard stores the lines of its group (dataset ``inputs``) and their SHA-256
(attribute ``inputs_sha256``); the manifest stores each shard's digest and the digest of
the whole plan.  A resume keeps a shard only when its digest equals the one planned now,
so a photo added, removed or changed (size or time) is never served from an old shard.
Size and time are read with one ``stat`` per file (~1-2 us), not by hashing the content:
a change that keeps both (rare outside deliberate tampering) is not seen; ``verify``
re-hashes the shards themselves.
"""

from __future__ import annotations

import json
import os

from ..format.canonical import lines_sha256

FINGERPRINT = "size+mtime_ns"


def _stat(path: str, known: dict):
    got = known.get(path)
    if got is not None:
        return f"[{got[0]},{got[1]}]"
    try:
        st = os.stat(path)
    except OSError:
        return "null"  # missing or unreadable: the decode will say why
    return f"[{st.st_size},{st.st_mtime_ns}]"


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode  # ASCII, canonical


def record_line(record, source, known: dict | None = None) -> str:
    """The fingerprint line of one record (see the module docstring): canonical JSON with sorted keys.

    ``known``: ``{path: (size, mtime_ns)}`` already read (``Inventory.stats``); other files are stat'ed.
    Built field by field (the same text ``json.dumps(..., sort_keys=True)`` gives), ~3x cheaper."""
    files = ",".join(_stat(p, known or {}) for p in source.input_files(record))
    rej = _dumps(list(record.rejection)) if record.rejection else "null"
    return (f'{{"files":[{files}],"key":{_dumps(record.key)},"meta":{_dumps(record.meta)},"rejection":{rej},'
            f'"source":{_dumps(record.source)},"split":{_dumps(record.split)},"subject":{_dumps(record.subject)}}}')


def digest(lines: list[str]) -> str:
    """SHA-256 of a group's fingerprint lines (its ``inputs_sha256``)."""
    return lines_sha256(lines)


def plan_digest(group_digests: list[str]) -> str:
    """SHA-256 of a whole plan: every shard group's digest, in shard order."""
    return lines_sha256(group_digests)


def changes(old: dict[int, tuple[list[str], dict]], new_groups: list[list[str]], stale: list[int],
            last_key: str) -> dict:
    """What differs between the inputs recorded in existing shards and the inputs planned now.

    ``old``: shard index -> (its stored fingerprint lines, its root attributes) for the stale
    shards and any shard beyond the new plan; ``new_groups``: the planned lines per shard;
    ``stale``: shard indices whose stored digest differs from the planned one; ``last_key``: the
    largest key any existing shard holds.  Returns ``{"added", "removed", "modified"}``: sorted
    record sources.  A planned record counts as added only inside the key range of a stale shard
    or past ``last_key``, so records of shards an interrupted build never wrote are not counted.
    """
    old_lines = {}
    ranges = [(a["first_key"], a["last_key"]) for _, a in old.values() if a.get("first_key") is not None]
    for lines, _ in old.values():
        for line in lines:
            old_lines[json.loads(line)["key"]] = line
    planned = {}
    for lines in new_groups:
        for line in lines:
            planned[json.loads(line)["key"]] = line
    src = lambda line: json.loads(line)["source"]  # noqa: E731
    removed = sorted(src(v) for k, v in old_lines.items() if k not in planned)
    modified = sorted(src(v) for k, v in old_lines.items() if k in planned and planned[k] != v)
    new_here = lambda k: k > last_key or any(a <= k <= b for a, b in ranges)  # noqa: E731
    added = sorted(src(planned[k]) for j in stale if j < len(new_groups)
                   for k in (json.loads(line)["key"] for line in new_groups[j])
                   if k not in old_lines and new_here(k))
    return {"added": added, "removed": removed, "modified": modified}


def summary(ch: dict, n_stale: int, n_owned: int, out_dir: str, shown: int = 3) -> str:
    """One line: counts and the first few paths of each kind of change."""
    parts, examples = [], []
    for kind in ("added", "removed", "modified"):
        parts.append(f"{len(ch[kind])} {kind}")
        examples += [f"{kind} {p}" for p in ch[kind][:shown]]
    ex = f" ({'; '.join(examples)}{', ...' if sum(len(v) for v in ch.values()) > len(examples) else ''})" \
        if examples else ""
    return (f"the photos changed since the shards in {out_dir} were built: {', '.join(parts)}{ex}; "
            f"{n_stale} of {n_owned} shard(s) are stale")
