"""``occface card``: the Markdown card, and the HTML page rendered by a real headless browser
(Debian's chromium) in which every image must load."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from occface import build as B
from occface import masks
from occface.build import BuildConfig
from occface.card import CardConfig, write_card
from occface.db import SampleSource
from occface_cli.main import main as cli

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
HEADINGS = ["What was built", "Counts", "Rejections", "Plots", "Gallery", "Datasheet"]
DATASHEET = ["Motivation", "Composition", "Collection process", "Preprocessing, cleaning and labelling", "Uses",
             "Distribution and licence", "Maintenance"]


def chromium() -> str:
    """The browser binary; CI installs it (.ci/run), elsewhere the test is skipped without one."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
    pytest.skip("no chromium on this machine (apt-get install chromium)")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The sample database with masks from the bundled square128-v1 set (its groups are plotted)."""
    out = str(tmp_path_factory.mktemp("card") / "sample")
    B.build(SampleSource(), BuildConfig(mask=masks.BundledSet("square128-v1"), shard_size=50), out, workers=1,
            progress=False, log=lambda s: None)
    return out


def test_markdown_card_has_every_section_and_the_source_licence(build):
    from occface.build.summary import summary

    groups = summary(build)["mask_groups"]  # what inspect lists: the bundled set's groups
    assert groups and all(g.startswith("square128-v1/") for g in groups)
    paths = write_card(build, CardConfig(gallery=4), log=lambda s: None)
    md = open(paths["markdown"]).read()
    assert md.startswith("---\npretty_name: occface build sample (sample)\nlicense: other\n")
    for h in HEADINGS:
        assert f"\n## {h}\n" in md
    for h in DATASHEET:
        assert f"\n### {h}\n" in md
    assert "occface build --db sample --out BUILD --seed 0 --mask square128-v1" in md
    assert "| no_face |" in md and "lfw_subset.npy[" in md  # rejection table with example paths
    assert "public domain" in md  # the adapter's licence of the source photos
    images = re.findall(r"!\[[^\]]*\]\((card_files/[^)]+)\)", md)
    assert {"card_files/hole_ratio.png", "card_files/mask_kinds.png", "card_files/detector_scores.png",
            "card_files/gallery.png"} <= set(images)
    for rel in images:
        assert open(os.path.join(build, rel), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # the same build gives the same card bytes
    again = {k: open(v, "rb").read() for k, v in paths.items() if k != "images"}
    write_card(build, CardConfig(gallery=4), log=lambda s: None)
    assert again == {k: open(v, "rb").read() for k, v in paths.items() if k != "images"}


CHECK = """<script>
window.addEventListener("load", () => {
  const pre = document.createElement("pre");
  pre.id = "occface-check";
  pre.textContent = JSON.stringify({
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
    h2: [...document.querySelectorAll("h2")].map(h => h.textContent),
    h3: [...document.querySelectorAll("h3")].map(h => h.textContent),
    external: [...document.querySelectorAll("[src],[href]")].filter(e => !(e.getAttribute("src") || "").startsWith("data:")).length,
  });
  document.body.appendChild(pre);
});
</script>"""


def test_html_card_renders_in_chromium_and_every_image_loads(build, tmp_path):
    browser = chromium()
    r = CliRunner().invoke(cli, ["card", build, "--gallery", "6"])
    assert r.exit_code == 0, r.output
    page = open(os.path.join(build, "card.html"), encoding="utf-8").read()
    n_img = page.count("<img ")
    assert n_img >= 4 and "<script" not in page  # self-contained: data URIs, no script
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    res = subprocess.run([browser, *CHROMIUM_FLAGS, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="occface-check">(.*?)</pre>', res.stdout, re.S)
    assert m, f"the page did not render: {res.stderr[-2000:]}"
    got = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(got["images"]) == n_img
    assert all(complete and w > 0 and h > 0 for complete, w, h in got["images"]), got["images"]
    assert got["h2"] == HEADINGS and set(DATASHEET) <= set(got["h3"])
    assert got["external"] == 0
    shot = tmp_path / "card.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, "--hide-scrollbars", "--window-size=1100,1400",
                    f"--screenshot={shot}", (tmp_path / "probe.html").as_uri()],
                   capture_output=True, timeout=120, cwd=tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
