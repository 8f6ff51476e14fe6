"""Where the bundled evaluation mask sets live: the ``masks/`` folder, installed as the data
package ``occface_masksets``.  Only names and folders; reading a set is :mod:`.sets`."""

from __future__ import annotations

import importlib.resources


def bundled_root():
    """The installed ``masks/`` folder (a Traversable)."""
    return importlib.resources.files("occface_masksets")


def bundled_names() -> list[str]:
    """Names of the sets shipped in ``masks/`` (package ``occface_masksets``)."""
    root = bundled_root()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.joinpath("spec.json").is_file())
