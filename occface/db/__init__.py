"""Database adapters.  Each adapter turns a root directory (or an installed
resource) into a sorted list of :class:`~occface.db.base.Record` with splits
assigned, and loads one record's photo as RGB.

Adapters are chosen by name with :func:`get_source`; the mapping is an
explicit dict, not filled by import side effects.
"""

from __future__ import annotations

import dataclasses

from .base import Record, Source
from .celebahq import CelebAHQSource
from .folder import FolderSource
from .helen import HelenSource
from .multipie import MultiPieSource
from .sample import SampleSource

SOURCES = {
    "celeba-hq": CelebAHQSource,
    "folder": FolderSource,
    "helen": HelenSource,
    "multipie": MultiPieSource,
    "sample": SampleSource,
}


def get_source(name: str, **options) -> Source:
    try:
        cls = SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown database {name!r}; known: {sorted(SOURCES)}") from None
    return cls(**options)


def option_names(name: str) -> list[str]:
    """The options (dataclass fields) an adapter accepts."""
    return [f.name for f in dataclasses.fields(SOURCES[name])]


def parse_options(name: str, pairs) -> dict:
    """``["key=value", ...]`` (``--db-option``) -> adapter keyword arguments, typed by the adapter's fields.

    Lists are comma-separated (``cameras=05_1,14_0``, ``yaw_range=-45,45``); booleans accept
    true/false/yes/no/1/0; dashes in keys may be written as underscores or dashes.
    """
    from .protocols import parse_bool

    if name not in SOURCES:
        raise ValueError(f"unknown database {name!r}; known: {sorted(SOURCES)}")
    types = {f.name: str(f.type) for f in dataclasses.fields(SOURCES[name])}
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--db-option needs KEY=VALUE, got {pair!r}")
        if key not in types or key == "root":
            raise ValueError(f"--db {name} has no option {key!r}; known: {', '.join(k for k in types if k != 'root')}")
        t, value = types[key], value.strip()
        if value.lower() in ("none", "") and "None" in t:
            out[key] = None
        elif t.startswith("tuple"):
            out[key] = value  # the adapter splits and validates comma lists
        elif t.startswith("bool"):
            out[key] = parse_bool(value)
        elif t.startswith("int"):
            out[key] = int(value)
        elif t.startswith("float"):
            out[key] = float(value)
        else:
            out[key] = value
    return out


__all__ = ["Record", "Source", "SOURCES", "get_source", "option_names", "parse_options", "FolderSource",
           "SampleSource", "MultiPieSource", "CelebAHQSource", "HelenSource"]
