"""``occface train-ref``, ``validate``, ``hallucinate`` and ``export-weights`` (docs/training.md).

Only this module reads the environment: torchrun's RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT, and OCCFACE_VGG16 / OCCFACE_VGG19 / OCCFACE_VGG_DIR /
TORCH_HOME / XDG_CACHE_HOME through :func:`vgg_sources_from_env`.  The library gets explicit
arguments, and its errors never name flags: this module adds the flag hints.
"""

from __future__ import annotations

import json
import os

import click

from .common import NumberList, info, is_quiet, user_errors


def _device(device: str) -> str:
    from occface.errors import OccfaceError
    from occface.runtime import resolve_device

    try:
        return resolve_device(device)
    except (ValueError, OccfaceError) as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None


def _amp(amp: str, device: str) -> str:
    from occface.runtime import resolve_amp

    return resolve_amp(amp, device)


def vgg_sources_from_env(environ) -> dict[str, dict]:
    """Keyword arguments of ``occface.model.load_vgg`` per architecture, from an environment
    mapping:

    * ``path``: ``OCCFACE_VGG16`` / ``OCCFACE_VGG19`` (files), else ``OCCFACE_VGG_DIR`` (a
      directory holding the standard file names);
    * ``hub_dir``: torch hub's directory as ``torch.hub.get_dir()`` derives it -
      ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``.
    """
    from occface.model import VGG_FILES

    torch_home = environ.get("TORCH_HOME") or os.path.join(
        environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    hub_dir = os.path.join(os.path.expanduser(torch_home), "hub")
    out: dict[str, dict] = {}
    for arch, var in (("vgg16", "OCCFACE_VGG16"), ("vgg19", "OCCFACE_VGG19")):
        out[arch] = {"hub_dir": hub_dir}
        if environ.get(var):
            out[arch]["path"] = environ[var]
        elif environ.get("OCCFACE_VGG_DIR"):
            out[arch]["path"] = os.path.join(environ["OCCFACE_VGG_DIR"], VGG_FILES[arch])
    return out


def vgg_hint(hub_dir: str) -> str:
    """The one line the CLI prints when VGG weights are missing."""
    from occface.model import VGG_FILES

    return (f"no VGG ImageNet weights for L_f / L_style in torch hub's cache ({hub_dir}/checkpoints): "
            f"pass --download-vgg to fetch torchvision's {VGG_FILES['vgg16']} and {VGG_FILES['vgg19']} "
            "(about 1.1 GB, SHA-256 checked) into it, --vgg16/--vgg19 FILE, or --no-vgg to train "
            "without L_f and L_style (or a --variant without them, e.g. lg-minus)")


def _loss_weights(text: str | None) -> dict[str, float]:
    """``alpha=0.01,psi=0.01,gamma=10,10,1,heatmap=1,prior=1`` -> LossWeights overrides."""
    if not text:
        return {}
    out: dict[str, float] = {}
    key = None
    for tok in (t.strip() for t in text.split(",")):
        if not tok:
            continue
        if "=" in tok:
            key, val = (x.strip() for x in tok.split("=", 1))
        elif key == "gamma":
            val = tok
        else:
            raise click.BadParameter(f"expected KEY=VALUE, got {tok!r}", param_hint="--loss-weights")
        try:
            v = float(val)
        except ValueError:
            raise click.BadParameter(f"{key}: not a number: {val!r}", param_hint="--loss-weights") from None
        if key == "gamma":
            n = sum(1 for k in out if k.startswith("gamma_"))
            if n >= 3:
                raise click.BadParameter("gamma takes three values (blocks 1, 2, 3)", param_hint="--loss-weights")
            out["gamma_" + "abc"[n]] = v
        elif key in ("alpha", "psi", "gamma_a", "gamma_b", "gamma_c", "heatmap", "prior"):
            out[key] = v
        else:
            raise click.BadParameter(f"unknown weight {key!r}: use alpha, psi, gamma (three values), "
                                     "gamma_a, gamma_b, gamma_c, heatmap, prior", param_hint="--loss-weights")
    return out


def _bundled(what: str, log, name: str | None = None) -> str:
    from occface.errors import OccfaceError
    from occface.model import bundled

    try:
        path = bundled.bundled_weights(name or bundled.DEFAULT)
    except OccfaceError as exc:
        raise click.ClickException(f"{exc} (pass --checkpoint to {what} a checkpoint of yours)") from None
    how = "--weights" if name else "no --checkpoint given"
    log(f"{how}: using the bundled reference weights {name or bundled.DEFAULT} ({path}; "
        "a small CPU-budget model, see docs/model_card.md)")
    return path


def _weights_option(f):
    return click.option("--weights", "weights_name", default=None, metavar="NAME",
                        help="A bundled reference generator by name instead of --checkpoint "
                             "(see docs/model_card.md) [default: the newest bundled one].")(f)


DEVICE_HELP = "cpu, cuda, cuda:N, or auto (cuda when available)."
AMP_HELP = "bf16 autocast, none, or auto (bf16 on CUDA, none on CPU)."


@click.command("train-ref")
@click.option("--data", required=True, multiple=True, type=click.Path(exists=True),
              help="Build directory (manifest.json); repeat to train on the train splits of several builds.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--data-repeat", type=NumberList(int, minimum=1), default=None,
              help="Times each --data build is listed per epoch, comma-separated in --data order (e.g. 1,4).")
@click.option("--steps", type=NumberList(int, 3, minimum=0), default="10000,10000,40000", show_default=True,
              help="Steps of stages 1, 2, 3 (pre-train block 1, pre-train block 2, joint with both Ds); 0 skips.")
@click.option("--batch-size", default=64, show_default=True, help="Global batch (split over the ranks).")
@click.option("--lrs", type=NumberList(float, 3, minimum=0), default="1e-4,1e-4,1e-3", show_default=True,
              help="Adam learning rates of blocks 1, 2, 3.")
@click.option("--lr-d", default=1e-4, show_default=True, help="Adam learning rate of Local-D and Global-D.")
@click.option("--betas", type=NumberList(float, 2, minimum=0), default="0.9,0.999", show_default=True, help="Adam betas.")
@click.option("--warmup", default=0, show_default=True, help="Linear warm-up steps at the start of each stage.")
@click.option("--lr-decay", type=click.Choice(["none", "cosine", "step"]), default="none", show_default=True,
              help="LR decay within each stage: cosine to --lr-decay-min x, or x --lr-decay-gamma at each milestone.")
@click.option("--lr-decay-min", default=0.0, show_default=True, help="cosine: final LR factor.")
@click.option("--lr-decay-gamma", default=0.1, show_default=True, help="step: factor at each milestone.")
@click.option("--lr-decay-milestones", type=NumberList(float, minimum=0), default="0.5,0.75", show_default=True,
              help="step: milestones as fractions of each stage.")
@click.option("--ema", "ema_decay", type=float, default=None,
              help="Keep an EMA of the generator with this decay (e.g. 0.999); it is validated and exported.")
@click.option("--grad-clip", type=float, default=None, help="Clip the global gradient norm (G and D) to this value.")
@click.option("--no-stage1-adversarial", is_flag=True,
              help="Stage 1 without Eq. 12's psi*L_adv^l term (and without training Local-D).")
@click.option("--stage2-trains", type=click.Choice(["block2", "blocks12"]), default="block2", show_default=True,
              help="Stage 2 trains block 2 only (block 1 frozen) or blocks 1 and 2.")
@click.option("--seed", default=0, show_default=True,
              help="Seed of the weight initialisation, the epoch order and the re-mask draws.")
@click.option("--widths", type=NumberList(int, 3, minimum=1), default="128,64,32", show_default=True,
              help="Generator widths (channels) of UI-blocks 1, 2, 3.")
@click.option("--public-code", is_flag=True, help="Public code's architecture choices (ProUIGANConfig.public_code).")
@click.option("--landmark-input", type=click.Choice(["learned", "gt", "none"]), default="learned",
              show_default=True, help="Block-1 landmark input: learned prior, ground truth (Table II P+GT) "
                                      "or none (P-FP).")
@click.option("--prior", "prior_kind", type=click.Choice(["heatmaps", "points"]), default="heatmaps",
              show_default=True,
              help="What the learned prior predicts: 16x16 heatmaps, or the 68 points (rendered as heatmaps).")
@click.option("--heatmap-residual", is_flag=True,
              help="Each block's heatmaps = its landmark input + a correction (the prior refined block by block).")
@click.option("--variant", type=click.Choice(["full", "lg-dagger", "lg-star", "lg-plus", "lg-minus"]),
              default="full", show_default=True,
              help="Table III loss set: full = L_G; lg-dagger without L_adv^g; lg-star = L_mse+L_f+L_h; "
                   "lg-plus = L_f on blocks 2-3 only; lg-minus = L_mse+L_h.")
@click.option("--loss-weights", default=None,
              help="Override weights, e.g. 'alpha=0.01,psi=0.01,gamma=10,10,1,heatmap=1,prior=1' "
                   "(gamma: blocks 1, 2, 3; heatmap: every block's L_h; prior: the learned prior's L_h).")
@click.option("--loss-reduction", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
              help="Element mean, or Eqs. 4-7 read literally (sum per image).")
@click.option("--heatmap-norm", type=click.Choice(["target", "none"]), default="target", show_default=True,
              help="L_h normalised by the targets' energy (all-zero prediction = 1), or as reduced.")
@click.option("--stop-prior-gradients", is_flag=True,
              help="Keep the image losses out of the landmark prior and the heatmap heads (stop-gradients).")
@click.option("--adversarial", type=click.Choice(["log", "lsgan"]), default="log", show_default=True,
              help="Adversarial loss: the paper's log loss, or least squares (LSGAN).")
@click.option("--remask", default=None,
              help="Draw a fresh mask every epoch: 'build' (the build's mask spec), a mask kind or a JSON spec.")
@click.option("--heatmaps-on-device", is_flag=True,
              help="Render the ground-truth heatmaps from the landmarks on the training device instead of loading them.")
@click.option("--no-vgg", is_flag=True, help="Train without L_f and L_style (no VGG weights needed).")
@click.option("--download-vgg", is_flag=True,
              help="Fetch torchvision's VGG-16/19 ImageNet files into torch hub's cache if they are not there.")
@click.option("--vgg16", default=None, help="VGG-16 ImageNet state dict (else $OCCFACE_VGG16, $OCCFACE_VGG_DIR, torch hub cache).")
@click.option("--vgg19", default=None, help="VGG-19 ImageNet state dict (else $OCCFACE_VGG19, $OCCFACE_VGG_DIR, torch hub cache).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + " Under torchrun, cuda means cuda:$LOCAL_RANK.")
@click.option("--amp", type=click.Choice(["auto", "bf16", "none"]), default="auto", show_default=True, help=AMP_HELP)
@click.option("--channels-last", is_flag=True, help="channels_last memory format for models and inputs.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the generator.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader worker processes per rank [default: min(4, available cores)]; 0 = load in the main process.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (torch.set_num_threads).")
@click.option("--ckpt-every", default=1000, show_default=True, help="Write last.pt every N steps.")
@click.option("--log-every", default=10, show_default=True, help="TensorBoard scalars (and the NaN check) every N steps.")
@click.option("--image-every", default=500, show_default=True, help="TensorBoard image grid every N steps.")
@click.option("--grid-size", default=8, show_default=True, help="Faces in the image grid.")
@click.option("--keep-every", default=0, show_default=True,
              help="Also keep the generator of every N-th step (generator-stepN.pt); 0: never.")
@click.option("--val-every", default=0, show_default=True,
              help="Score the test split (PSNR/SSIM per block, prior NME) into TensorBoard every N steps; 0: never.")
@click.option("--val-images", default=256, show_default=True, help="Test faces the periodic validation scores.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.pt (same options; starts fresh if none).")
@click.option("--stop-at-step", type=int, default=None, help="Stop (with a checkpoint) after this global step.")
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this many minutes.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="tqdm bar (off under -q).")
def train_ref(data, out, data_repeat, steps, batch_size, lrs, lr_d, betas, warmup, lr_decay, lr_decay_min, lr_decay_gamma,
              lr_decay_milestones, ema_decay, grad_clip, no_stage1_adversarial, stage2_trains, seed, widths,
              public_code, landmark_input, prior_kind, heatmap_residual, variant, loss_weights, loss_reduction, heatmap_norm,
              stop_prior_gradients, adversarial, remask, heatmaps_on_device, no_vgg, download_vgg, vgg16, vgg19,
              device, amp, channels_last, compile_, workers, threads, ckpt_every, log_every, image_every,
              grid_size, keep_every, val_every, val_images, resume, stop_at_step, max_minutes, progress):
    """Train the Pro-UIGAN reference model: the paper's three stages, checkpoints, TensorBoard.

    Multi-GPU / multi-node: run the same command under torchrun, e.g.
    ``torchrun --nproc_per_node=8 -m occface_cli.main train-ref ...``."""
    from occface import train as T
    from occface.data import LoaderConfig
    from occface.errors import OccfaceError
    from occface.model import LossWeights, ProUIGANConfig, VGGWeightsCorrupt, VGGWeightsMissing
    from occface.runtime import available_cores

    env = os.environ
    if threads:
        import torch

        torch.set_num_threads(threads)
    device = _device(device)
    amp = _amp(amp, device)
    if workers is None:
        workers = min(4, available_cores())
    make = ProUIGANConfig.public_code if public_code else ProUIGANConfig
    sources = vgg_sources_from_env(env)
    try:
        model = make(widths=widths, landmark_input=landmark_input, detach_prior=stop_prior_gradients,
                     detach_heatmaps=stop_prior_gradients, prior_kind=prior_kind, heatmap_residual=heatmap_residual)
        loss = LossWeights.preset(variant, adversarial=adversarial, reduction=loss_reduction,
                                  heatmap_norm=heatmap_norm, **_loss_weights(loss_weights))
        loader = None
        if remask is not None:
            from .build_cmd import mask_spec_from_option

            spec = "build" if remask == "build" else mask_spec_from_option(remask, "--remask")
            loader = LoaderConfig(split="train", heatmaps=() if heatmaps_on_device else model.heatmap_specs,
                                  range="[-1,1]", dtype="uint8", remask=spec)
        if data_repeat and len(data_repeat) != len(data):
            raise click.BadParameter(f"needs one value per --data ({len(data)}), got {len(data_repeat)}",
                                     param_hint="--data-repeat")
        cfg = T.TrainConfig(
            model=model, loss=loss, loader=loader,
            stage_steps=steps, batch_size=batch_size, lrs=lrs, lr_d=lr_d,
            betas=betas, warmup_steps=warmup, lr_decay=lr_decay,
            lr_decay_min=lr_decay_min, lr_decay_gamma=lr_decay_gamma, lr_decay_milestones=lr_decay_milestones,
            ema_decay=ema_decay, grad_clip=grad_clip,
            stage1_adversarial=not no_stage1_adversarial, stage2_trains=stage2_trains, seed=seed,
            data_repeat=data_repeat or (),
            amp=amp, channels_last=channels_last, no_vgg=no_vgg, heatmaps_on_device=heatmaps_on_device,
            device=device, num_workers=workers,
            ckpt_every=ckpt_every, log_every=log_every, image_every=image_every, grid_size=grid_size,
            compile=compile_,
            vgg16=vgg16 or sources["vgg16"].get("path"), vgg19=vgg19 or sources["vgg19"].get("path"),
            vgg_hub_dir=sources["vgg16"]["hub_dir"], vgg_download=download_vgg,
            keep_every=keep_every, val_every=val_every, val_images=val_images)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    world = int(env.get("WORLD_SIZE", "1"))
    ctx = None
    if world > 1:
        ctx = T.init_distributed(int(env["RANK"]), world, int(env.get("LOCAL_RANK", "0")),
                                 env.get("MASTER_ADDR", "127.0.0.1"), env.get("MASTER_PORT", "29500"),
                                 device)
    main_rank = ctx is None or ctx.rank == 0
    log = info if main_rank else (lambda s: None)
    if main_rank and not heatmaps_on_device:
        for d in data:
            with user_errors():
                note = T.heatmap_note(cfg, d)
            if note:
                info(note + "; or pass --heatmaps-on-device to render them on the training device")
    try:
        summary = T.train(cfg, list(data) if len(data) > 1 else data[0], out, dist=ctx, resume=resume,
                          stop_at_step=stop_at_step,
                          max_seconds=None if max_minutes is None else max_minutes * 60,
                          progress=progress and main_rank and not is_quiet(), log=log)
    except T.RunExists as exc:
        raise click.ClickException(f"{exc}: pass --resume to continue it, or choose another --out") from None
    except VGGWeightsMissing:
        raise click.ClickException(vgg_hint(sources["vgg16"]["hub_dir"])) from None
    except VGGWeightsCorrupt as exc:
        raise click.ClickException(f"{exc} (delete it and pass --download-vgg again)") from None
    except (OccfaceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if ctx is not None:
            import torch.distributed as tdist

            if tdist.is_initialized():
                tdist.destroy_process_group()
    if main_rank:
        click.echo(json.dumps({k: v for k, v in summary.items() if k != "losses"}))


@click.command("validate")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint (.pt) of train-ref [default: the bundled reference weights].")
@_weights_option
@click.option("--baselines-only", is_flag=True, help="Score only the three training-free baselines.")
@click.option("--data", required=True, type=click.Path(exists=True), help="Build directory.")
@click.option("--split", default="test", show_default=True, help="Split of the build to score (train, test, ...).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Report directory [default: CHECKPOINT_DIR/validate-SPLIT-STEM, or ./validate-SPLIT].")
@click.option("--y-channel", is_flag=True, help="Score the BT.601 Y channel instead of RGB.")
@click.option("--crop", default=0, show_default=True, help="Pixels cropped from every border before scoring.")
@click.option("--batch-size", default=64, show_default=True, help="Images per generator forward pass.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--amp", type=click.Choice(["auto", "bf16", "none"]), default="auto", show_default=True, help=AMP_HELP)
@click.option("--channels-last", is_flag=True, help="channels_last memory format for the model and its inputs.")
@click.option("--no-downstream", is_flag=True, help="Skip the dlib metrics (landmark NRMSE, identity).")
@click.option("--no-identity", is_flag=True, help="Skip the face-descriptor distance (the slow part).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes for the dlib metrics; 0 = all available cores.")
@click.option("--limit", type=int, default=None, help="Score only the first N images of the split.")
@click.option("--grid", "grid_size", default=8, show_default=True, help="Faces in grid.png.")
@click.option("--telea-radius-lr", default=1.0, show_default=True,
              help="Telea inpainting radius (px) of the telea-lr+bicubic baseline, at 16 px.")
@click.option("--telea-radius-hr", default=3.0, show_default=True,
              help="Telea inpainting radius (px) of the bicubic+telea-hr baseline, at 128 px.")
@click.option("--progress/--no-progress", default=None,
              help="tqdm bar with ETA (default: when stderr is a terminal; off under -q).")
def validate(checkpoint, weights_name, baselines_only, data, split, out, y_channel, crop, batch_size, device, amp, channels_last,
             no_downstream, no_identity, workers, limit, grid_size, telea_radius_lr, telea_radius_hr, progress):
    """PSNR / SSIM (with breakdowns, per UI-block and of the landmark prior), landmark NRMSE and
    identity distance of a checkpoint (default: the bundled reference weights) and three
    training-free baselines; writes report.json, report.md, a labelled grid.png and
    psnr_by_mask.png (PSNR per square size and hole-ratio bucket, model and baselines)."""
    from occface.errors import OccfaceError
    from occface.evaluate import validate as V
    from occface.runtime import available_cores

    device = _device(device)
    workers = workers or available_cores()
    log = info
    if baselines_only and (checkpoint or weights_name):
        raise click.UsageError("--baselines-only scores no model: drop --checkpoint / --weights")
    if checkpoint and weights_name:
        raise click.UsageError("give --checkpoint or --weights, not both")
    if checkpoint is None and not baselines_only:
        checkpoint = _bundled("validate", log, weights_name)
        if out is None:
            out = f"validate-{split}-{weights_name or 'bundled'}"
    if out is None:
        out = V.default_out_dir(checkpoint, split)
    try:
        cfg = V.ValidateConfig(split=split, y_channel=y_channel, crop=crop, batch_size=batch_size, device=device,
                               amp=_amp(amp, device), channels_last=channels_last, downstream=not no_downstream,
                               identity=not (no_downstream or no_identity), workers=workers, limit=limit,
                               grid_size=grid_size, telea_radius_lr=telea_radius_lr,
                               telea_radius_hr=telea_radius_hr)
        report = V.validate(checkpoint, data, out, cfg, log=log, progress=False if is_quiet() else progress)
    except (ValueError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from None
    for w in report.get("warnings") or []:
        click.echo(f"warning: {w}", err=True)
    click.echo(V.table_markdown(report))
    if report.get("blocks"):
        click.echo(V.blocks_markdown(report))
    if report.get("speed"):
        click.echo(f"model inference: {report['speed']['model_images_per_s']:.1f} images/s "
                   f"(batch {batch_size}, {device}, amp {cfg.amp})")
    click.echo("report: " + " | ".join(report["files"].values()))


@click.command("hallucinate")
@click.argument("lr_images", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint (.pt) written by train-ref [default: the bundled reference weights].")
@_weights_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output directory (never an input's own file: a clash is refused).")
@click.option("--hr", "hr_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Aligned HR face photo (repeatable; each needs a --mask).")
@click.option("--mask", "mask_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Mask image for the matching --hr: nonzero = missing.")
@click.option("--fill", type=click.Choice(["zeros", "mean", "constant"]), default="zeros", show_default=True,
              help="How the hole of an --hr photo is filled before downsampling.")
@click.option("--stages", is_flag=True, help="Also write the 32x32 and 64x64 outputs of blocks 1 and 2.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--amp", type=click.Choice(["auto", "bf16", "none"]), default="auto", show_default=True, help=AMP_HELP)
def hallucinate(lr_images, checkpoint, weights_name, out, hr_paths, mask_paths, fill, stages, device, amp):
    """Write 128x128 PNGs from occluded 16x16 LR images, or from HR photos plus mask files."""
    from occface.errors import OccfaceError
    from occface.evaluate.hallucinate import hallucinate as run
    from occface.faces.occlude import FillConfig

    device = _device(device)
    if checkpoint and weights_name:
        raise click.UsageError("give --checkpoint or --weights, not both")
    if checkpoint is None:
        checkpoint = _bundled("run", info, weights_name)
    try:
        run(checkpoint, out, lr_images, hr_paths, mask_paths, fill=FillConfig(mode=fill), device=device,
            amp=_amp(amp, device), stages=stages, log=info)
    except (ValueError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from None


@click.command("export-weights")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .pt (its card: the same name, .json).")
@click.option("--fp32", is_flag=True, help="Keep float32 tensors (default: float16, half the size).")
@click.option("--raw", is_flag=True, help="Export the raw weights even when the checkpoint keeps an EMA.")
@click.option("--card", "card_json", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON object merged into the card (data, split, hardware, wall time, validation tables...).")
def export_weights(checkpoint, out, fp32, raw, card_json):
    """Write a checkpoint's generator as a small weights file with a JSON card (SHA-256, config, step)."""
    from occface.errors import OccfaceError
    from occface.train.checkpoint import export_generator

    extra = None
    if card_json:
        with open(card_json, encoding="utf-8") as fh:
            extra = json.load(fh)
        if not isinstance(extra, dict):
            raise click.BadParameter("the card must be a JSON object", param_hint="--card")
    try:
        meta = export_generator(checkpoint, out, half=not fp32, ema=not raw, card=extra)
    except (ValueError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out}: {meta['bytes'] / 1e6:.2f} MB {meta['dtype']}, step {meta['step']}, sha256 {meta['sha256']}")
