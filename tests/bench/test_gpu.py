"""``occface bench gpu``: the GPU-readiness script, run on CPU at tiny sizes."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from occface_cli.main import main as cli


def test_bench_gpu_runs_on_cpu_and_writes_json_and_markdown(prouigan_build, tmp_path):
    out = str(tmp_path / "bench")
    r = CliRunner().invoke(cli, ["bench", "gpu", "--data", prouigan_build, "--device", "cpu", "--out", out,
                                 "--widths", "8,6,4", "--train-batch", "2", "--infer-batch", "4",
                                 "--warmup", "0", "--seconds", "0.01", "--compile", "off"])
    assert r.exit_code == 0, r.output
    res = json.load(open(os.path.join(out, "bench-gpu.json")))
    got = [(row["kind"], row["setup"]) for row in res["rows"]]
    assert got == [("training", "fp32 eager"), ("inference", "fp32 eager"),
                   ("training", "bf16 channels_last eager"), ("inference", "bf16 channels_last eager")]
    for row in res["rows"]:
        assert row["images_per_s"] > 0 and row["peak_memory_gib"] is None  # no CUDA allocator on CPU
        assert row["batch"] == (2 if row["kind"] == "training" else 4)
    assert res["rows"][0]["x_fp32_eager"] == 1.0
    assert res["targets"] == {"training_images_per_s": 2000, "inference_images_per_s_batch_256": 10000}
    md = open(os.path.join(out, "bench-gpu.md")).read()
    assert md.count("\n| training |") == 2 and md.count("\n| inference |") == 2 and "not measured" in md
