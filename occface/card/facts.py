"""What a dataset card states about a build, gathered from its manifest and shards (no pixels)."""

from __future__ import annotations

import os
import shlex

import numpy as np

from ..format import shards as shards_fmt
from ..format.manifest import load_manifest, manifest_sha256
from ..masks import specs as mask_specs

#: Per-sample fields read for the plots (when the shards have them).
FIELDS = ("split", "subject", "mask_kind", "mask_params", "hole_ratio", "detector", "det_score", "yaw", "expression",
          "camera")


def gather(build_dir: str) -> dict:
    """Manifest, per-sample arrays (:data:`FIELDS`), counts per split and identity, rejection examples."""
    m = load_manifest(build_dir)
    cols: dict[str, list] = {k: [] for k in FIELDS}
    for e in sorted(m["shards"], key=lambda e: e["index"]):
        if not e["samples"]:
            continue
        meta = shards_fmt.read_meta(os.path.join(build_dir, e["file"]))
        for k in FIELDS:
            if k in meta:
                cols[k].append(meta[k])
    arrays = {k: np.concatenate(v) for k, v in cols.items() if v}
    splits = {}
    for s in sorted(m["totals"]["splits"]):
        sel = arrays["split"] == s if "split" in arrays else np.zeros(0, bool)
        subj = arrays["subject"][sel] if "subject" in arrays else np.zeros(0, object)
        known = sorted({x for x in subj.tolist() if x})
        splits[s] = {"samples": int(sel.sum()), "identities": len(known) if known else None,
                     "unlabelled": int(sum(1 for x in subj.tolist() if not x))}
    examples: dict[str, list[str]] = {}
    for r in m["rejections"]["log"]:
        ex = examples.setdefault(r["reason"], [])
        if len(ex) < 3:
            ex.append(r["path"] + (f" ({r['detail']})" if r.get("detail") else ""))
    return {
        "name": os.path.basename(os.path.abspath(build_dir)),
        "manifest": m,
        "manifest_sha256": manifest_sha256(build_dir),
        "arrays": arrays,
        "splits": splits,
        "rejection_examples": examples,
        "command": build_command(m),
    }


def mask_name(mask: dict) -> str:
    """The preset name of a mask spec dict when there is one, else its JSON."""
    import json

    spec = mask_specs.spec_from_dict(mask)
    for name, preset in mask_specs.PRESETS.items():
        if preset == spec:
            return name
    if isinstance(spec, mask_specs.BundledSet) and not spec.groups:
        return spec.name
    return json.dumps(mask, sort_keys=True)


def build_command(m: dict) -> str:
    """An ``occface build`` command that makes this build again (from the resolved config; the
    output folder is written ``BUILD``)."""
    cfg, src = m["config"], m["source"]
    db = src.get("db", "folder")
    args = ["occface", "build", "--db", db]
    if db != "sample":
        args += ["--root", str(src.get("root", "ROOT"))]
    args += ["--out", "BUILD", "--seed", str(cfg["seed"]), "--mask", mask_name(cfg["mask"]),
             "--fill", cfg["fill"]["mode"], "--heatmaps", ",".join(cfg["heatmaps"]) or "''",
             "--sigma", f"{cfg['heatmap_sigma']:g}", "--resize-rule", cfg["resize_rule"],
             "--shard-size", str(cfg["shard_size"]), "--detector", cfg["detect"]["detector"],
             "--hog-upsample", ",".join(str(u) for u in cfg["detect"]["hog_upsample"]),
             "--multi-face", cfg["detect"]["multi_face"], "--margin", f"{cfg['align']['margin']:g}"]
    if cfg["detect"].get("min_face_px"):
        args += ["--min-face", str(cfg["detect"]["min_face_px"])]
    if src.get("identity_from_parent"):
        args.append("--identity-from-parent")
    if "test_fraction" in src and db in ("folder", "sample"):
        args += ["--test-fraction", f"{src['test_fraction']:g}"]
    return " ".join(shlex.quote(a) for a in args)
