"""``occface validate``: the paper's tables for a checkpoint and three baselines, in one run.

For every image of a split this scores, against the clean 128x128 HR ground truth:

* ``bicubic``: the occluded 16x16 LR upsampled x8 with bicubic interpolation
  (OpenCV ``INTER_CUBIC``);
* ``telea-lr+bicubic``: OpenCV Telea inpainting of the LR (PA then SR), then bicubic;
* ``bicubic+telea-hr``: bicubic, then Telea inpainting at HR (SR then PA);
* the model (if a checkpoint is given): block 3's output.

For the model the report also has ``blocks``: PSNR / SSIM of every UI-block's image (blocks 1
and 2 bicubic-upsampled to 128, :mod:`.blocks`), and ``prior``: the landmark NME x100 of each
block's predicted heatmaps (argmax, mapped to the 128 frame, against the build's landmarks)
and of the learned prior estimator, beside the NME of the build's mean training shape.  A
checkpoint written before its schedule trained block 3 (e.g. ``stage2.pt``) is scored all the
same, with a warning in the report.

Outputs are quantised to uint8 (what a saved PNG holds) before scoring.  Conventions
(docs/training.md):

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

from .. import metrics
from ..data import LoaderConfig, ShardReader
from ..format import shards as shards_fmt
from ..format.atomic import write_bytes_atomic
from ..format.canonical import to_dict
from ..format.manifest import load_manifest, manifest_sha256
from ..runtime import AMP_MODES
from . import blocks as blocks_mod
from .baselines import BASELINES, baselines
from .downstream import face_box, score_one
from .inference import run_generator_with_prior
from .plots import psnr_by_mask
from .report import (MODEL, blocks_markdown, conventions, hole_bucket_label, markdown, square_side_bin, summarise,
                     table_markdown, write_grid, yaw_label)

__all__ = ["ValidateConfig", "validate", "default_out_dir", "table_markdown", "blocks_markdown", "markdown",
           "BASELINES", "MODEL"]


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
    workers: int = 1           # processes for the dlib metrics (the CLI defaults to all cores)
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


def default_out_dir(checkpoint: str | None, split: str) -> str:
    """``CHECKPOINT_DIR/validate-SPLIT-STEM`` for a checkpoint, ``./validate-SPLIT`` without one."""
    if checkpoint is None:
        return f"validate-{split}"
    stem = os.path.splitext(os.path.basename(checkpoint))[0]
    return os.path.join(os.path.dirname(os.path.abspath(checkpoint)), f"validate-{split}-{stem}")


def _read_meta(reader) -> dict[str, list]:
    """Per dataset item: mask_params (dict), det_box, align_matrix, yaw (or None)."""
    cache: dict[str, dict] = {}
    out = defaultdict(list)
    for i in range(len(reader)):
        path, row = reader.location(i)
        if path not in cache:
            m = shards_fmt.read_meta(path)
            cache[path] = {k: m.get(k) for k in ("mask_params", "det_box", "align_matrix", "yaw")}
        c = cache[path]
        out["mask_params"].append(json.loads(c["mask_params"][row]) if c["mask_params"] is not None else {})
        out["det_box"].append(None if c["det_box"] is None else c["det_box"][row])
        out["align_matrix"].append(None if c["align_matrix"] is None else c["align_matrix"][row])
        out["yaw"].append(None if c["yaw"] is None else float(c["yaw"][row]))
    return out


def block_report(block_per: dict, shape_from: str) -> dict:
    """``blocks`` and ``prior`` sections of the report from the per-image lists."""
    mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
    prior = {"mean_shape_nme": mean(block_per["nme_mean_shape"]), "mean_shape_from": shape_from,
             "blocks": [{"block": k, "nme": mean(block_per.get(f"nme_block{k}")),
                         "nme_subpixel": mean(block_per.get(f"nme_block{k}_subpixel"))} for k in (1, 2, 3)]}
    if block_per.get("nme_estimator"):
        prior["estimator"] = {"nme": mean(block_per["nme_estimator"])}
    return {"blocks": [{"block": k, "side": s, "psnr": mean(block_per[f"psnr{k}"]),
                        "ssim": mean(block_per[f"ssim{k}"])} for k, s in ((1, 32), (2, 64), (3, 128))],
            "prior": prior}


def block_warnings(report: dict, info: dict) -> list[str]:
    """One line per thing a reader of the model row must know: block 3 not trained yet, or a
    lower block scoring better than block 3."""
    out = []
    steps = ((info.get("config") or {}).get("stage_steps"))
    trained = blocks_mod.trained_blocks(info.get("step"), steps)
    if not trained[2]:
        out.append(f"block 3 has not been trained: the checkpoint is at step {info.get('step')} of stages "
                   f"{tuple(steps)}, before stage 3; the model row scores an untrained block 3")
    b = {r["block"]: r["psnr"] for r in report.get("blocks", [])}
    best = max((k for k in (1, 2) if b.get(k) is not None), key=lambda k: b[k], default=None)
    if best is not None and b.get(3) is not None and b[best] > b[3]:
        out.append(f"block {best} (bicubic to 128) scores {b[best]:.2f} dB, more than block 3's {b[3]:.2f} dB")
    return out


def validate(checkpoint: str | None, data: str, out_dir: str, cfg: ValidateConfig = ValidateConfig(),
             *, log: Callable[[str], None] = print, progress: bool | None = None) -> dict:
    """Score the checkpoint's generator (if any) and the baselines on ``cfg.split`` of the
    build ``data``; write ``report.json``, ``report.md``, ``grid.png`` and ``psnr_by_mask.png``
    into ``out_dir``.  Returns the report (the JSON's content).

    ``progress``: a tqdm bar (images, with rate and ETA) on stderr; ``None`` = when stderr is a
    terminal.  Without a bar, ``log`` gets one line per batch."""
    import sys

    import torch

    from ..train.checkpoint import load_generator

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
    block_per: dict[str, list] = defaultdict(list)   # "psnr1".."ssim3", "nme_block1".., "nme_estimator"
    shape = shape_from = None
    if g is not None:
        shape, shape_from = blocks_mod.reference_shape(data, cfg.split)
    groups = defaultdict(list)  # breakdown name -> label per image
    model_seconds, model_images = 0.0, 0
    grid_rows: list[list[np.ndarray]] = []
    grid_info: list[tuple[str, str, float]] = []  # key, mask kind, hole ratio of each grid row
    pool = None
    bar = None
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="img", desc="validate", dynamic_ncols=True)
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
                res = run_generator_with_prior(g, lr, device=cfg.device, amp=cfg.amp,
                                               channels_last=cfg.channels_last, heatmaps=hm)
                dt = time.perf_counter() - t0
                if start > 0 or n <= cfg.batch_size:  # the first of several batches warms up
                    model_seconds += dt
                    model_images += len(idx)
                blocks_out = res.images
                outs[MODEL] = blocks_out[2]
                for k, sc in enumerate(blocks_mod.image_scores(blocks_out, hr, y_channel=cfg.y_channel,
                                                               crop=cfg.crop)):
                    block_per[f"psnr{k + 1}"] += sc["psnr"]
                    block_per[f"ssim{k + 1}"] += sc["ssim"]
                lm = np.asarray(b["landmarks"], np.float64)
                for name, v in blocks_mod.prior_scores(res.points, g.config.heatmap_groupings, lm,
                                                       res.prior, res.points_subpixel).items():
                    if v is not None:
                        block_per[f"nme_{name}"] += v
                block_per["nme_mean_shape"] += blocks_mod.mean_shape_scores(shape, lm)
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
                    groups["yaw"].append(yaw_label(meta["yaw"][i]))
            if cfg.downstream:
                tasks = [({m: outs[m][k] for m in methods}, hr[k],
                          face_box(meta["det_box"][i], meta["align_matrix"][i], b["landmarks"][k]),
                          b["landmarks"][k], cfg.identity) for k, i in enumerate(idx)]
                run = pool.map if pool is not None else map
                results = run(score_one, tasks)
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
                    grid_info.append((reader.key(idx[k]), b["mask_kind"][k], float(mask[k].mean())))
            if bar is not None:
                bar.update(len(idx))
            else:
                log(f"  {idx[-1] + 1}/{n}")
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.shutdown()

    report = summarise(per, groups, methods, cfg)
    report["data"] = {"path": os.path.abspath(data), "split": cfg.split, "images": n,
                      "manifest_sha256": manifest_sha256(data), "resize_rule": rule}
    report["checkpoint"] = None if info is None else {
        k: info[k] for k in ("path", "step", "stage", "manifest_sha256")}
    report["warnings"] = []
    if info is not None:
        report["checkpoint"]["trained_on_same_build"] = (
            info["manifest_sha256"] == report["data"]["manifest_sha256"])
        report["checkpoint"]["ema"] = info.get("ema", False)
        report.update(block_report(block_per, shape_from))
        report["warnings"] += block_warnings(report, info)
    report["per_image"]["key"] = [reader.key(i) for i in range(n)]
    report["grid_rows"] = [{"key": k, "mask_kind": m, "hole_ratio": r} for k, m, r in grid_info]
    report["config"] = to_dict(cfg)
    report["conventions"] = conventions(cfg)
    if g is not None and model_images:
        report["speed"] = {"model_images_per_s": model_images / model_seconds,
                           "batch_size": cfg.batch_size, "device": cfg.device, "amp": cfg.amp,
                           "note": "generator forward incl. host->device copy and uint8 output, "
                                   "first batch excluded when there are several"}
    os.makedirs(out_dir, exist_ok=True)
    write_bytes_atomic(os.path.join(out_dir, "report.json"),
                       (json.dumps(report, indent=1, allow_nan=True) + "\n").encode("utf-8"))
    write_bytes_atomic(os.path.join(out_dir, "report.md"), markdown(report).encode("utf-8"))
    columns = (["occluded LR\n16 px (x8)", *(b.replace("+", "+\n") for b in BASELINES)]
               + (["block 1\n32 px", "block 2\n64 px", "model\n(block 3)"] if g is not None else [])
               + ["ground truth\n128 px"])
    scored = [None, *BASELINES] + ([None, None, MODEL] if g is not None else []) + [None]
    captions = [["" if m is None else f"{per['psnr'][m][r]:.2f} dB" for m in scored]
                for r in range(len(grid_rows))]
    write_grid(os.path.join(out_dir, "grid.png"), grid_rows, columns, captions=captions, info=grid_info,
               title=f"{os.path.basename(os.path.abspath(data))}, split {cfg.split}: first {len(grid_rows)} of {n} "
                     f"images" + (f"; checkpoint step {info['step']}" if info is not None else ""))
    psnr_by_mask(report, os.path.join(out_dir, "psnr_by_mask.png"))
    report["files"] = {k: os.path.join(out_dir, f) for k, f in
                       (("json", "report.json"), ("markdown", "report.md"), ("grid", "grid.png"),
                        ("psnr_by_mask", "psnr_by_mask.png"))}
    return report
