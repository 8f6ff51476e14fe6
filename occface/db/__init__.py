"""Database adapters.  Each adapter turns a root directory (or an installed
resource) into a sorted list of :class:`~occface.db.base.Record` with splits
assigned, and loads one record's photo as RGB.

Adapters are chosen by name with :func:`get_source`; the mapping is an
explicit dict, not filled by import side effects.
"""

from __future__ import annotations

from .base import Record, Source
from .folder import FolderSource
from .sample import SampleSource

SOURCES = {"folder": FolderSource, "sample": SampleSource}


def get_source(name: str, **options) -> Source:
    try:
        cls = SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown database {name!r}; known: {sorted(SOURCES)}") from None
    return cls(**options)


__all__ = ["Record", "Source", "SOURCES", "get_source", "FolderSource", "SampleSource"]
