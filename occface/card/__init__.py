"""The dataset card of a build (``occface card BUILD``): ``BUILD/card.md`` (with its images in
``BUILD/card_files/``) and ``BUILD/card.html`` (one self-contained page, images embedded).

* :mod:`.facts`: what the card states, from the manifest and the shards' metadata;
* :mod:`.plots`: hole ratios per mask kind, mask-kind shares, detector scores, yaw, expressions;
* :mod:`.sections`: the sections, datasheet headings included (the source database's licence
  and description come from its adapter, ``Source.datasheet``);
* :mod:`.render`: Markdown and HTML.

The same build gives the same card bytes (no dates; matplotlib PNGs without a timestamp).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from ..format.atomic import write_bytes_atomic
from . import facts, plots, render, sections


@dataclass(frozen=True)
class CardConfig:
    """gallery: samples in the labelled gallery (0: none); seed: their random choice;
    command: the build command to print (None: reconstructed from the config)."""

    gallery: int = 12
    seed: int = 0
    command: str | None = None


def blocks(build_dir: str, cfg: CardConfig = CardConfig()) -> tuple[list, dict, dict]:
    """(render blocks, front matter, facts) of the card."""
    from ..build.summary import contact_sheet

    f = facts.gather(build_dir)
    if cfg.command:
        f["command"] = cfg.command
    figs = plots.all_plots(f["arrays"])
    gallery, n = None, 0
    if cfg.gallery and f["manifest"]["totals"]["samples"]:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "gallery.png")
            n = contact_sheet(build_dir, path, n=cfg.gallery, seed=cfg.seed)
            with open(path, "rb") as fh:
                gallery = fh.read()
    out = [("h1", f"Dataset card: {f['name']}")]
    out += sections.built(f) + sections.counts(f) + sections.rejections(f)
    out += sections.figures(figs, gallery, n) + sections.datasheet(f)
    return out, sections.front_matter(f), f


def write_card(build_dir: str, cfg: CardConfig = CardConfig(), log=print) -> dict:
    """Write ``card.md``, ``card_files/*.png`` and ``card.html`` into ``build_dir``; returns their paths."""
    b, front, f = blocks(build_dir, cfg)
    img_dir = os.path.join(build_dir, "card_files")
    os.makedirs(img_dir, exist_ok=True)
    for blk in b:
        if blk[0] == "img":
            write_bytes_atomic(os.path.join(img_dir, blk[1]), blk[3])
    md_path, html_path = os.path.join(build_dir, "card.md"), os.path.join(build_dir, "card.html")
    write_bytes_atomic(md_path, render.to_markdown(b, front).encode("utf-8"))
    write_bytes_atomic(html_path, render.to_html(b, f"Dataset card: {f['name']}").encode("utf-8"))
    n_img = sum(1 for blk in b if blk[0] == "img")
    log(f"card: {len(b)} blocks, {n_img} images -> {md_path}, {html_path}")
    return {"markdown": md_path, "html": html_path, "images": img_dir}


__all__ = ["CardConfig", "write_card", "blocks"]
