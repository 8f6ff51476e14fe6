"""Mistakes a user can make get one ``Error: ...`` line and a non-zero exit code, never a traceback
(``occface --debug`` shows it), and never torch's advice to load a checkpoint unsafely."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

CLI = [sys.executable, "-m", "occface_cli.main"]


def one_line_error(args, code=1, cwd=None) -> str:
    res = subprocess.run(CLI + args, capture_output=True, text=True, cwd=cwd, timeout=300)
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    assert "weights_only" not in res.stderr + res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, res.stderr
    return errors[0]


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "a.png")
    return d


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_verify_of_a_manifest_that_is_not_json(tmp_path):
    (tmp_path / "manifest.json").write_text("{ not json")
    err = one_line_error(["verify", str(tmp_path)])
    assert "is not valid JSON" in err and "rebuild, or restore it from a copy" in err


@pytest.mark.parametrize("kind", ["text", "pickle"])
def test_a_checkpoint_that_is_a_text_file_or_a_malicious_pickle(tmp_path, kind):
    ckpt = tmp_path / "model.pt"
    marker = tmp_path / "code_ran"
    if kind == "text":
        ckpt.write_text("these are not weights\n")
    else:
        with open(ckpt, "wb") as fh:
            pickle.dump({"format": _Evil(marker)}, fh, protocol=4)
    lr = tmp_path / "lr.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(lr)
    err = one_line_error(["hallucinate", str(lr), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"),
                          "--device", "cpu"])
    assert err == f"Error: {ckpt} is not an occface checkpoint: it cannot be read as plain tensors and containers"
    assert not marker.exists()  # nothing in the pickle ran


def test_train_ref_on_a_folder_of_photos(photos, tmp_path):
    err = one_line_error(["train-ref", "--data", str(photos), "--out", str(tmp_path / "run"), "--steps", "1,0,0",
                          "--no-vgg", "--device", "cpu", "--workers", "0", "--no-progress"])
    assert err.startswith(f"Error: no manifest at {photos / 'manifest.json'}: not a finished build")


def test_cuda_without_cuda(photos, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    err = one_line_error(["train-ref", "--data", str(photos), "--out", str(tmp_path / "run"), "--device", "cuda"],
                         code=2)
    assert "Invalid value for --device: device 'cuda' asked for, but this machine has no usable CUDA GPU" in err


def test_a_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True)
    if res.returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        err = one_line_error(["build", "--db", "sample", "--out", str(ro / "b"), "--no-progress"])
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
    assert err.startswith(f"Error: cannot write the build into {ro / 'b'}: the file system is read-only")
    assert err.endswith("choose an output folder you can write to")


def test_debug_shows_the_traceback_and_the_default_does_not(tmp_path):
    one_line_error(["verify", str(tmp_path)])
    res = subprocess.run(CLI + ["--debug", "verify", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "occface.errors.FormatError: no manifest at" in res.stderr
