"""The card's content, section by section, as render blocks (:mod:`.render`).

Order: what was built (command, seed, versions, protocol, config), counts per split and
identity, rejections with example paths, plots, the labelled gallery, then the datasheet
headings of "Datasheets for Datasets" (Gebru et al.): motivation, composition, collection
process, preprocessing / cleaning / labelling, uses, distribution and licence, maintenance.
"""

from __future__ import annotations

import json

from ..db.options import SOURCES


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "—"


def built(f: dict) -> list:
    m = f["manifest"]
    cfg, src = m["config"], m["source"]
    proto = src.get("protocol", {})
    blocks = [("h2", "What was built"),
              ("p", f"An occface build of the `{src.get('db')}` database: {m['totals']['samples']} aligned "
                    f"{cfg['align']['size']}x{cfg['align']['size']} faces with occluded {cfg['lr_size']}x"
                    f"{cfg['lr_size']} inputs, in {len(m['shards'])} HDF5 shard(s). Manifest SHA-256 "
                    f"`{f['manifest_sha256']}`."),
              ("h3", "Command"),
              ("pre", f["command"]),
              ("p", "The command is reconstructed from the build's resolved config; `occface verify BUILD` "
                    "re-hashes every shard against the manifest.")]
    rows = [("seed", m["seed"]), ("protocol", f"{proto.get('name', '—')} v{proto.get('version', '—')}"),
            ("mask", json.dumps(cfg["mask"], sort_keys=True)), ("fill", cfg["fill"]["mode"]),
            ("heatmaps stored", ", ".join(cfg["heatmaps"]) or "none"),
            ("heatmap sigma (heatmap px)", cfg["heatmap_sigma"]), ("resize rule", cfg["resize_rule"]),
            ("detector", cfg["detect"]["detector"]), ("alignment template", cfg["align"]["template"])]
    rows += [(f"version: {k}", v) for k, v in sorted(m["versions"].items())]
    blocks += [("h3", "Settings and versions"), ("table", ["setting", "value"], [list(r) for r in rows]),
               ("h3", "Resolved config"), ("pre", json.dumps(cfg, indent=1, sort_keys=True)),
               ("h3", "Database description"), ("pre", json.dumps(src, indent=1, sort_keys=True))]
    return blocks


def counts(f: dict) -> list:
    t = f["manifest"]["totals"]
    rows = []
    for s, c in f["splits"].items():
        ids = c["identities"]
        rows.append([s, c["samples"], _pct(c["samples"], t["samples"]),
                     ids if ids is not None else "unknown (each photo its own)"])
    rows.append(["all", t["samples"], "100.0%", sum(c["identities"] or 0 for c in f["splits"].values()) or "unknown"])
    return [("h2", "Counts"),
            ("p", f"{t['records']} input records gave {t['samples']} samples; {t['rejected']} records were "
                  "rejected (below). Splits are identity-disjoint whenever identities are known."),
            ("table", ["split", "samples", "share", "identities"], rows)]


def rejections(f: dict) -> list:
    m = f["manifest"]
    rc = m["rejections"]["counts"]
    if not rc:
        return [("h2", "Rejections"), ("p", "No input record was rejected.")]
    rows = [[reason, n, _pct(n, m["totals"]["records"]), "; ".join(f["rejection_examples"].get(reason, []))]
            for reason, n in sorted(rc.items(), key=lambda kv: -kv[1])]
    return [("h2", "Rejections"),
            ("p", "Every input record that gave no sample, by reason (share of all input records), with up to "
                  "three example paths; the full list is the manifest's rejection log."),
            ("table", ["reason", "records", "share", "examples"], rows)]


def figures(plots: list, gallery: bytes | None, n_gallery: int) -> list:
    blocks = [("h2", "Plots")]
    blocks += [("img", name, caption, png) for name, caption, png in plots]
    if gallery is not None:
        blocks += [("h2", "Gallery"),
                   ("p", f"{n_gallery} random samples, one per row: clean HR, occluded HR, mask (white = missing), "
                         "occluded LR enlarged x8, heatmaps (red) and landmarks (green)."),
                   ("img", "gallery.png", "Labelled sample gallery", gallery)]
    return blocks


def datasheet(f: dict) -> list:
    m = f["manifest"]
    db = m["source"].get("db")
    sheet = getattr(SOURCES.get(db), "datasheet", None)
    cfg = m["config"]
    unknown = "Not recorded for this database."
    kinds = ", ".join(sorted(set(f["arrays"]["mask_kind"].tolist()))) if "mask_kind" in f["arrays"] else "—"
    return [
        ("h2", "Datasheet"),
        ("p", "Headings after \"Datasheets for Datasets\" (Gebru et al.). The source database's facts come from "
              "its adapter; the rest from this build."),
        ("h3", "Motivation"),
        ("p", "Paired occluded low-resolution / clean high-resolution faces for face hallucination and "
              "restoration research, reproducible from the config and seed above. "
              + (f"Source database: {sheet.motivation}" if sheet else unknown)),
        ("h3", "Composition"),
        ("p", (sheet.composition if sheet else unknown)
              + f" Each sample: clean HR face, mask (1 = missing; kinds: {kinds}), occluded HR, occluded and clean "
                f"LR, 68 dlib landmarks, heatmaps {', '.join(cfg['heatmaps']) or 'none'}, and per-sample metadata "
                "(key, source path, identity, split, detector, alignment, mask parameters)."),
        ("h3", "Collection process"),
        ("p", sheet.collection if sheet else unknown),
        ("h3", "Preprocessing, cleaning and labelling"),
        ("p", f"dlib {cfg['detect']['detector']} face detection, 68-point landmarks, similarity alignment to the "
              f"template `{cfg['align']['template']}` (margin {cfg['align']['margin']:g}), "
              f"{cfg['align']['size']} px crop, mask drawn per sample from (seed, sample key), fill "
              f"`{cfg['fill']['mode']}`, {cfg['resize_rule']} downsampling to {cfg['lr_size']} px. Photos "
              "without a usable face are rejected with a reason (above); nothing is dropped silently. "
              "Landmarks are the detector's, not hand annotations."),
        ("h3", "Uses"),
        ("p", sheet.uses if sheet else unknown),
        ("h3", "Distribution and licence"),
        ("p", (f"{sheet.title}. Licence of the source database: {sheet.licence} Cite: {sheet.citation}"
               if sheet else unknown)
              + " The build holds face crops of the source photos, so the source's terms apply to it."),
        ("h3", "Maintenance"),
        ("p", "Rebuild with the command above to regenerate identical shards (same occface, dlib and OpenCV "
              "versions); the manifest's hashes identify this exact build."),
    ]


def front_matter(f: dict) -> dict:
    """Hugging Face dataset-card metadata (YAML front matter of card.md)."""
    m = f["manifest"]
    n = m["totals"]["samples"]
    size = ("n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000
            else "100K<n<1M" if n < 1_000_000 else "n>1M")
    return {"pretty_name": f"occface build {f['name']} ({m['source'].get('db')})", "license": "other",
            "task_categories": ["image-to-image"], "size_categories": [size],
            "tags": ["face-hallucination", "face-inpainting", "occlusion", "super-resolution"]}
