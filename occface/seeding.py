"""Per-sample random generators.

Every random choice occface makes for a sample comes from a generator built
here from ``(base_seed, stable_key, stream)``.  The key is a string that names
the sample independently of processing order (e.g. ``"folder:alice/01.jpg#0"``)
and the stream names the stage (``"mask"``, ``"fill"``, ``"remask:epoch=3"``),
so adding a random draw to one stage never shifts another stage's draws.

The key is hashed with SHA-256 (never Python's salted ``hash()``) and fed to
``numpy.random.SeedSequence`` together with the base seed, so results are the
same on every machine, in every process and for every worker count.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _words(text: str) -> list[int]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4)]


def seed_sequence(base_seed: int, key: str, stream: str = "") -> np.random.SeedSequence:
    """SeedSequence for one (base seed, sample key, stream) triple."""
    if not isinstance(base_seed, (int, np.integer)) or base_seed < 0:
        raise ValueError(f"base seed must be a non-negative integer, got {base_seed!r}")
    return np.random.SeedSequence([int(base_seed), *_words(key), *_words(stream)])


def rng_for(base_seed: int, key: str, stream: str = "") -> np.random.Generator:
    """A fresh PCG64 generator for one sample and one stage."""
    return np.random.Generator(np.random.PCG64(seed_sequence(base_seed, key, stream)))


def stable_int(text: str, modulo: int) -> int:
    """Deterministic integer in ``[0, modulo)`` from a string (SHA-256 based)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") % modulo
