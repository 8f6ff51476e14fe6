"""The reference weights that ship inside the package (``occface/model/weights/``).

Each bundled generator is ``<name>.pt`` - a generator-only checkpoint in the trainer's format
(``occface.train.checkpoint``; float16 tensors, read with ``weights_only=True``) - and its card
``<name>.json``: the file's SHA-256, the data, split, schedule, wall time, hardware and the
validation tables it was shipped with (docs/model_card.md).  :func:`bundled_weights` checks the
file against its card before anyone loads it.

Reads only files inside the installed package; no network.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..errors import OccfaceError

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
#: The reference generator ``occface hallucinate`` / ``occface validate`` use by default.
DEFAULT = "prouigan-lfw-v2"


class BundledWeightsError(OccfaceError):
    """Bundled weights are absent from this installation or do not match their card."""


def available() -> list[str]:
    """Names of the bundled generators (``<name>.pt`` with a ``<name>.json`` card)."""
    if not os.path.isdir(WEIGHTS_DIR):
        return []
    names = {f[:-3] for f in os.listdir(WEIGHTS_DIR) if f.endswith(".pt")}
    return sorted(n for n in names if os.path.exists(os.path.join(WEIGHTS_DIR, n + ".json")))


def card(name: str = DEFAULT) -> dict:
    """The card (JSON) of bundled generator ``name``."""
    path = os.path.join(WEIGHTS_DIR, name + ".json")
    if not os.path.exists(path):
        raise BundledWeightsError(f"no bundled weights named {name!r} in {WEIGHTS_DIR} "
                                  f"(available: {', '.join(available()) or 'none'})")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def bundled_weights(name: str = DEFAULT) -> str:
    """Path of bundled generator ``name`` after checking its SHA-256 against its card."""
    meta = card(name)
    path = os.path.join(WEIGHTS_DIR, name + ".pt")
    if not os.path.exists(path):
        raise BundledWeightsError(f"{path} is missing although its card is installed")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != meta.get("sha256"):
        raise BundledWeightsError(f"{path}: SHA-256 {h.hexdigest()[:16]}... does not match its card "
                                  f"({str(meta.get('sha256'))[:16]}...); reinstall occface")
    return path
