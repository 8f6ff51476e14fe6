"""The bytes a build produces are pinned: a refactor or an optimisation must not change a sample.

Digests of the sample database built with the defaults (also spelt ``--degrade none``) and with
``--mask pconv --heatmaps all68@64`` at seed 0, over every array a loader serves (hr, hr_occluded, mask, lr, lr_clean,
landmarks, heatmaps) and the keys, mask params, splits and identities.  They were taken with
the versions in the manifest's ``versions`` (dlib 19.24, OpenCV 4.x/5.x as installed); a new
dlib or OpenCV may legitimately move a landmark or a stroke, and then this test says so first.
"""

from __future__ import annotations

import hashlib
import os

import h5py
import numpy as np
import pytest

from occface import build as B
from occface import degrade, masks
from occface.db import SampleSource
from occface.format.manifest import load_manifest

PINNED = {
    "default": "f6b9a2643f845a4804258486e61667fad15a04a09f4c71e6ea18e3714fcb382d",
    "pconv-all68": "bf24bc6ac1e46dd03a826a45bd7b48075904c26e097e0cfc3573d44e484ca5e5",
}
PINNED["degrade-none"] = PINNED["default"]  # `--degrade none` is today's LR, byte for byte
CONFIGS = {
    "default": B.BuildConfig(),
    "pconv-all68": B.BuildConfig(mask=masks.PConvMask(), heatmaps=("all68@64",)),
    "degrade-none": B.BuildConfig(degrade=degrade.from_text("none")),
}


def content_digest(build_dir: str) -> str:
    """SHA-256 over the served arrays and the per-sample keys of every shard, in shard order."""
    h = hashlib.sha256()
    for e in sorted(load_manifest(build_dir)["shards"], key=lambda e: e["index"]):
        with h5py.File(os.path.join(build_dir, e["file"]), "r") as f:
            for name in ("hr", "hr_occluded", "mask", "lr", "lr_clean", "landmarks"):
                h.update(name.encode())
                h.update(np.ascontiguousarray(f[name][...]).tobytes())
            for spec in sorted(f["heatmaps"].keys()) if "heatmaps" in f else []:
                h.update(spec.encode())
                h.update(f["heatmaps"][spec][...].tobytes())
            for k in ("key", "mask_params", "split", "subject"):
                h.update("\n".join(f["meta/" + k].asstr()[...]).encode())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_sample_build_content_is_pinned(name, tmp_path):
    out = str(tmp_path / name)
    B.build(SampleSource(), CONFIGS[name], out, workers=1, progress=False, log=lambda s: None)
    versions = load_manifest(out)["versions"]
    assert content_digest(out) == PINNED[name], f"sample build {name!r} changed (versions {versions})"
