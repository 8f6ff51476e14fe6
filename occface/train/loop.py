"""The training loop: set up, then one step at a time, top to bottom.

Per step: the stage's modules and optimisers (fresh Adam states at every stage start), the
step's learning rates (:func:`occface.train.schedule.lr_at`, a pure function of the step),
one batch, and :func:`train_step`: generator forward; discriminator update on the detached
outputs; generator update against the updated (frozen) discriminators.  Every
``log_every`` steps the ranks agree on NaNs and time, scalars go to TensorBoard; every
``ckpt_every`` steps, at a stage end and at a stop, checkpoints are written.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import __version__
from ..data.convert import as_torch
from ..data.reader import ShardReader
from ..format.atomic import atomic_path, write_json_atomic
from ..format.canonical import to_dict
from ..format.manifest import load_manifest, manifest_sha256
from ..model import GlobalDiscriminator, LocalDiscriminator, ProUIGANLoss, ProUIGenerator
from ..runtime import autocast
from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, check_resume, load_checkpoint, save_checkpoint
from .config import NonFiniteLoss, RunExists, TrainConfig
from .distributed import DistContext, agree
from .grids import log_images
from .monitor import ValSet, batch_prior_scalars, ema_update, validation_scalars
from .inputs import loader, mean_heatmaps, mean_landmarks, prepare_batch, repeat_index
from .schedule import lr_at, stage_bounds, stage_of


def data_sources(data) -> list[str]:
    """``data`` (one build directory, or a list of them) as a list."""
    return [data] if isinstance(data, (str, os.PathLike)) else list(data)


def data_sha256(data) -> str:
    """The data's identity in checkpoints: the manifest's SHA-256 for one build; for several,
    the SHA-256 of their manifests' hashes, one per line, in the order given."""
    shas = [manifest_sha256(d) for d in data_sources(data)]
    if len(shas) == 1:
        return shas[0]
    return hashlib.sha256("\n".join(shas).encode()).hexdigest()


def build_heatmap_sigma(data, cfg: TrainConfig) -> float:
    """Heatmap sigma for rendering on the device: the loader's, else the builds' (which must
    agree)."""
    if cfg.loader.heatmap_sigma is not None:
        return float(cfg.loader.heatmap_sigma)
    sigmas = {float(load_manifest(d)["config"]["heatmap_sigma"]) for d in data_sources(data)}
    if len(sigmas) > 1:
        raise ValueError(f"the builds use different heatmap sigmas {sorted(sigmas)}; "
                         "set the loader's heatmap_sigma")
    return sigmas.pop()


def generator_groups(g: ProUIGenerator) -> dict[str, list[torch.nn.Parameter]]:
    """The generator's parameter groups, one learning rate each (block 1 holds the landmark prior)."""
    block1 = list(g.blocks[0].parameters()) + (list(g.prior.parameters()) if g.prior is not None else [])
    return {"block1": block1, "block2": list(g.blocks[1].parameters()),
            "block3": list(g.blocks[2].parameters())}


@dataclass
class Stage:
    """What one stage trains: its optimisers and the (possibly DDP-wrapped / compiled) modules."""

    stage: int
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    g_run: torch.nn.Module
    local_d: torch.nn.Module | None    # the discriminators this stage trains (None: not trained)
    global_d: torch.nn.Module | None
    ld_run: torch.nn.Module | None     # the same, as run (DDP-wrapped under torchrun)
    gd_run: torch.nn.Module | None


def setup_stage(stage: int, cfg: TrainConfig, g, local_d, global_d, device: torch.device, ddp: bool,
                saved: dict | None) -> Stage:
    """Freeze what ``stage`` does not train, make its Adam optimisers (restoring ``saved`` when it
    belongs to this stage) and wrap the modules for DDP / ``torch.compile``."""
    lrs = lr_at(stage_bounds(cfg)[stage - 1][0], cfg)
    groups = generator_groups(g)
    for name, ps in groups.items():
        for p in ps:
            p.requires_grad_(name in lrs)
    local_d.requires_grad_("local_d" in lrs)
    global_d.requires_grad_("global_d" in lrs)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt_g = torch.optim.Adam([{"params": groups[n], "lr": lrs[n], "name": n}
                              for n in ("block1", "block2", "block3") if n in lrs],
                             betas=cfg.betas, **fused)
    d_groups = [{"params": list(m.parameters()), "lr": lrs[n], "name": n}
                for n, m in (("local_d", local_d), ("global_d", global_d)) if n in lrs]
    opt_d = torch.optim.Adam(d_groups, betas=cfg.betas, **fused) if d_groups else None
    if saved is not None and saved.get("stage") == stage:
        opt_g.load_state_dict(saved["g"])
        if opt_d is not None:
            opt_d.load_state_dict(saved["d"])
    g_run = g
    ld = local_d if "local_d" in lrs else None
    gd = global_d if "global_d" in lrs else None
    ld_run, gd_run = ld, gd
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        g_run = DDP(g, device_ids=ids)
        ld_run = DDP(local_d, device_ids=ids) if ld is not None else None
        gd_run = DDP(global_d, device_ids=ids) if gd is not None else None
    if cfg.compile:
        g_run = torch.compile(g_run)
    return Stage(stage, opt_g, opt_d, g_run, ld, gd, ld_run, gd_run)


def train_step(st: Stage, criterion: ProUIGANLoss, lr_img, hr, hms, device, amp: str,
               grad_clip: float | None = None):
    """One optimisation step of stage ``st``: returns (generator loss terms, discriminator loss
    terms, a 0-d int tensor that is 1 when a loss was not finite, the generator's output).
    Stage k runs UI-blocks 1..k.  ``grad_clip``: clip the global gradient norm of the
    generator's and of the discriminators' trained parameters before their steps."""
    bad = torch.zeros((), dtype=torch.int32, device=device)
    with autocast(device, amp):
        out = st.g_run(lr_img, hms[0], blocks=st.stage)
    d_terms = {}
    if st.opt_d is not None:
        for m in (st.local_d, st.global_d):
            if m is not None:
                m.requires_grad_(True)
        with autocast(device, amp):
            d_loss, d_terms = criterion.discriminator_loss(out, hr, st.ld_run, st.gd_run)
        st.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(_params(st.opt_d), grad_clip)
        st.opt_d.step()
        for m in (st.local_d, st.global_d):
            if m is not None:
                m.requires_grad_(False)
        bad |= ~torch.isfinite(d_loss.detach())
    with autocast(device, amp):
        g_loss, g_terms = criterion.generator_loss(out, hr, hms, st.local_d, st.global_d)
    st.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    if grad_clip is not None:
        g_terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(_params(st.opt_g), grad_clip).detach()
    st.opt_g.step()
    bad |= ~torch.isfinite(g_loss.detach())
    return g_terms, d_terms, bad, out


def _params(opt: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for grp in opt.param_groups for p in grp["params"]]


def _device(cfg: TrainConfig, dist: DistContext) -> torch.device:
    device = torch.device(cfg.device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return device


def _tb_writer(out_dir: str):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(os.path.join(out_dir, "tb"))


def train(cfg: TrainConfig, data, out_dir: str, *, dist: DistContext | None = None,
          resume: bool = False, stop_at_step: int | None = None, max_seconds: float | None = None,
          progress: bool | None = None, log: Callable[[str], None] = print) -> dict:
    """Train (or, with ``resume``, continue) a run in ``out_dir`` on the build ``data`` (a
    directory, or a list of builds whose train splits are trained on together).

    ``dist``: this process's rank (None: one process).  ``stop_at_step`` / ``max_seconds``:
    stop early, after writing ``last.pt`` (a later ``resume`` continues bit-exactly on CPU).
    ``resume`` with no checkpoint in ``out_dir`` starts from scratch.  Returns a summary
    (steps, seconds, images/s, last checkpoint, peak GPU memory, last losses).
    """
    dist = dist or DistContext()
    if cfg.batch_size % dist.world_size:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {dist.world_size} ranks")
    main = dist.rank == 0
    ddp = dist.world_size > 1
    device = _device(cfg, dist)
    data = data_sources(data)
    last_path = os.path.join(out_dir, "last.pt")
    cfg_dict = to_dict(cfg)
    sha = data_sha256(data)
    sigma = build_heatmap_sigma(data, cfg)

    # ---- models, losses (seeded: identical on every rank); missing VGG weights stop the run
    # here, before anything is written
    vgg = {"path": None, "hub_dir": cfg.vgg_hub_dir, "allow_download": cfg.vgg_download}
    criterion = ProUIGANLoss.from_weights(
        cfg.model, cfg.loss, without_vgg=cfg.no_vgg,
        vgg16={**vgg, "path": cfg.vgg16}, vgg19={**vgg, "path": cfg.vgg19})
    torch.manual_seed(cfg.seed)
    g = ProUIGenerator(cfg.model)
    local_d, global_d = LocalDiscriminator(cfg.model), GlobalDiscriminator(cfg.model)
    mem = torch.channels_last if cfg.channels_last else torch.contiguous_format
    for m in (g, local_d, global_d, criterion):
        m.to(device=device, memory_format=mem)
    # the EMA generator starts as a copy of the initial weights and is never trained directly
    g_ema = copy.deepcopy(g).requires_grad_(False).eval() if cfg.ema_decay is not None else None
    os.makedirs(out_dir, exist_ok=True)

    # ---- state: fresh or resumed
    step, epoch, pos, opt_state = 0, 0, 0, None
    ckpt = None
    if os.path.exists(last_path):
        if not resume:
            raise RunExists(f"{out_dir} already holds a run ({last_path})")
        ckpt = load_checkpoint(last_path)
        check_resume(ckpt, cfg_dict, sha, last_path)
        g.load_state_dict(ckpt["generator"])
        if g_ema is not None:
            g_ema.load_state_dict(ckpt["generator_ema"])
        local_d.load_state_dict(ckpt["discriminators"]["local"])
        global_d.load_state_dict(ckpt["discriminators"]["global"])
        step, epoch, pos = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["position"])
        opt_state = ckpt["optimizers"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        if device.type == "cuda" and ckpt["rng"].get("cuda") is not None:
            with contextlib.suppress(RuntimeError, IndexError):
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
        if main:
            log(f"resuming {last_path} at step {step} (stage {stage_of(step, cfg)}, epoch {epoch}, "
                f"batch {pos})")
    elif resume and main:
        log(f"no checkpoint in {out_dir}: starting from scratch")
    points_prior = cfg.model.landmark_input == "learned" and cfg.model.prior_kind == "points"
    if ckpt is None and (cfg.model.heatmap_template or points_prior):
        if cfg.model.heatmap_template:
            g.init_templates([t.to(device) for t in mean_heatmaps(data, cfg, sigma)])
        if points_prior:
            g.init_mean_shape(mean_landmarks(data).to(device))
        if g_ema is not None:
            g_ema.load_state_dict(g.state_dict())
    run_json = os.path.join(out_dir, "run.json")
    if main and (ckpt is None or not os.path.exists(run_json)):
        write_json_atomic(run_json, {"format": "occface-train-run", "config": cfg_dict,
                                     "data": [os.path.abspath(d) for d in data], "manifest_sha256": sha,
                                     "occface_version": __version__, "torch_version": str(torch.__version__),
                                     "world_size": dist.world_size})

    # ---- data, logging
    reader = ShardReader(data, cfg.loader)
    index = repeat_index([len(ShardReader(d, cfg.loader)) for d in data], cfg.data_repeat) \
        if cfg.data_repeat else None
    grid_batch, grid_faces = None, "test"
    writer = None
    val = None
    if main:
        writer = _tb_writer(out_dir)
        test = ShardReader(data, dataclasses.replace(cfg.loader, split="test", remask=None))
        shown = test if len(test) else reader  # the grid shows test faces when there are any
        grid_faces = "test" if len(test) else "training"
        grid_batch = as_torch(shown.get_batch(list(range(min(cfg.grid_size, len(shown))))))
        if cfg.val_every:
            val = ValSet.load(data, cfg.val_images)
        listed = "" if index is None else f" listed {len(index)} times an epoch (repeats {cfg.data_repeat})"
        log(f"training on {len(reader)} samples{listed} ({', '.join(data)}), global batch {cfg.batch_size} over "
            f"{dist.world_size} rank(s), device {device}, amp {cfg.amp}, stages {cfg.stage_steps}, "
            f"losses {cfg.loss.variant}{' without VGG' if cfg.no_vgg else ''}"
            f"{f', EMA {cfg.ema_decay}' if g_ema is not None else ''}")
        log(f"TensorBoard: {os.path.join(os.path.abspath(out_dir), 'tb')}  |  grids: "
            f"{os.path.join(os.path.abspath(out_dir), 'grids')}"
            + ("" if val is not None or not cfg.val_every else "  |  no test split: no periodic validation"))

    def checkpoint(paths: list[str], st: Stage, epoch_: int, pos_: int, losses: dict) -> None:
        if not main:
            return
        cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": step,
                 "stage": stage_of(step, cfg), "epoch": epoch_, "position": pos_,
                 "generator": g.state_dict(),
                 **({"generator_ema": g_ema.state_dict()} if g_ema is not None else {}),
                 "discriminators": {"local": local_d.state_dict(), "global": global_d.state_dict()},
                 "optimizers": {"stage": st.stage, "g": st.opt_g.state_dict(),
                                "d": st.opt_d.state_dict() if st.opt_d is not None else None},
                 "rng": {"torch": torch.get_rng_state(), "cuda": cuda_rng},
                 "config": cfg_dict, "manifest_sha256": sha, "occface_version": __version__,
                 "torch_version": str(torch.__version__), "world_size": dist.world_size,
                 "losses": losses}
        for p in paths:
            save_checkpoint(p, state)
        # the generator alone (what validate / hallucinate need; ~11 MB at the default widths):
        # the EMA weights when they are kept
        gen = {k: v for k, v in state.items()
               if k not in ("discriminators", "optimizers", "rng", "generator_ema")}
        if g_ema is not None:
            gen.update(generator=state["generator_ema"], ema=True)
        save_checkpoint(os.path.join(out_dir, "generator.pt"), gen)

    from tqdm.auto import tqdm

    total = cfg.total_steps
    bounds = stage_bounds(cfg)
    show = main and (progress if progress is not None else True)
    bar = tqdm(total=total, initial=step, disable=not show, unit="step", dynamic_ncols=True)
    bad = torch.zeros((), dtype=torch.int32, device=device)
    t_start = time.perf_counter()
    t_log, steps_since_log, steps_run = t_start, 0, 0
    last_losses: dict = {}
    last_ips = float("nan")
    last_good = step if ckpt is not None else None
    stopped = False
    st: Stage | None = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    batches = loader(reader, cfg, dist, device, epoch, pos, index) if step < total else iter(())
    try:
        for (epoch_, pos_, n_batches), batch in batches:
            # ---- the stage, its learning rates, one step
            stage = stage_of(step, cfg)
            if st is None or st.stage != stage:
                st = setup_stage(stage, cfg, g, local_d, global_d, device, ddp, opt_state)
                opt_state = None
                if main:
                    log(f"stage {stage}: steps {bounds[stage - 1][0]}..{bounds[stage - 1][1]}, "
                        f"lr {lr_at(step, cfg)}")
            lrs = lr_at(step, cfg)
            for opt in (st.opt_g, st.opt_d):
                if opt is not None:
                    for grp in opt.param_groups:
                        grp["lr"] = lrs[grp["name"]]
            lr_img, hr, hms = prepare_batch(batch, cfg, device, sigma)
            g_terms, d_terms, bad_now, out = train_step(st, criterion, lr_img, hr, hms, device, cfg.amp,
                                                        cfg.grad_clip)
            bad |= bad_now
            if g_ema is not None:
                ema_update(g_ema, g, cfg.ema_decay)

            step += 1
            steps_run += 1
            steps_since_log += 1
            epoch_next, pos_next = (epoch_, pos_ + 1) if pos_ + 1 < n_batches else (epoch_ + 1, 0)
            bar.update(1)
            stage_end = step == bounds[stage - 1][1]
            stop_step = stop_at_step is not None and step >= stop_at_step
            stop = False

            # ---- NaN check, stop conditions and scalars
            if (step % cfg.log_every == 0 or step % cfg.ckpt_every == 0 or stage_end
                    or step == total or stop_step):
                # every step's losses went into `bad`; look at it (all ranks agree) before
                # logging or writing anything
                time_up = max_seconds is not None and time.perf_counter() - t_start >= max_seconds
                any_bad, time_up = agree(bad, time_up, ddp, device)
                if any_bad:
                    where = (f"last good checkpoint: {last_path} (step {last_good})"
                             if last_good is not None else "no checkpoint was written")
                    raise NonFiniteLoss(f"non-finite loss (NaN or inf) at a step in "
                                        f"({step - steps_since_log}, {step}]; stopped; {where}")
                stop = stop_step or time_up
                now = time.perf_counter()
                ips = last_ips = steps_since_log * cfg.batch_size / max(now - t_log, 1e-9)
                last_losses = {f"g/{k}": float(v) for k, v in g_terms.items()}
                last_losses.update({f"d/{k}": float(v) for k, v in d_terms.items()})
                if main:
                    for k, v in last_losses.items():
                        writer.add_scalar(f"loss/{k}", v, step)
                    for k, v in batch_prior_scalars(out, batch["landmarks"],
                                                    cfg.model.heatmap_groupings).items():
                        writer.add_scalar(f"train/{k}", v, step)
                    for k, v in lrs.items():
                        writer.add_scalar(f"lr/{k}", v, step)
                    writer.add_scalar("speed/images_per_s", ips, step)
                    writer.add_scalar("stage", stage, step)
                    if device.type == "cuda":
                        writer.add_scalar("gpu/max_memory_gib",
                                          torch.cuda.max_memory_allocated(device) / 2**30, step)
                    bar.set_postfix(stage=stage, loss=f"{last_losses['g/total']:.4f}",
                                    img_s=f"{ips:.0f}")
                t_log, steps_since_log = now, 0

            # ---- pictures and checkpoints
            keep = bool(cfg.keep_every) and step % cfg.keep_every == 0
            save_now = step % cfg.ckpt_every == 0 or stage_end or stop or step == total or keep
            if main and (step % cfg.image_every == 0 or stage_end or step == total):
                log_images(writer, out_dir, g_ema or g, grid_batch, cfg, device, step, sigma, grid_faces,
                           ", EMA weights" if g_ema is not None else "")
            if main and val is not None and (step % cfg.val_every == 0 or step == total):
                scalars = validation_scalars(g_ema or g, val, device, cfg.amp)
                for k, v in scalars.items():
                    writer.add_scalar(k, v, step)
                log(f"step {step}: validation on {len(val.lr)} test faces: PSNR by block "
                    + " / ".join(f"{scalars[f'val/psnr_block{k}']:.2f}" for k in (1, 2, 3))
                    + " dB; landmark NME by block "
                    + " / ".join(f"{scalars.get(f'val/nme_block{k}', float('nan')):.2f}" for k in (1, 2, 3))
                    + f" (mean shape {scalars['val/nme_mean_shape']:.2f})")
            if save_now:
                paths = [last_path]
                if stage_end:
                    paths.append(os.path.join(out_dir, f"stage{stage}.pt"))
                checkpoint(paths, st, epoch_next, pos_next, last_losses)
                last_good = step
                if main and keep:
                    with atomic_path(os.path.join(out_dir, f"generator-step{step:07d}.pt")) as tmp:
                        shutil.copyfile(os.path.join(out_dir, "generator.pt"), tmp)
                if main:
                    mem = (f", GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
                           if device.type == "cuda" else "")
                    log(f"step {step}/{total} (stage {stage}, epoch {epoch_}): loss "
                        f"{last_losses.get('g/total', float('nan')):.4f}, {last_ips:.1f} images/s"
                        f"{mem}; wrote {', '.join(os.path.basename(p) for p in paths)}")
            if stop and step < total:
                stopped = True
                if main:
                    why = "the step limit" if stop_step else "the time limit"
                    log(f"stopping at step {step} ({why}); resume the run to continue")
                break
            if step >= total:
                break
    finally:
        bar.close()
        batches = None  # the DataLoader iterator's __del__ stops its workers
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - t_start
    summary = {"steps": step, "steps_run": steps_run, "seconds": seconds,
               "steps_per_s": steps_run / seconds if seconds else 0.0,
               "images_per_s": steps_run * cfg.batch_size / seconds if seconds else 0.0,
               "stopped": stopped, "done": step >= total,
               "checkpoint": last_path if last_good is not None else None,
               "losses": last_losses,
               "max_gpu_memory_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                                      if device.type == "cuda" else None)}
    if main:
        log(f"{steps_run} steps in {seconds:.1f}s: {summary['steps_per_s']:.2f} steps/s, "
            f"{summary['images_per_s']:.1f} images/s (global batch {cfg.batch_size}); "
            f"step {step}/{total}; checkpoint {summary['checkpoint']}")
    return summary
