"""The job-array path of docs/scale.md, locally: K partition processes at once, then ``occface join``,
give exactly the shards and manifest of a single build."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from occface import build as B
from occface.build import BuildConfig
from occface.db import SampleSource
from occface.format import manifest as manifest_fmt
from occface.format import shards

K = 3
ARGS = ["--db", "sample", "--shard-size", "16", "--seed", "5", "--mask", "pconv", "--heatmaps", "pu7@16",
        "--workers", "1", "--no-progress", "-q"]


def _hashes(out):
    d = os.path.join(out, "shards")
    return {f: shards.sha256_file(os.path.join(d, f)) for f in sorted(os.listdir(d))}


def test_parallel_partitions_then_join_equal_one_build(tmp_path):
    from occface import masks

    single = str(tmp_path / "single")
    B.build(SampleSource(), BuildConfig(shard_size=16, seed=5, mask=masks.PConvMask(), heatmaps=("pu7@16",)),
            single, workers=1, progress=False, log=lambda s: None)
    cmd = [sys.executable, "-m", "occface_cli.main", "build"]
    # what a SLURM array runs: one task per index, each with its own output folder, all at once
    procs = [subprocess.Popen([*cmd, *ARGS, "--num-shards", str(K), "--shard-index", str(i),
                               "--out", str(tmp_path / "parts" / f"p{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(K)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    parts = [str(tmp_path / "parts" / f"p{i}") for i in range(K)]
    for i, d in enumerate(parts):
        assert os.path.exists(os.path.join(d, manifest_fmt.part_manifest_name(i, K)))
        assert not os.path.exists(os.path.join(d, "manifest.json"))
    joined = str(tmp_path / "joined")
    res = subprocess.run([sys.executable, "-m", "occface_cli.main", "join", joined, *parts],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert _hashes(joined) == _hashes(single)
    with open(os.path.join(joined, "manifest.json"), "rb") as a, open(os.path.join(single, "manifest.json"), "rb") as b:
        assert a.read() == b.read()  # byte-identical manifest
    assert manifest_fmt.verify(joined) == []
    assert json.load(open(os.path.join(joined, "manifest.json")))["totals"]["samples"] > 80
