"""``occface validate``: the paper's tables for a checkpoint and three baselines, in one run.

For every image of a split this scores, against the clean 128x128 HR ground truth:

* ``bicubic``: the occluded 16x16 LR upsampled x8 with bicubic interpolation
  (OpenCV ``INTER_CUBIC``);
* ``telea-lr+bicubic``: OpenCV Telea inpainting of the LR (PA then SR), then bicubic;
* ``bicubic+telea-hr``: bicubic, then Telea inpainting at HR (SR then PA);
* the model (if a checkpoint is given): block 3's output.

Outputs are quantised to uint8 (what a saved PNG holds) before scoring.  Conventions
(docs/training.md, ../shared/reference/metrics.md):

* PSNR and SSIM (:mod:`occface.metrics`) on [0, 255] RGB by default; the BT.601 Y channel
  and a border crop are options; the mean of per-image values.
* Holes for the classical inpainting: an LR pixel is inpainted when more than
  ``lr_hole_threshold`` (default 0: any) of its resampling weight (the build's
  ``resize_rule``) falls on missing HR pixels, i.e. when the hole's fill leaked into it.
  At HR the inpainted region is those LR pixels' 8x8 cells (it contains the HR mask and
  the blur around it).
* Landmark NRMSE: dlib's 68-point shape predictor run on each output inside the face box
  dlib's detector found on the source photo, mapped into the 128 frame with the stored
  alignment (``meta/det_box``, ``meta/align_matrix``; the landmarks' bounding box when a
  shard lacks them).  Error = mean point-to-point distance to the ground-truth landmarks
  over the 68 points, divided by the ground-truth inter-ocular distance (outer eye
  corners 36, 45), x100.  The ground-truth HR itself is scored the same way: the
  reference row (the paper's "ground-truth HR" NRMSE).
* Identity: Euclidean distance between dlib's ResNet face descriptors of the output and
  of the ground truth (each computed with the shape the predictor found on that image);
  dlib's same-person threshold is 0.6.

Breakdowns: mask kind, square side (the paper's m1..m5 = 16, 24, 32, 48, 64 px, each
side binned to the nearest), PConv hole-ratio bucket (``occface.masks.bucket_of``) and,
when the shards have ``meta/yaw`` (Multi-PIE), yaw.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import masks as masks_mod
from . import resize as resize_mod
from .config import to_dict

BASELINES = ("bicubic", "telea-lr+bicubic", "bicubic+telea-hr")
MODEL = "model"
#: The paper's square sizes m1..m5 (px at 128).
SQUARE_SIDES = (16, 24, 32, 48, 64)
IDENTITY_THRESHOLD = 0.6
EYE_CORNERS = (36, 45)
AMP_MODES = ("none", "bf16")


@dataclass(frozen=True)
class ValidateConfig:
    """What ``validate`` measures and how.  ``limit``: score only the first N images."""

    split: str = "test"
    y_channel: bool = False
    crop: int = 0
    batch_size: int = 64
    device: str = "cpu"
    amp: str = "none"
    channels_last: bool = False
    downstream: bool = True    # landmark NRMSE (dlib shape predictor)
    identity: bool = True      # dlib face descriptor distance (needs downstream)
    workers: int = 1           # processes for the dlib metrics
    telea_radius_lr: float = 1.0
    telea_radius_hr: float = 3.0
    lr_hole_threshold: float = 0.0
    grid_size: int = 8
    limit: int | None = None

    def __post_init__(self):
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}")
        if self.crop < 0 or self.batch_size < 1 or self.workers < 1:
            raise ValueError("crop >= 0, batch_size >= 1 and workers >= 1 please")
        if not 0.0 <= self.lr_hole_threshold < 1.0:
            raise ValueError("lr_hole_threshold must be in [0, 1)")


# ----------------------------------------------------------------------------- baselines

def lr_hole_mask(mask: np.ndarray, lr_size: int = 16, rule: str = "bilinear-aa",
                 threshold: float = 0.0) -> np.ndarray:
    """(B, H, H) HR masks (1 = missing) -> (B, L, L) uint8 LR masks: 1 where more than
    ``threshold`` of the LR pixel's resampling weight lies on missing pixels."""
    m = np.asarray(mask, np.float64)
    w = resize_mod.weights(m.shape[-1], lr_size, rule)
    frac = w @ m @ w.T
    return (frac > threshold + 1e-12).astype(np.uint8)


def bicubic(lr: np.ndarray, size: int = 128) -> np.ndarray:
    """(B, L, L, 3) uint8 -> (B, size, size, 3) uint8, OpenCV INTER_CUBIC."""
    import cv2

    return np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_CUBIC) for x in lr])


def telea(images: np.ndarray, holes: np.ndarray, radius: float) -> np.ndarray:
    """OpenCV Telea inpainting of each (H, W, 3) uint8 image where ``holes`` is 1."""
    import cv2

    return np.stack([cv2.inpaint(np.ascontiguousarray(x), np.ascontiguousarray(h), radius,
                                 cv2.INPAINT_TELEA) if h.any() else x.copy()
                     for x, h in zip(images, holes)])


def baselines(lr: np.ndarray, mask: np.ndarray, *, rule: str = "bilinear-aa",
              threshold: float = 0.0, radius_lr: float = 1.0, radius_hr: float = 3.0,
              size: int = 128) -> dict[str, np.ndarray]:
    """The three training-free baselines for (B, L, L, 3) occluded LR and (B, H, H) masks."""
    lr_holes = lr_hole_mask(mask, lr.shape[1], rule, threshold)
    f = size // lr.shape[1]
    hr_holes = lr_holes.repeat(f, axis=1).repeat(f, axis=2)
    up = bicubic(lr, size)
    return {"bicubic": up,
            "telea-lr+bicubic": bicubic(telea(lr, lr_holes, radius_lr), size),
            "bicubic+telea-hr": telea(up, hr_holes, radius_hr)}


# ----------------------------------------------------------------------------- model

def run_generator(g, lr: np.ndarray, *, device="cpu", amp: str = "none",
                  channels_last: bool = False, heatmaps=None, blocks: int = 3,
                  ) -> list[np.ndarray]:
    """(B, 16, 16, 3) uint8 occluded LR -> each block's output as (B, s, s, 3) uint8.
    ``heatmaps``: block-1 ground truth (B, L1, 16, 16) uint8/float, for
    ``landmark_input="gt"`` models."""
    import torch

    from .data import to_float

    dev = torch.device(device)
    batch = {"lr": torch.from_numpy(np.ascontiguousarray(lr.transpose(0, 3, 1, 2))).to(dev)}
    if heatmaps is not None:
        batch["heatmaps"] = {"h": torch.as_tensor(heatmaps).to(dev)}
    batch = to_float(batch, "[-1,1]")
    x = batch["lr"]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    hm = batch["heatmaps"]["h"] if heatmaps is not None else None
    ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if amp == "bf16" else _null()
    with torch.inference_mode(), ctx:
        out = g(x, hm, blocks=blocks)
    return [((im.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            .permute(0, 2, 3, 1).cpu().numpy() for im in out.images]


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


# ----------------------------------------------------------------------------- downstream (dlib)

def face_box(det_box, align_matrix, landmarks) -> tuple[int, int, int, int]:
    """The face box (left, top, right, bottom) in the 128 frame: the source detection
    mapped by the alignment similarity (centre mapped, sides scaled), else the
    landmarks' bounding box."""
    if det_box is not None and align_matrix is not None and np.all(np.isfinite(det_box)):
        a = np.asarray(align_matrix, np.float64)
        b = np.asarray(det_box, np.float64)
        cx, cy = a @ np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 1.0])
        s = float(np.hypot(a[0, 0], a[0, 1]))
        w, h = (b[2] - b[0]) * s, (b[3] - b[1]) * s
        return (int(round(cx - w / 2)), int(round(cy - h / 2)),
                int(round(cx + w / 2)), int(round(cy + h / 2)))
    lm = np.asarray(landmarks, np.float64)
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    return int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))


def predict_landmarks(image: np.ndarray, box) -> tuple[np.ndarray, object]:
    """dlib 68 points (68, 2) on an (H, W, 3) uint8 RGB image inside ``box``, and the
    dlib shape object."""
    import dlib

    from .dlib_models import shape_predictor68

    shape = shape_predictor68()(np.ascontiguousarray(image), dlib.rectangle(*box))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64), shape


def nrmse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean point-to-point error / inter-ocular distance (points 36, 45), x100."""
    gt = np.asarray(gt, np.float64)
    iod = np.linalg.norm(gt[EYE_CORNERS[0]] - gt[EYE_CORNERS[1]])
    return float(np.linalg.norm(np.asarray(pred) - gt, axis=1).mean() / iod * 100.0)


def face_descriptor(image: np.ndarray, shape) -> np.ndarray:
    from .dlib_models import face_descriptor_model

    return np.array(face_descriptor_model().compute_face_descriptor(
        np.ascontiguousarray(image), shape), np.float64)


def _downstream_one(task) -> dict:
    """NRMSE (and identity distance) of every method's image of one sample."""
    images, gt, box, landmarks, identity = task
    out = {}
    ref_pts, ref_shape = predict_landmarks(gt, box)
    ref_desc = face_descriptor(gt, ref_shape) if identity else None
    out["ground truth"] = (nrmse(ref_pts, landmarks), 0.0 if identity else None)
    for name, img in images.items():
        pts, shape = predict_landmarks(img, box)
        dist = (float(np.linalg.norm(face_descriptor(img, shape) - ref_desc))
                if identity else None)
        out[name] = (nrmse(pts, landmarks), dist)
    return out


# ----------------------------------------------------------------------------- grouping

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


def _read_meta(reader) -> dict[str, list]:
    """Per dataset item: mask_params (dict), det_box, align_matrix, yaw (or None)."""
    import h5py

    cache: dict[str, dict] = {}
    out = defaultdict(list)
    for i in range(len(reader)):
        path, row = reader.location(i)
        if path not in cache:
            with h5py.File(path, "r") as f:
                m = f["meta"]
                cache[path] = {
                    "mask_params": list(m["mask_params"].asstr()[...]) if "mask_params" in m else None,
                    "det_box": m["det_box"][...] if "det_box" in m else None,
                    "align_matrix": m["align_matrix"][...] if "align_matrix" in m else None,
                    "yaw": m["yaw"][...] if "yaw" in m else None,
                }
        c = cache[path]
        out["mask_params"].append(json.loads(c["mask_params"][row]) if c["mask_params"] is not None else {})
        out["det_box"].append(None if c["det_box"] is None else c["det_box"][row])
        out["align_matrix"].append(None if c["align_matrix"] is None else c["align_matrix"][row])
        out["yaw"].append(None if c["yaw"] is None else float(c["yaw"][row]))
    return out


def _yaw_label(yaw: float | None) -> str | None:
    if yaw is None:
        return None
    if not np.isfinite(yaw):
        return "elevated (n/a)"
    return f"{int(round(yaw)):+d}"


# ----------------------------------------------------------------------------- validate

def validate(checkpoint: str | None, data: str, out_dir: str, cfg: ValidateConfig = ValidateConfig(),
             *, log: Callable[[str], None] = print) -> dict:
    """Score the checkpoint's generator (if any) and the baselines on ``cfg.split`` of the
    build ``data``; write ``report.json``, ``report.md`` and ``grid.png`` into ``out_dir``.
    Returns the report (the JSON's content)."""
    import torch

    from . import metrics
    from .build import load_manifest
    from .data import LoaderConfig, ShardReader
    from .train import load_generator, manifest_sha256

    manifest = load_manifest(data)
    rule = manifest["config"]["resize_rule"]
    g, info = (None, None)
    methods = list(BASELINES)
    spec0 = None
    if checkpoint is not None:
        g, info = load_generator(checkpoint, cfg.device)
        if cfg.channels_last:
            g = g.to(memory_format=torch.channels_last)
        methods.append(MODEL)
        if g.config.landmark_input == "gt":
            spec0 = g.config.heatmap_specs[0]
    reader = ShardReader(data, LoaderConfig(split=cfg.split, heatmaps=(spec0,) if spec0 else (),
                                            dtype="uint8"))
    n = len(reader) if cfg.limit is None else min(cfg.limit, len(reader))
    if n == 0:
        raise ValueError(f"split {cfg.split!r} of {data} is empty")
    meta = _read_meta(reader)
    has_yaw = any(y is not None for y in meta["yaw"])
    log(f"validating {n} images of split {cfg.split!r} ({data}); methods: {', '.join(methods)}")

    per: dict[str, dict[str, list]] = {k: defaultdict(list) for k in ("psnr", "ssim", "nrmse", "identity")}
    groups = defaultdict(list)  # breakdown name -> label per image
    model_seconds, model_images = 0.0, 0
    grid_rows: list[list[np.ndarray]] = []
    pool = None
    if cfg.downstream and cfg.workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(cfg.workers, mp_context=mp.get_context("fork"))
    try:
        for start in range(0, n, cfg.batch_size):
            idx = list(range(start, min(n, start + cfg.batch_size)))
            b = reader.get_batch(idx)
            lr = b["lr"].transpose(0, 2, 3, 1)       # (B, 16, 16, 3) u8
            hr = b["hr"].transpose(0, 2, 3, 1)       # (B, 128, 128, 3) u8
            mask = b["mask"][:, 0]
            outs = baselines(lr, mask, rule=rule, threshold=cfg.lr_hole_threshold,
                             radius_lr=cfg.telea_radius_lr, radius_hr=cfg.telea_radius_hr,
                             size=hr.shape[1])
            blocks_out = None
            if g is not None:
                hm = b["heatmaps"][spec0] if spec0 else None
                dev = torch.device(cfg.device)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                blocks_out = run_generator(g, lr, device=cfg.device, amp=cfg.amp,
                                           channels_last=cfg.channels_last, heatmaps=hm)
                dt = time.perf_counter() - t0
                if start > 0 or n <= cfg.batch_size:  # the first of several batches warms up
                    model_seconds += dt
                    model_images += len(idx)
                outs[MODEL] = blocks_out[2]
            gt_t = torch.from_numpy(np.ascontiguousarray(hr.transpose(0, 3, 1, 2)))
            for name in methods:
                x = torch.from_numpy(np.ascontiguousarray(outs[name].transpose(0, 3, 1, 2)))
                per["psnr"][name] += metrics.psnr(x, gt_t, y_channel=cfg.y_channel, crop=cfg.crop).tolist()
                per["ssim"][name] += metrics.ssim(x, gt_t, y_channel=cfg.y_channel, crop=cfg.crop).tolist()
            for k, i in enumerate(idx):
                groups["mask kind"].append(b["mask_kind"][k])
                groups["square side"].append(square_side_bin(meta["mask_params"][i]))
                groups["hole ratio (PConv bucket)"].append(hole_bucket_label(mask[k]))
                if has_yaw:
                    groups["yaw"].append(_yaw_label(meta["yaw"][i]))
            if cfg.downstream:
                tasks = [({m: outs[m][k] for m in methods}, hr[k],
                          face_box(meta["det_box"][i], meta["align_matrix"][i], b["landmarks"][k]),
                          b["landmarks"][k], cfg.identity) for k, i in enumerate(idx)]
                run = pool.map if pool is not None else map
                results = run(_downstream_one, tasks)
                for r in results:
                    for name, (e, d) in r.items():
                        per["nrmse"][name].append(e)
                        if cfg.identity:
                            per["identity"][name].append(d)
            for k in range(len(idx)):
                if len(grid_rows) < cfg.grid_size:
                    row = [lr[k]] + [outs[m][k] for m in BASELINES]
                    if blocks_out is not None:
                        row += [blocks_out[0][k], blocks_out[1][k], blocks_out[2][k]]
                    grid_rows.append(row + [hr[k]])
            log(f"  {idx[-1] + 1}/{n}")
    finally:
        if pool is not None:
            pool.shutdown()

    report = _summarise(per, groups, methods, cfg)
    report["data"] = {"path": os.path.abspath(data), "split": cfg.split, "images": n,
                      "manifest_sha256": manifest_sha256(data), "resize_rule": rule}
    report["checkpoint"] = None if info is None else {
        k: info[k] for k in ("path", "step", "stage", "manifest_sha256")}
    if info is not None:
        report["checkpoint"]["trained_on_same_build"] = (
            info["manifest_sha256"] == report["data"]["manifest_sha256"])
    report["per_image"]["key"] = [reader.key(i) for i in range(n)]
    report["config"] = to_dict(cfg)
    report["conventions"] = conventions(cfg)
    if g is not None and model_images:
        report["speed"] = {"model_images_per_s": model_images / model_seconds,
                           "batch_size": cfg.batch_size, "device": cfg.device, "amp": cfg.amp,
                           "note": "generator forward incl. host->device copy and uint8 output, "
                                   "first batch excluded when there are several"}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1, allow_nan=True)
    md = markdown(report)
    with open(os.path.join(out_dir, "report.md"), "w") as fh:
        fh.write(md)
    columns = (["occluded LR (x8)", *BASELINES]
               + (["block 1", "block 2", "model (block 3)"] if g is not None else []) + ["ground truth"])
    write_grid(os.path.join(out_dir, "grid.png"), grid_rows, columns)
    report["files"] = {k: os.path.join(out_dir, f) for k, f in
                       (("json", "report.json"), ("markdown", "report.md"), ("grid", "grid.png"))}
    return report


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
    }


def _mean(values) -> float | None:
    a = np.asarray([v for v in values if v is not None], np.float64)
    return float(a.mean()) if a.size else None


def _summarise(per, groups, methods, cfg) -> dict:
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
    lines += ["", table_markdown(report), ""]
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
               pad: int = 2) -> None:
    """PNG grid: one row per sample, one column per image (each resized to ``size`` with
    nearest neighbour), a header with the column names."""
    import cv2

    if not rows:
        return
    head = 18
    w = len(columns) * (size + pad) + pad
    h = head + len(rows) * (size + pad) + pad
    canvas = np.full((h, w, 3), 255, np.uint8)
    for j, name in enumerate(columns):
        cv2.putText(canvas, name[:20], (pad + j * (size + pad) + 2, 13), cv2.FONT_HERSHEY_PLAIN,
                    0.8, (0, 0, 0), 1, cv2.LINE_AA)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            if img.shape[0] != size:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)
            y, x = head + pad + i * (size + pad), pad + j * (size + pad)
            canvas[y:y + size, x:x + size] = img
    cv2.imwrite(path, np.ascontiguousarray(canvas[..., ::-1]))
