"""The ``occface`` command as a user meets it: help on every option, list options that name
themselves when wrong, -q/-v everywhere, worker defaults within the cores, readable inspect."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from occface import build as B
from occface.build import BuildConfig
from occface.db import SampleSource
from occface.runtime import available_cores
from occface_cli.main import main as cli


def walk(cmd: click.Command, path=("occface",)):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli))


def test_every_command_and_option_has_help_text():
    missing = []
    for path, cmd in COMMANDS:
        if not (cmd.help or "").strip():
            missing.append(" ".join(path))
        for p in cmd.params:
            if isinstance(p, click.Option) and not (p.help or "").strip():
                missing.append(f"{' '.join(path)} {p.opts[0]}")
    assert not missing, f"no help text: {missing}"
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p[1:]) or "occface")
def test_every_command_takes_quiet_and_verbose(path):
    cmd = dict(COMMANDS)[path]
    opts = {o for p in cmd.params for o in getattr(p, "opts", ())}
    assert {"-q", "--quiet", "-v", "--verbose"} <= opts
    r = CliRunner().invoke(cli, [*path[1:], "--help"])
    assert r.exit_code == 0 and "--quiet" in r.output


@pytest.mark.parametrize("args, option", [
    (["build", "--db", "sample", "--out", "x", "--hog-upsample", "one"], "--hog-upsample"),
    (["bench", "model", "--widths", "8,x"], "--widths"),
    (["bench", "model", "--widths", "8,8"], "--widths"),
    (["train-ref", "--data", ".", "--out", "x", "--steps", "1,2"], "--steps"),
    (["train-ref", "--data", ".", "--out", "x", "--lrs", "1e-4,abc,1"], "--lrs"),
    (["bench", "build", "--root", ".", "--workers", "0,1"], "--workers"),
])
def test_a_bad_list_names_its_option(args, option):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and f"Invalid value for '{option}'" in r.output and "Traceback" not in r.output


def test_worker_defaults_never_exceed_the_cores():
    cores = available_cores()
    for path, cmd in COMMANDS:
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name == "workers" and isinstance(p.default, int):
                assert 0 <= p.default <= cores, f"{' '.join(path)} --workers defaults to {p.default}"
    train = dict(COMMANDS)[("occface", "train-ref")]
    opt = next(p for p in train.params if p.name == "workers")
    assert opt.default is None and "min(4, available cores)" in opt.help
    val = dict(COMMANDS)[("occface", "validate")]
    assert next(p for p in val.params if p.name == "workers").default == 0  # all cores


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cli") / "b")
    B.build(SampleSource(), BuildConfig(), out, workers=1, progress=False, log=lambda s: None)
    return out


def test_inspect_prints_a_table_and_json_on_request(build, tmp_path):
    r = CliRunner().invoke(cli, ["inspect", build, "--png", str(tmp_path / "s.png"), "-n", "3"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert any(ln.split() == ["samples", "94"] for ln in lines)
    assert any(ln.startswith("mask kind") for ln in lines) and any(ln.split()[:2] == ["square", "94"] for ln in lines)
    assert any(ln.startswith("rejection reason") for ln in lines)
    assert "hole ratio (fraction of missing HR pixels)" in r.stdout
    r = CliRunner().invoke(cli, ["inspect", build, "--json", "--no-sheet"])
    assert json.loads(r.stdout)["totals"]["samples"] == 94


def test_quiet_hides_progress_but_not_results(build, tmp_path):
    loud = CliRunner().invoke(cli, ["inspect", build, "--png", str(tmp_path / "a.png")])
    quiet = CliRunner().invoke(cli, ["inspect", build, "--png", str(tmp_path / "b.png"), "-q"])
    assert "contact sheet" in loud.stderr and "contact sheet" not in quiet.stderr
    assert quiet.stdout == loud.stdout


def test_mask_accepts_every_bundled_set_name(tmp_path):
    from occface.data import LoaderConfig
    from occface.masks import BundledSet, PConvMask, from_text

    assert from_text("square128-v1") == BundledSet("square128-v1")
    assert LoaderConfig(remask="pconv").remask == PConvMask()
    assert LoaderConfig(remask="square128-v1").remask == BundledSet("square128-v1")
    with pytest.raises(ValueError, match="unknown mask preset 'nope'"):
        LoaderConfig(remask="nope")
    r = CliRunner().invoke(cli, ["build", "--db", "sample", "--out", str(tmp_path / "x"), "--mask", "nope"])
    assert r.exit_code == 2 and "Invalid value for --mask" in r.output and "square128-v1" in r.output
