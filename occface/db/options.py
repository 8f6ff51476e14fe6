"""Choosing and configuring a database adapter by name: what the CLI's ``--db``, ``--root``
and ``--db-option`` map onto.  The table of adapters is an explicit dict."""

from __future__ import annotations

import dataclasses

from ..faces.detect import DetectConfig
from .base import Source
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
    """``["key=value", ...]`` -> adapter keyword arguments, typed by the adapter's fields.

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
            raise ValueError(f"a database option needs KEY=VALUE, got {pair!r}")
        if key not in types or key == "root":
            raise ValueError(f"database {name!r} has no option {key!r}; known: {', '.join(k for k in types if k != 'root')}")
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




def open_database(name: str, root: str | None = None, options=(), *, test_fraction: float | None = None,
                  identity_from_parent: bool = False) -> Source:
    """The adapter ``name`` on ``root`` with ``options`` (``["key=value", ...]``, see :func:`parse_options`).

    ``test_fraction`` goes to the adapters that split by it; ``identity_from_parent`` to the
    folder adapter.  The sample database takes no root: its photos ship with scikit-image.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown database {name!r}; known: {sorted(SOURCES)}")
    kwargs = {}
    if test_fraction is not None and "test_fraction" in option_names(name):
        kwargs["test_fraction"] = test_fraction
    if name == "sample":
        if root:
            raise ValueError("the sample database takes no root folder: its photos ship with scikit-image")
    else:
        if not root:
            raise ValueError(f"database {name!r} needs the root folder of its photos")
        kwargs["root"] = root
        if name == "folder":
            kwargs["identity_from_parent"] = identity_from_parent
    kwargs.update(parse_options(name, options))
    return get_source(name, **kwargs)


def detect_config(name: str, detector: str | None = None, **fields) -> DetectConfig:
    """The detection config for database ``name``: its defaults (e.g. Multi-PIE's ``hog+cnn``, whose
    profile poses defeat HOG), overridden by ``detector`` (when given) and ``fields``."""
    defaults = dict(getattr(SOURCES[name], "detect_defaults", {}))
    if detector is not None:
        defaults["detector"] = detector
    defaults.update(fields)
    return DetectConfig(**defaults)
