"""The reference weights shipped in the package: file vs card, loading, and the commands that
use them when no checkpoint is given."""

from __future__ import annotations

import hashlib
import json
import os

import cv2
import pytest
import torch
from click.testing import CliRunner

from occface import train as T
from occface.model import bundled
from occface_cli.main import main as cli


@pytest.mark.parametrize("name", bundled.available())
def test_bundled_weights_match_their_card_and_load_safely(name):
    assert bundled.DEFAULT in bundled.available()
    card = bundled.card(name)
    assert card["name"] == name and card["file"] == name + ".pt"
    path = bundled.bundled_weights(name)
    with open(path, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == card["sha256"]
    assert os.path.getsize(path) == card["bytes"] <= 12 * 2**20
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and containers only
    assert raw["format"] == T.CHECKPOINT_FORMAT and raw["dtype"] == card["dtype"] == "float16"
    assert all(v.dtype == torch.float16 for v in raw["generator"].values() if v.is_floating_point())
    g, info = T.load_generator(path)
    assert next(g.parameters()).dtype == torch.float32 and not g.training
    assert info["step"] == card["step"] > 0
    for key in ("data", "split", "steps", "wall_time", "hardware", "validation", "command"):
        assert card.get(key), key


def test_bundled_card_rejects_a_modified_file(tmp_path, monkeypatch):
    for name in (bundled.DEFAULT + ".pt", bundled.DEFAULT + ".json"):
        with open(os.path.join(bundled.WEIGHTS_DIR, name), "rb") as src:
            data = src.read()
        if name.endswith(".pt"):
            data = data[:-1] + bytes([data[-1] ^ 1])
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(bundled, "WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(bundled.BundledWeightsError, match="does not match its card"):
        bundled.bundled_weights()
    with pytest.raises(bundled.BundledWeightsError, match="no bundled weights named 'nope'"):
        bundled.card("nope")


def test_hallucinate_without_a_checkpoint_uses_the_bundled_weights(prouigan_build, tmp_path):
    import h5py

    with h5py.File(os.path.join(prouigan_build, "shards", "shard-00000.h5"), "r") as f:
        lrs = f["lr"][:3]
    paths = []
    for k, lr in enumerate(lrs):
        paths.append(str(tmp_path / f"face{k}.png"))
        cv2.imwrite(paths[-1], lr[..., ::-1].copy())
    out = str(tmp_path / "out")
    r = CliRunner().invoke(cli, ["hallucinate", *paths, "--out", out, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert f"bundled reference weights {bundled.DEFAULT}" in r.output
    for k in range(3):
        img = cv2.imread(os.path.join(out, f"face{k}.png"))
        assert img.shape == (128, 128, 3) and img.std() > 5  # a face, not a flat image
    r = CliRunner().invoke(cli, ["validate", "--data", prouigan_build, "--out", str(tmp_path / "v"),
                                 "--device", "cpu", "--no-downstream", "--limit", "4"])
    assert r.exit_code == 0, r.output
    assert "bundled reference weights" in r.output and "## By UI-block" in r.output
    rep = json.load(open(tmp_path / "v" / "report.json"))
    assert rep["checkpoint"]["path"] == bundled.bundled_weights()


def test_an_older_bundled_generator_is_chosen_by_name(prouigan_build, tmp_path):
    older = [n for n in bundled.available() if n != bundled.DEFAULT]
    assert older, "the previous reference weights stay bundled for comparison"
    r = CliRunner().invoke(cli, ["validate", "--weights", older[0], "--data", prouigan_build,
                                 "--out", str(tmp_path / "v"), "--device", "cpu", "--no-downstream", "--limit", "2"])
    assert r.exit_code == 0, r.output
    assert f"--weights: using the bundled reference weights {older[0]}" in r.output
    rep = json.load(open(tmp_path / "v" / "report.json"))
    assert rep["checkpoint"]["path"] == bundled.bundled_weights(older[0])
    r = CliRunner().invoke(cli, ["validate", "--weights", "nope", "--data", prouigan_build,
                                 "--out", str(tmp_path / "w"), "--device", "cpu"])
    assert r.exit_code != 0 and "no bundled weights named 'nope'" in r.output
    assert "Traceback" not in r.output
