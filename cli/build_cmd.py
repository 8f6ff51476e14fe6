"""``occface build | inspect | verify | join`` and ``occface bench build``."""

from __future__ import annotations

import json
import sys
import warnings

import click

from occface import build as build_mod
from occface import db as db_mod
from occface import degrade as degrade_mod
from occface import masks
from occface.errors import InputsChanged, OccfaceError
from occface.faces.align import AlignConfig
from occface.faces.detect import DETECTORS, MULTI_FACE
from occface.faces.occlude import FILL_MODES, FillConfig
from occface.format import manifest as manifest_fmt

from .common import INTS, LOGGER, NumberList, TextList, info, progress_default, user_errors


def _plain_warning(message, category, filename, lineno, line=None):
    # A partial database copy is a finding for the user, not a code location: print it plainly.
    return f"WARNING: {message}\n"


def _build_log(line: str) -> None:
    # the build's findings ("WARNING: ...") stay visible under -q; its progress lines do not
    (LOGGER.warning if line.startswith("WARNING") else info)(line)


def mask_spec_from_option(text: str, option: str = "--mask"):
    """A mask option's value (preset name, JSON, or @file.json) -> spec; a bad one names the option."""
    try:
        return masks.from_text(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def degrade_spec_from_option(text: str, option: str = "--degrade"):
    """A degradation option's value (preset name, JSON, or @file.json) -> spec; a bad one names the option."""
    try:
        return degrade_mod.from_text(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command()
@click.option("--db", "db_name", type=click.Choice(sorted(db_mod.SOURCES)), required=True, help="Database adapter.")
@click.option("--root", type=click.Path(file_okay=False), help="Database root (not for --db sample).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output build directory.")
@click.option("--workers", default=0, show_default=True, help="Processes; 0 = all cores.")
@click.option("--seed", default=0, show_default=True, help="Base seed for every per-sample random choice.")
@click.option("--num-shards", "num_parts", default=1, show_default=True, help="Partitions of the build (job array size).")
@click.option("--shard-index", "part_index", default=0, show_default=True, help="Which partition this run builds.")
@click.option("--shard-size", default=256, show_default=True, help="Input photos per HDF5 shard.")
@click.option("--detector", type=click.Choice(DETECTORS), default=None,
              help="Face detector [default: hog; hog+cnn for --db multipie, whose profile poses defeat HOG].")
@click.option("--hog-upsample", type=INTS, default="0,1", show_default=True,
              help="HOG upsample levels (comma-separated integers) tried in turn until a face is found.")
@click.option("--multi-face", type=click.Choice(MULTI_FACE), default="largest", show_default=True,
              help="Photos with several faces: keep the largest face, every face, or reject the photo.")
@click.option("--min-face", default=0, show_default=True, help="Reject faces whose box is smaller (px).")
@click.option("--margin", default=0.2, show_default=True, help="Template margin (occface-5pt-v1).")
@click.option("--mask", "mask_text", default="square", show_default=True,
              help="Mask preset (square, m1..m5, pconv, bucket1..6, lama-*, facial parts, ..., occluders: "
                   "sunglasses, eyeglasses, face-mask, scarf, hand, hair, object, occluders), bundled set "
                   "(pconv128-v1, square128-v1), inline JSON spec or @spec.json (docs/masks.md).")
@click.option("--fill", type=click.Choice(FILL_MODES), default="zeros", show_default=True,
              help="What replaces the missing pixels of the occluded HR before it is downsampled.")
@click.option("--degrade", "degrade_text", default="none", show_default=True,
              help="How the LR is formed: none (bilinear downsample), gfpgan, light, heavy, or a JSON spec / "
                   "@spec.json (docs/degrade.md).")
@click.option("--degrade-hr", is_flag=True, help="Also store hr_occluded degraded by the same draw, at the HR size.")
@click.option("--store-alpha", is_flag=True, help="Store the occluders' alpha (dataset `alpha`) beside the mask.")
@click.option("--heatmaps", type=TextList(), default="fhc4@64", show_default=True,
              help="Stored landmark heatmaps, comma-separated GROUPING@SIZE (train-ref's default model reads "
                   "all68@16,all68@32,all68@64).")
@click.option("--sigma", default=1.0, show_default=True, help="Heatmap Gaussian sigma in heatmap pixels.")
@click.option("--resize-rule", type=click.Choice(["bilinear-aa", "bilinear"]), default="bilinear-aa", show_default=True,
              help="128 -> 16 px downsampling: antialiased bilinear (area-weighted) or plain 4-tap bilinear.")
@click.option("--identity-from-parent", is_flag=True, help="folder: identity = parent folder name.")
@click.option("--test-fraction", default=0.1, show_default=True, help="Fraction of identities in the test split.")
@click.option("--db-option", "db_options", multiple=True, metavar="KEY=VALUE",
              help="Database option, repeatable (e.g. multipie: cameras=05_1,14_0 yaw_range=-45,45 "
                   "expressions=neutral,smile illuminations=7 train_subjects=250 protocol=prouigan; "
                   "celeba-hq: split=official|identity|paper|paper-index; helen: split=official|paper augment=x8). "
                   "See manifests/README.md.")
@click.option("--rebuild-changed", is_flag=True,
              help="When photos were added, removed or changed since some shards were built, rebuild just those "
                   "shards (default: stop and say what changed).")
@click.option("--progress/--no-progress", default=None, help="tqdm bar (default: when stderr is a terminal).")
def build(db_name, root, out, workers, seed, num_parts, part_index, shard_size, detector, hog_upsample, multi_face,
          min_face, margin, mask_text, fill, degrade_text, degrade_hr, store_alpha, heatmaps, sigma, resize_rule,
          identity_from_parent, test_fraction, db_options, rebuild_changed, progress):
    """Build HDF5 shards of occluded LR / clean HR pairs from a face database.

    One build writes into an --out folder at a time; --out may not lie inside --root.  folder
    options: --db-option follow_links=true (walk into links to folders), --db-option
    duplicates=reject (reject byte-identical copies instead of keeping them in one split)."""
    if db_name == "sample" and root:
        raise click.UsageError("--db sample takes no --root: its photos ship with scikit-image")
    if db_name != "sample" and not root:
        raise click.UsageError(f"--db {db_name} needs --root")
    warnings.formatwarning = _plain_warning
    try:
        source = db_mod.open_database(db_name, root, db_options, test_fraction=test_fraction,
                                      identity_from_parent=identity_from_parent)
        cfg = build_mod.BuildConfig(
            detect=db_mod.detect_config(db_name, detector,
                                        hog_upsample=hog_upsample,
                                        multi_face=multi_face, min_face_px=min_face),
            align=AlignConfig(margin=margin),
            mask=mask_spec_from_option(mask_text),
            fill=FillConfig(mode=fill),
            degrade=degrade_spec_from_option(degrade_text),
            degrade_hr=degrade_hr,
            store_alpha=store_alpha,
            heatmaps=heatmaps,
            heatmap_sigma=sigma,
            resize_rule=resize_rule,
            seed=seed,
            shard_size=shard_size,
        )
        build_mod.build(source, cfg, out, workers=workers,
                        partition=build_mod.Partition(num_parts, part_index), progress=progress_default(progress),
                        log=_build_log, rebuild_changed=rebuild_changed)
    except InputsChanged as exc:
        raise click.ClickException(f"{exc} (--rebuild-changed rebuilds just those shards)") from exc
    except (ValueError, FileNotFoundError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("inspect")
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--png", default=None, help="Contact sheet path (default BUILD/contact_sheet.png).")
@click.option("-n", "count", default=12, show_default=True, help="Samples on the contact sheet.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random choice of contact-sheet samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
@click.option("--no-sheet", is_flag=True, help="Do not write the contact sheet.")
def inspect_cmd(build_dir, png, count, seed, as_json, no_sheet):
    """Print a summary of a build (counts by split, mask kind, detector, rejection) and write a
    labelled contact-sheet PNG of random samples."""
    from occface.build import summary as insp

    with user_errors():
        s = insp.summary(build_dir)
    s.pop("config")
    click.echo(json.dumps(s, indent=1) if as_json else insp.format_summary(s, build_dir))
    if s["totals"]["samples"] and not no_sheet:
        png = png or f"{build_dir.rstrip('/')}/contact_sheet.png"
        with user_errors(OSError):
            k = insp.contact_sheet(build_dir, png, n=count, seed=seed)
        info(f"contact sheet ({k} samples, one per row: HR | occluded HR | mask | LR x8 | heatmaps) -> {png}")


@click.command()
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--quick", is_flag=True, help="Check the manifest, shard sizes and headers only (no re-hash).")
def verify(build_dir, quick):
    """Check a build against its manifest (its own digest and sums, every shard's size, header and, unless
    --quick, SHA-256, splits and rejections); exit 1 on any mismatch."""
    try:
        problems = manifest_fmt.verify(build_dir, quick=quick)
    except OccfaceError as exc:
        raise click.ClickException(str(exc)) from exc
    for p in problems:
        click.echo(p, err=True)
    if problems:
        click.echo(f"FAILED: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    n = len(manifest_fmt.load_manifest(build_dir)["shards"])
    click.echo(f"OK: {n} shard(s) match the manifest" + (" (sizes and headers)" if quick else ""))


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.argument("part_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False))
def join(out_dir, part_dirs):
    """Join partition manifests (from OUT_DIR and any PART_DIRS) into OUT_DIR/manifest.json."""
    try:
        m = manifest_fmt.join(out_dir, list(part_dirs))
    except OccfaceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"joined {len(m['shards'])} shards, {m['totals']['samples']} samples -> {out_dir}/manifest.json")


@click.command()
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of photos (e.g. LFW).")
@click.option("--limit", default=1024, show_default=True, help="Photos to use (first N in key order; 4 default shards).")
@click.option("--rounds", default=3, show_default=True, help="Interleaved repetitions; the fastest is kept.")
@click.option("--out", default=None, help="Scratch directory (default: a temp dir).")
@click.option("--workers", "worker_list", type=NumberList(int, minimum=1), default="1,2", show_default=True,
              help="Worker counts to time (comma-separated).")
@click.option("--degrade", "degrade_list", type=TextList(), default="gfpgan", show_default=True,
              help="Degradation presets also timed at the smallest worker count (comma-separated; '' for none).")
def bench_build(root, limit, rounds, out, worker_list, degrade_list):
    """Pipeline cost vs bare dlib detect+landmarks on the same photos, worker scaling, and degradation cost."""
    from occface.bench import build as bb

    for d in degrade_list:
        degrade_spec_from_option(d)
    res = bb.run(root, limit=limit, workers=list(worker_list), scratch=out, rounds=rounds, log=info,
                 degrade=tuple(degrade_list))
    click.echo(json.dumps(res, indent=1))


@click.command()
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of photos (e.g. LFW).")
@click.option("--limit", default=1024, show_default=True, help="Photos to use (first N in key order).")
@click.option("--rounds", default=5, show_default=True, help="Interleaved repetitions; the fastest is kept.")
@click.option("--out", default=None, help="Scratch directory (default: a temp dir).")
def bench_integrity(root, limit, rounds, out):
    """CPU cost per photo of the build's integrity checks (listing, duplicates, fingerprints, strict decoding)."""
    from occface.bench import integrity as bi

    res = bi.run(root, limit=limit, rounds=rounds, scratch=out, log=info)
    click.echo(json.dumps(res, indent=1))

