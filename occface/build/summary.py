"""Summaries and contact sheets of a finished build (``occface inspect``)."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

from ..format.manifest import load_manifest
from ..seeding import rng_for


def summary(out_dir: str) -> dict:
    """Counts by split, mask kind (and bundled-set group) and rejection reason, plus hole-ratio statistics."""
    m = load_manifest(out_dir)
    kinds: dict[str, int] = {}
    groups: dict[str, int] = {}
    detectors: dict[str, int] = {}
    ratios = []
    for e in m["shards"]:
        with h5py.File(os.path.join(out_dir, e["file"]), "r") as f:
            mk = f["meta/mask_kind"].asstr()[...]
            for k in mk:
                kinds[k] = kinds.get(k, 0) + 1
            if "bundled" in set(mk.tolist()):
                for k, p in zip(mk, f["meta/mask_params"].asstr()[...]):
                    if k == "bundled":
                        params = json.loads(p)
                        g = f"{params.get('set')}/{params.get('group')}"
                        groups[g] = groups.get(g, 0) + 1
            for k in f["meta/detector"].asstr()[...]:
                detectors[k] = detectors.get(k, 0) + 1
            ratios.append(f["meta/hole_ratio"][...])
    r = np.concatenate(ratios) if ratios else np.zeros(0)
    pct = np.percentile(r, [10, 50, 90]).round(4).tolist() if r.size else []
    out = {
        "shards": len(m["shards"]),
        "totals": m["totals"],
        "rejections": m["rejections"]["counts"],
        "mask_kinds": dict(sorted(kinds.items())),
        "detectors": dict(sorted(detectors.items())),
        "hole_ratio": {"mean": round(float(r.mean()), 4) if r.size else None, "p10_p50_p90": pct},
        "config": m["config"],
    }
    if groups:
        out["mask_groups"] = dict(sorted(groups.items()))
    return out


def format_summary(s: dict, build_dir: str = "") -> str:
    """:func:`summary` as a readable text table (what ``occface inspect`` prints)."""
    t = s["totals"]
    lines = [f"build {build_dir}".rstrip(), ""]
    rows = [("shards", s["shards"]), ("input records", t["records"]), ("samples", t["samples"]),
            ("rejected", t["rejected"])]
    rows += [(f"  split {k}", v) for k, v in t["splits"].items()]
    width = max(len(k) for k, _ in rows)
    lines += [f"{k:<{width}}  {v:>8}" for k, v in rows]

    def table(title, counts, total):
        if not counts:
            return []
        w = max(len(title), *(len(k) for k in counts))
        out = ["", f"{title:<{w}}  {'n':>8}  {'share':>6}"]
        out += [f"{k:<{w}}  {v:>8}  {100 * v / total if total else 0:5.1f}%" for k, v in counts.items()]
        return out

    lines += table("mask kind", s["mask_kinds"], t["samples"])
    lines += table("bundled set / group", s.get("mask_groups", {}), t["samples"])
    lines += table("detector", s["detectors"], t["samples"])
    lines += table("rejection reason", s["rejections"], t["records"])
    h = s["hole_ratio"]
    if h["mean"] is not None:
        p10, p50, p90 = h["p10_p50_p90"]
        lines += ["", f"hole ratio (fraction of missing HR pixels): mean {h['mean']:.4f}, "
                      f"p10 {p10:.4f}, median {p50:.4f}, p90 {p90:.4f}"]
    return "\n".join(lines)


def _locate(out_dir: str, m: dict) -> list[tuple[str, int]]:
    return [(os.path.join(out_dir, e["file"]), i) for e in m["shards"] for i in range(e["samples"])]


SHEET_COLUMNS = ("clean HR\n128 px", "occluded HR\n(hole filled or\noccluder painted)", "mask\nwhite = missing",
                 "occluded LR 16 px\n(x8 nearest)", "heatmaps (red)\nlandmarks (green)")


def contact_sheet(out_dir: str, png_path: str, n: int = 12, seed: int = 0) -> int:
    """Write a labelled PNG of ``n`` random samples, one per row: clean HR | occluded HR | mask |
    occluded LR (nearest x8) | the first stored heatmap set (max over channels, red) over the
    darkened HR with the 68 landmarks (green).  Each row is labelled with the sample's key,
    split / identity, mask kind and hole ratio; a grey rule separates the samples.

    The samples are chosen with a generator seeded from ``seed``.  Returns how many were drawn.
    """
    from .. import pictures

    m = load_manifest(out_dir)
    where = _locate(out_dir, m)
    if not where:
        raise ValueError("the build holds no samples")
    rng = rng_for(seed, "inspect", "contact-sheet")
    pick = sorted(rng.choice(len(where), size=min(n, len(where)), replace=False).tolist())
    cells, labels = [], []
    hm_name = None
    for k in pick:
        path, i = where[k]
        with h5py.File(path, "r") as f:
            hr, occ, mask, lr = f["hr"][i], f["hr_occluded"][i], f["mask"][i], f["lr"][i]
            S = hr.shape[0]
            hm_name = sorted(f["heatmaps"].keys())[0] if "heatmaps" in f else None
            heat = f["heatmaps"][hm_name][i].max(axis=0) if hm_name else np.zeros((S, S), np.uint8)
            lm = f["landmarks"][i]
            meta = {name: f[f"meta/{name}"].asstr()[i] for name in ("key", "split", "subject", "mask_kind")}
            ratio = float(f["meta/hole_ratio"][i])
        cells.append([hr, occ, mask * 255, pictures.upscale(lr, S), pictures.heat_overlay(hr, heat, lm)])
        labels.append([meta["key"], f"{meta['split']}" + (f" / {meta['subject']}" if meta["subject"] else ""),
                       f"mask: {meta['mask_kind']}", f"hole: {100 * ratio:.1f}% of pixels"])
    columns = list(SHEET_COLUMNS)
    if hm_name:
        columns[4] = f"heatmaps {hm_name}\n(max, red) landmarks\n(green)"
    else:
        columns[4] = "no stored heatmaps\nlandmarks (green)"
    cfg = m["config"]
    title = (f"{os.path.basename(os.path.abspath(out_dir))}: {len(pick)} of {m['totals']['samples']} samples "
             f"(random, seed {seed}) | db {m['source'].get('db', '?')} | build seed {m['seed']} | "
             f"mask {cfg['mask'].get('kind', '?')} | fill {cfg['fill'].get('mode', '?')} | "
             f"degrade {cfg.get('degrade', {}).get('name', 'none')}{' (LR and HR)' if cfg.get('degrade_hr') else ''}")
    footer = ("Pixels: HR and LR images 0-255 RGB; mask 1 = missing drawn white; heatmap = max over "
              "its channels (0-1) as red intensity over the HR darkened to 60%; landmarks = dlib 68 points.")
    sheet = pictures.grid(cells, columns=columns, row_labels=labels, title=title, footer=footer, label_width=190,
                          gap=5)
    pictures.write_png(png_path, sheet)
    return len(pick)
