"""Making evaluation mask sets: generate a set from its spec, write it, check it regenerates.

Mask ``j`` of group ``label`` is ``render(sample_params(spec, rng_for(seed,
f"{label}/{j:05d}", stream)))``, so a set is a pure function of its spec
(:mod:`occface.masks.sets` describes the files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..format.atomic import write_bytes_atomic
from ..seeding import rng_for
from . import specs
from .sample import sample_mask
from .sets import (ARRAY_DTYPES, NPZ_ORDER, bundled_names, canonical_spec, checksums, npz_bytes, read_arrays, read_spec,
                   set_folder, spec_bytes)


def generate(spec: dict) -> dict:
    """The arrays of a set: ``{"bits", "count", "group"}`` (pure function of the spec)."""
    spec = canonical_spec(spec)
    size, seed, stream = spec["size"], spec["seed"], spec["stream"]
    bits, count, group = [], [], []
    for gi, g in enumerate(spec["groups"]):
        s = specs.spec_from_dict(g["spec"])
        for j in range(g["count"]):
            _, m = sample_mask(s, rng_for(seed, f"{g['label']}/{j:05d}", stream), None, size)
            bits.append(np.packbits(m.ravel()))
            count.append(int(np.count_nonzero(m)))
            group.append(gi)
    return {
        "bits": np.stack(bits).astype(ARRAY_DTYPES["bits"]),
        "count": np.asarray(count, ARRAY_DTYPES["count"]),
        "group": np.asarray(group, ARRAY_DTYPES["group"]),
    }


def make_set(src, out_dir) -> dict:
    """Generate the set described by ``src`` (spec dict, ``spec.json`` path, set folder or bundled name) into ``out_dir``.

    Writes ``spec.json``, ``masks.npz`` and ``checksums.json``; returns the checksums.
    """
    spec = canonical_spec(src) if isinstance(src, dict) else read_spec(src)
    spec_b = spec_bytes(spec)
    arrays = generate(spec)
    npz_b = npz_bytes(arrays)
    sums = checksums(spec_b, npz_b, arrays)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "spec.json", spec_b)
    write_bytes_atomic(out / "masks.npz", npz_b)
    write_bytes_atomic(out / "checksums.json", (json.dumps(sums, indent=2) + "\n").encode("utf-8"))
    return sums


def regenerate_problems(src) -> list[str]:
    """Arrays that change when the set ``src`` is regenerated from its spec (empty = identical)."""
    folder = set_folder(src)
    arrays = read_arrays(folder)
    fresh = generate(read_spec(folder))
    return [f"regenerating from the spec changes {k}" for k in NPZ_ORDER if not np.array_equal(fresh[k], arrays[k])]


def bundled_checksums(name: str) -> dict | None:
    """The recorded ``checksums.json`` of bundled set ``name`` (None when ``name`` is not bundled)."""
    if name not in bundled_names():
        return None
    return json.loads(set_folder(name).joinpath("checksums.json").read_text("utf-8"))
