"""The validation report: breakdown labels, the summary tables, Markdown, the image grid."""

from __future__ import annotations

import numpy as np

from .. import masks as masks_mod
from .baselines import BASELINES
from .downstream import IDENTITY_THRESHOLD

MODEL = "model"
#: The paper's square sizes m1..m5 (px at 128).
SQUARE_SIDES = (16, 24, 32, 48, 64)


def square_side_bin(params: dict) -> str | None:
    """'m3 (32)' for a square mask whose side is nearest 32 px; None for other masks."""
    if params.get("kind") != "square" or "side" not in params:
        return None
    side = int(params["side"])
    k = int(np.argmin([abs(side - s) for s in SQUARE_SIDES]))
    return f"m{k + 1} ({SQUARE_SIDES[k]})"


def hole_bucket_label(mask: np.ndarray) -> str:
    edges = masks_mod.BUCKET_EDGES
    b = masks_mod.bucket_of(mask)
    if b == 0:
        return f"b0 (<={edges[0]}%)"
    if b > len(edges) - 1:
        return f"b{b} (>{edges[-1]}%)"
    return f"b{b} ({edges[b - 1]}-{edges[b]}%)"


def yaw_label(yaw: float | None) -> str | None:
    if yaw is None:
        return None
    if not np.isfinite(yaw):
        return "elevated (n/a)"
    return f"{int(round(yaw)):+d}"


def conventions(cfg: ValidateConfig) -> dict:
    return {
        "psnr": "10*log10(255^2/MSE) on uint8 outputs, " + ("BT.601 Y channel" if cfg.y_channel else "RGB")
                + (f", {cfg.crop}-px border crop" if cfg.crop else ", no border crop")
                + ", mean of per-image values",
        "ssim": "Wang et al. 2004: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range 255, "
                "valid region, per-channel mean (= skimage gaussian_weights=True, "
                "use_sample_covariance=False)",
        "nrmse": "dlib 68-point predictor in the detector's face box mapped to the 128 frame; mean "
                 "point error / inter-ocular distance (outer eye corners 36, 45) x 100",
        "identity": "Euclidean distance of dlib ResNet face descriptors, output vs ground truth; "
                    f"same identity below {IDENTITY_THRESHOLD}",
        "baselines": f"bicubic = OpenCV INTER_CUBIC x8; Telea = cv2.INPAINT_TELEA, radius "
                     f"{cfg.telea_radius_lr:g} px at LR / {cfg.telea_radius_hr:g} px at HR, LR holes = "
                     f"pixels with > {cfg.lr_hole_threshold:g} of their resampling weight on the mask, "
                     "HR holes = their 8x8 cells",
        "blocks": "each UI-block's uint8 output, blocks 1-2 upsampled to 128 with OpenCV INTER_CUBIC, "
                  "scored like the main table",
        "prior_nme": "landmarks = argmax of each predicted heatmap, mapped to the 128 frame "
                     "((u + 0.5) * 128 / S - 0.5), vs the build's landmarks; mean point error / "
                     "inter-ocular distance (outer eye corners 36, 45) x 100; baseline = the mean "
                     "landmarks of the build's train split taken as every face's prediction; "
                     "nme_subpixel: the argmax moved a quarter cell toward its larger neighbour on "
                     "each axis (FAN / HRNet's read-out)",
    }


def _mean(values) -> float | None:
    a = np.asarray([v for v in values if v is not None], np.float64)
    return float(a.mean()) if a.size else None


def summarise(per, groups, methods, cfg) -> dict:
    n = len(per["psnr"][methods[0]])
    overall = {}
    for m in methods:
        row = {"n": n, "psnr": _mean(per["psnr"][m]), "ssim": _mean(per["ssim"][m])}
        if per["nrmse"][m]:
            row["nrmse"] = _mean(per["nrmse"][m])
        if per["identity"][m]:
            d = np.asarray(per["identity"][m])
            row["identity_distance"] = float(d.mean())
            row["same_identity_rate"] = float((d < IDENTITY_THRESHOLD).mean())
        overall[m] = row
    reference = None
    if per["nrmse"]["ground truth"]:
        reference = {"n": n, "nrmse": _mean(per["nrmse"]["ground truth"])}
    breakdowns = {}
    for gname, labels in groups.items():
        table = {}
        for label in sorted({x for x in labels if x is not None}):
            sel = [i for i, x in enumerate(labels) if x == label]
            table[label] = {m: {"n": len(sel),
                                "psnr": _mean([per["psnr"][m][i] for i in sel]),
                                "ssim": _mean([per["ssim"][m][i] for i in sel])}
                            for m in methods}
            if per["nrmse"][methods[-1]]:
                for m in methods:
                    table[label][m]["nrmse"] = _mean([per["nrmse"][m][i] for i in sel])
        if table:
            breakdowns[gname] = table
    return {"format": "occface-validation-report", "methods": methods, "overall": overall,
            "ground_truth_reference": reference, "breakdowns": breakdowns,
            "per_image": {k: {m: v for m, v in d.items()} for k, d in per.items() if d}}


def _fmt(v, digits) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and np.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def markdown(report: dict) -> str:
    """The report as Markdown: conventions, the main table, breakdowns, speed."""
    d, ck = report["data"], report["checkpoint"]
    lines = ["# Validation report", ""]
    lines.append(f"- data: `{d['path']}`, split `{d['split']}`, {d['images']} images, "
                 f"manifest sha256 `{d['manifest_sha256'][:16]}…`")
    if ck:
        lines.append(f"- checkpoint: `{ck['path']}` (step {ck['step']}, stage {ck['stage']})")
    for k, v in report["conventions"].items():
        lines.append(f"- {k}: {v}")
    for w in report.get("warnings") or []:
        lines.append(f"- **warning**: {w}")
    lines += ["", table_markdown(report), ""]
    if report.get("blocks"):
        lines += [blocks_markdown(report), ""]
    label = {MODEL: "model"}
    for gname, table in report["breakdowns"].items():
        methods = report["methods"]
        lines += [f"## By {gname} (PSNR dB / SSIM)", "",
                  f"| {gname} | n | " + " | ".join(label.get(m, m) for m in methods) + " |",
                  "| --- | ---: | " + " | ".join("---:" for _ in methods) + " |"]
        for lab, row in table.items():
            cells = [f"{_fmt(row[m]['psnr'], 2)} / {_fmt(row[m]['ssim'], 3)}" for m in methods]
            lines.append(f"| {lab} | {row[methods[0]]['n']} | " + " | ".join(cells) + " |")
        lines.append("")
    if report.get("speed"):
        s = report["speed"]
        lines.append(f"Model inference: {s['model_images_per_s']:.1f} images/s at batch "
                     f"{s['batch_size']} on {s['device']} (amp {s['amp']}).")
        lines.append("")
    return "\n".join(lines)


def blocks_markdown(report: dict) -> str:
    """The model's per-block table: each block's image (bicubic to 128) and the NME x100 of
    the landmarks decoded from its heatmaps, with the learned estimator and the mean shape."""
    prior = report.get("prior") or {}
    nme = {r["block"]: r["nme"] for r in prior.get("blocks", [])}
    sub = {r["block"]: r.get("nme_subpixel") for r in prior.get("blocks", [])}
    rows = ["## By UI-block (image bicubic-upsampled to 128; landmarks decoded from the block's heatmaps)", "",
            "| block | output | PSNR (dB) | SSIM | landmark NME x100 (argmax) | (quarter-cell read-out) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in report["blocks"]:
        rows.append(f"| block {r['block']} | {r['side']} px | {_fmt(r['psnr'], 2)} | {_fmt(r['ssim'], 3)} | "
                    f"{_fmt(nme.get(r['block']), 2)} | {_fmt(sub.get(r['block']), 2)} |")
    if prior.get("estimator"):
        rows.append(f"| learned prior (16x16 input) | — | — | — | {_fmt(prior['estimator']['nme'], 2)} | — |")
    rows.append(f"| mean {prior.get('mean_shape_from', 'train')} shape (baseline) | — | — | — | "
                f"{_fmt(prior.get('mean_shape_nme'), 2)} | — |")
    return "\n".join(rows)


def table_markdown(report: dict) -> str:
    """The main table: one row per method (+ the ground-truth reference row)."""
    o = report["overall"]
    has_nrmse = any("nrmse" in r for r in o.values())
    has_id = any("identity_distance" in r for r in o.values())
    head = "| method | PSNR (dB) | SSIM |" + (" NRMSE x100 |" if has_nrmse else "") + (
        " identity dist | same id (<0.6) |" if has_id else "")
    sep = "| --- | ---: | ---: |" + (" ---: |" if has_nrmse else "") + (" ---: | ---: |" if has_id else "")
    rows = [head, sep]
    ck = report.get("checkpoint")
    for m in report["methods"]:
        r = o[m]
        name = f"Pro-UIGAN (step {ck['step']})" if m == MODEL and ck else m
        cells = [_fmt(r["psnr"], 2), _fmt(r["ssim"], 3)]
        if has_nrmse:
            cells.append(_fmt(r.get("nrmse"), 2))
        if has_id:
            cells += [_fmt(r.get("identity_distance"), 3), _fmt(r.get("same_identity_rate"), 2)]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    ref = report.get("ground_truth_reference")
    if ref:
        cells = ["—", "—", _fmt(ref["nrmse"], 2)] + (["0", "1.00"] if has_id else [])
        rows.append("| ground-truth HR (reference) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_grid(path: str, rows: list[list[np.ndarray]], columns: list[str], size: int = 128,
               captions: list[list[str]] | None = None, info: list[tuple[str, str, float]] | None = None,
               title: str | None = None) -> None:
    """Labelled PNG grid: one row per sample (labelled with its key, mask kind and hole ratio),
    one column per image (each resized to ``size`` with nearest neighbour, headed by its name),
    a caption under each scored image (its PSNR)."""
    from .. import pictures

    if not rows:
        return
    cells = [[pictures.upscale(img, size) for img in row] for row in rows]
    labels = None
    if info is not None:
        labels = [[key, f"mask: {kind}", f"hole: {100 * ratio:.1f}%"] for key, kind, ratio in info]
    footer = ("Captions: PSNR of that image against the ground truth (dB, RGB 0-255, as in report.md). "
              "Small images are enlarged with nearest neighbour so their pixels stay visible.")
    pictures.write_png(path, pictures.grid(cells, columns=columns, row_labels=labels, captions=captions,
                                           title=title, footer=footer, gap=4, label_width=190))
