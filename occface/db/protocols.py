"""Versioned protocol files (``manifests/<db>.json``, installed as ``occface_protocols``).

A protocol is written as rules (cameras, expressions, split rules, counts),
never as image lists, so anyone can regenerate the same selection from their
own licensed copy.  Adapters put ``{"name", "version", "file", ...}`` of the
protocol they applied into ``describe()["protocol"]``, which the build
manifest records.
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
from importlib import resources


class PartialCopyWarning(UserWarning):
    """The database copy lacks parts the protocol expects (missing sessions, cameras, images)."""


@functools.lru_cache(maxsize=None)
def _read(db: str) -> str:
    return (resources.files("occface_protocols") / f"{db}.json").read_text(encoding="utf-8")


def protocol_file(db: str) -> dict:
    """The whole protocol file of ``db`` (a fresh copy)."""
    try:
        text = _read(db)
    except FileNotFoundError:
        raise FileNotFoundError(f"no protocol file manifests/{db}.json in occface_protocols") from None
    return json.loads(text)


def protocol(db: str, name: str | None = None) -> dict:
    """One protocol's rules, with ``name``, ``version`` and ``file`` filled in."""
    doc = protocol_file(db)
    name = name or doc["default"]
    try:
        rules = copy.deepcopy(doc["protocols"][name])
    except KeyError:
        raise ValueError(f"unknown {db} protocol {name!r}; known: {sorted(doc['protocols'])}") from None
    return {"name": name, "file": f"manifests/{db}.json", **rules}


def warn_partial(db: str, lines: list[str]) -> None:
    """Report a partial copy loudly (it is also recorded in the manifest's ``source.coverage``)."""
    if lines:
        warnings.warn(f"{db}: partial copy: " + "; ".join(lines), PartialCopyWarning, stacklevel=3)


def settle_coverage(db: str, problems: list[str], require_complete: bool, where: str = "") -> None:
    """An incomplete copy is an error when ``require_complete``, else a loud warning (never silent)."""
    if problems and require_complete:
        raise FileNotFoundError(f"{db}: incomplete copy{' under ' + where if where else ''}: " + "; ".join(problems))
    warn_partial(db, problems)


def parse_bool(text) -> bool:
    if isinstance(text, bool):
        return text
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_list(text) -> tuple[str, ...]:
    """``"a,b , c"`` -> ("a", "b", "c"); lists and tuples pass through as strings."""
    if text is None:
        return ()
    if isinstance(text, (list, tuple)):
        return tuple(str(t).strip() for t in text if str(t).strip())
    return tuple(t.strip() for t in str(text).split(",") if t.strip())
