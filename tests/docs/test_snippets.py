"""Docs that run: every fenced ``python`` block of README.md and docs/*.md runs as written.

Each block runs in a fresh namespace (one interpreter runs them all in turn, so torch is
imported once) whose working directory holds ``builds/sample``, the sample database built
with the defaults (what the README's quick start builds), so snippets name that path.  A snippet that wants a GPU picks ``"cuda" if torch.cuda.is_available() else
"cpu"``.  Blocks fenced as ``text``, ``bash`` or left bare are not Python and are not run.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FENCE = re.compile(r"^```(?:python|py)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def snippets() -> list[tuple[str, int, str]]:
    out = []
    for path in ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]:
        with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
            text = fh.read()
        for m in FENCE.finditer(text):
            out.append((path, text[: m.start()].count("\n") + 1, m.group(1)))
    return out


SNIPPETS = snippets()


def test_the_docs_hold_snippets():
    assert len(SNIPPETS) >= 7 and {p for p, _, _ in SNIPPETS} >= {"README.md", "docs/data.md"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    from occface import build as B
    from occface.build import BuildConfig
    from occface.db import SampleSource

    work = tmp_path_factory.mktemp("docs")
    B.build(SampleSource(), BuildConfig(), str(work / "builds" / "sample"), workers=1, progress=False,
            log=lambda s: None)
    return work


RUNNER = """
import json, sys, traceback
snippets = json.load(sys.stdin)
out = []
for path, line, code in snippets:
    try:
        exec(compile(code, f"{path}:{line}", "exec"), {"__name__": "__main__"})
        out.append(None)
    except BaseException:
        out.append(traceback.format_exc())
print("RESULTS" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def results(workdir):
    import json

    res = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(SNIPPETS), cwd=workdir,
                         capture_output=True, text=True, timeout=900)
    assert "RESULTS" in res.stdout, res.stderr[-3000:]
    return dict(zip([(p, n) for p, n, _ in SNIPPETS], json.loads(res.stdout.split("RESULTS", 1)[1])))


@pytest.mark.parametrize("path, line, code", SNIPPETS, ids=[f"{p}:{n}" for p, n, _ in SNIPPETS])
def test_snippet_runs(path, line, code, results):
    err = results[(path, line)]
    assert err is None, f"{path}:{line} failed:\n{code}\n--- traceback ---\n{err[-3000:]}"
