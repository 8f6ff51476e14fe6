"""The installed package holds every package of the source tree."""

from __future__ import annotations

import configparser
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _listed() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    return {p.strip() for p in cfg["options"]["packages"].split("\n") if p.strip()}


def test_setup_cfg_lists_every_library_package():
    found = set()
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "occface")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        if "__init__.py" in filenames:
            found.add(os.path.relpath(dirpath, ROOT).replace(os.sep, "."))
    listed = _listed()
    assert found, "no packages found under occface/"
    assert found - listed == set(), f"packages missing from setup.cfg: {sorted(found - listed)}"
    assert {p for p in listed if p.startswith("occface.") or p == "occface"} - found == set()


def test_no_folder_under_occface_lacks_an_init():
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "occface")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and not d.startswith(".")]
        if any(f.endswith(".py") for f in filenames):
            assert "__init__.py" in filenames, f"{dirpath} holds modules but no __init__.py"


def test_bundled_weights_are_package_data():
    """Every file in occface/model/weights matches a package_data pattern of occface.model, so
    a non-editable install ships the reference weights and their cards."""
    import fnmatch

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    patterns = [p.strip() for p in cfg["options.package_data"]["occface.model"].split(",") if p.strip()]
    folder = os.path.join(ROOT, "occface", "model", "weights")
    files = sorted(os.listdir(folder))
    assert any(f.endswith(".pt") for f in files) and any(f.endswith(".json") for f in files)
    for f in files:
        assert any(fnmatch.fnmatch(f"weights/{f}", p) for p in patterns), f


def test_ci_runs_the_readme_test_command_verbatim():
    import re

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    block = re.search(r"Run the tests:\n\n```bash\n(.*?)\n```", readme, re.S).group(1).strip()
    assert "pytest" in block and "apt-get install -y chromium" in block
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert block in ci.splitlines()
