"""``occface train-ref``, ``occface validate`` and ``occface hallucinate`` (docs/training.md).

Only this module reads the environment: torchrun's RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT, and OCCFACE_VGG16 / OCCFACE_VGG19 / OCCFACE_VGG_DIR /
TORCH_HOME through ``vgg_sources_from_env``.  The library gets explicit arguments.
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


DEVICE_HELP = "cpu, cuda, cuda:N, or auto (cuda when available)."
AMP_HELP = "bf16 autocast, none, or auto (bf16 on CUDA, none on CPU)."


@click.command("train-ref")
@click.option("--data", required=True, type=click.Path(exists=True), help="Build directory (manifest.json).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--steps", type=NumberList(int, 3, minimum=0), default="10000,10000,40000", show_default=True,
              help="Steps of stages 1, 2, 3 (pre-train block 1, pre-train block 2, joint with both Ds); 0 skips.")
@click.option("--batch-size", default=64, show_default=True, help="Global batch (split over the ranks).")
@click.option("--lrs", type=NumberList(float, 3, minimum=0), default="1e-4,1e-4,1e-3", show_default=True,
              help="Adam learning rates of blocks 1, 2, 3.")
@click.option("--lr-d", default=1e-4, show_default=True, help="Adam learning rate of Local-D and Global-D.")
@click.option("--betas", type=NumberList(float, 2, minimum=0), default="0.9,0.999", show_default=True, help="Adam betas.")
@click.option("--warmup", default=0, show_default=True, help="Linear warm-up steps at the start of each stage.")
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
              show_default=True, help="Block-1 landmark input.")
@click.option("--adversarial", type=click.Choice(["log", "lsgan"]), default="log", show_default=True,
              help="Adversarial loss: the paper's log loss, or least squares (LSGAN).")
@click.option("--remask", default=None,
              help="Draw a fresh mask every epoch: 'build' (the build's mask spec), a mask kind or a JSON spec.")
@click.option("--heatmaps-on-device", is_flag=True,
              help="Render the ground-truth heatmaps from the landmarks on the training device instead of loading them.")
@click.option("--no-vgg", is_flag=True, help="Train without L_f and L_style (no VGG weights needed).")
@click.option("--vgg16", default=None, help="VGG-16 ImageNet state dict (else $OCCFACE_VGG16, $OCCFACE_VGG_DIR, torch hub cache).")
@click.option("--vgg19", default=None, help="VGG-19 ImageNet state dict (else $OCCFACE_VGG19, $OCCFACE_VGG_DIR, torch hub cache).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP + " Under torchrun, cuda means cuda:$LOCAL_RANK.")
@click.option("--amp", type=click.Choice(["auto", "bf16", "none"]), default="auto", show_default=True, help=AMP_HELP)
@click.option("--channels-last", is_flag=True, help="channels_last memory format for models and inputs.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the generator.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader worker processes per rank [default: min(4, available cores)]; 0 = load in the main process.")
@click.option("--ckpt-every", default=1000, show_default=True, help="Write last.pt every N steps.")
@click.option("--log-every", default=10, show_default=True, help="TensorBoard scalars (and the NaN check) every N steps.")
@click.option("--image-every", default=500, show_default=True, help="TensorBoard image grid every N steps.")
@click.option("--grid-size", default=8, show_default=True, help="Faces in the image grid.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.pt (same options; starts fresh if none).")
@click.option("--stop-at-step", type=int, default=None, help="Stop (with a checkpoint) after this global step.")
@click.option("--max-minutes", type=float, default=None, help="Stop (with a checkpoint) after this many minutes.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="tqdm bar (off under -q).")
def train_ref(data, out, steps, batch_size, lrs, lr_d, betas, warmup, no_stage1_adversarial, stage2_trains,
              seed, widths, public_code, landmark_input, adversarial, remask, heatmaps_on_device, no_vgg, vgg16, vgg19, device, amp,
              channels_last, compile_, workers, ckpt_every, log_every, image_every, grid_size, resume,
              stop_at_step, max_minutes, progress):
    """Train the Pro-UIGAN reference model: the paper's three stages, checkpoints, TensorBoard.

    Multi-GPU / multi-node: run the same command under torchrun, e.g.
    ``torchrun --nproc_per_node=8 -m occface_cli.main train-ref ...``."""
    from occface import train as T
    from occface.data import LoaderConfig
    from occface.errors import OccfaceError
    from occface.model import LossWeights, ProUIGANConfig, VGGWeightsMissing, vgg_sources_from_env

    from occface.runtime import available_cores

    env = os.environ
    device = _device(device)
    amp = _amp(amp, device)
    stage_steps = steps
    if workers is None:
        workers = min(4, available_cores())
    make = ProUIGANConfig.public_code if public_code else ProUIGANConfig
    try:
        model = make(widths=widths, landmark_input=landmark_input)
        loader = None
        if remask is not None:
            from .build_cmd import mask_spec_from_option

            spec = "build" if remask == "build" else mask_spec_from_option(remask, "--remask")
            loader = LoaderConfig(split="train", heatmaps=() if heatmaps_on_device else model.heatmap_specs,
                                  range="[-1,1]", dtype="uint8", remask=spec)
        sources = vgg_sources_from_env(env)
        cfg = T.TrainConfig(
            model=model, loss=LossWeights(adversarial=adversarial), loader=loader,
            stage_steps=stage_steps, batch_size=batch_size, lrs=lrs, lr_d=lr_d,
            betas=betas, warmup_steps=warmup,
            stage1_adversarial=not no_stage1_adversarial, stage2_trains=stage2_trains, seed=seed,
            amp=amp, channels_last=channels_last, no_vgg=no_vgg, heatmaps_on_device=heatmaps_on_device,
            device=device, num_workers=workers,
            ckpt_every=ckpt_every, log_every=log_every, image_every=image_every, grid_size=grid_size,
            compile=compile_,
            vgg16=vgg16 or sources["vgg16"].get("path"), vgg19=vgg19 or sources["vgg19"].get("path"),
            vgg_hub_dir=sources["vgg16"]["hub_dir"])
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
        with user_errors():
            note = T.heatmap_note(cfg, data)
        if note:
            info(note + "; or pass --heatmaps-on-device to render them on the training device")
    try:
        summary = T.train(cfg, data, out, dist=ctx, resume=resume, stop_at_step=stop_at_step,
                          max_seconds=None if max_minutes is None else max_minutes * 60,
                          progress=progress and main_rank and not is_quiet(), log=log)
    except T.RunExists as exc:
        raise click.ClickException(f"{exc}: pass --resume to continue it, or choose another --out") from None
    except (VGGWeightsMissing, OccfaceError, ValueError) as exc:
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
              help="Checkpoint (.pt) of train-ref; without it only the baselines are scored.")
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
def validate(checkpoint, data, split, out, y_channel, crop, batch_size, device, amp, channels_last, no_downstream,
             no_identity, workers, limit, grid_size, telea_radius_lr, telea_radius_hr, progress):
    """PSNR / SSIM (with breakdowns), landmark NRMSE and identity distance of a checkpoint
    and three training-free baselines; writes report.json, report.md, a labelled grid.png and
    psnr_by_mask.png (PSNR per square size and hole-ratio bucket, model and baselines)."""
    from occface.errors import OccfaceError
    from occface.evaluate import validate as V
    from occface.runtime import available_cores

    device = _device(device)
    workers = workers or available_cores()
    if out is None:
        out = V.default_out_dir(checkpoint, split)
    try:
        cfg = V.ValidateConfig(split=split, y_channel=y_channel, crop=crop, batch_size=batch_size, device=device,
                               amp=_amp(amp, device), channels_last=channels_last, downstream=not no_downstream,
                               identity=not (no_downstream or no_identity), workers=workers, limit=limit,
                               grid_size=grid_size, telea_radius_lr=telea_radius_lr,
                               telea_radius_hr=telea_radius_hr)
        report = V.validate(checkpoint, data, out, cfg, log=info,
                            progress=False if is_quiet() else progress)
    except (ValueError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(V.table_markdown(report))
    if report.get("speed"):
        click.echo(f"model inference: {report['speed']['model_images_per_s']:.1f} images/s "
                   f"(batch {batch_size}, {device}, amp {cfg.amp})")
    click.echo("report: " + " | ".join(report["files"].values()))


@click.command("hallucinate")
@click.argument("lr_images", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Checkpoint (.pt) written by train-ref.")
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
def hallucinate(lr_images, checkpoint, out, hr_paths, mask_paths, fill, stages, device, amp):
    """Write 128x128 PNGs from occluded 16x16 LR images, or from HR photos plus mask files."""
    from occface.errors import OccfaceError
    from occface.evaluate.hallucinate import hallucinate as run
    from occface.faces.occlude import FillConfig

    device = _device(device)
    try:
        run(checkpoint, out, lr_images, hr_paths, mask_paths, fill=FillConfig(mode=fill), device=device,
            amp=_amp(amp, device), stages=stages, log=info)
    except (ValueError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from None
