"""``occface masks make | stats | show`` and ``occface bench masks``."""

from __future__ import annotations

import sys

import click

from occface.bench import masks as bench_mod
from occface.masks import make as masks_make
from occface.masks import sets as masksets

from .common import user_errors


@click.group()
def masks():
    """Bundled evaluation mask sets, and mask kinds / occluders on real faces (see docs/masks.md)."""


@masks.command()
@click.argument("spec")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write the set into.")
def make(spec, out):
    """Generate the set SPEC (a spec.json, a set folder or a bundled set name) into --out."""
    try:
        sums = masks_make.make_set(spec, out)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    name = masksets.read_spec(out)["name"]
    click.echo(f"wrote {sums['n']} masks of {name} to {out}")
    for f, h in sums["files"].items():
        click.echo(f"  {f}  sha256 {h}")
    bundled = masks_make.bundled_checksums(name)
    if bundled is not None:
        same = bundled == sums
        click.echo(f"bundled {name}: {'identical' if same else 'DIFFERENT'}")
        if not same:
            sys.exit(1)


def _kind_and_faces(kind, db_name, root, n_faces):
    """(spec, faces) for ``--kind KIND --db DB``: the kind's spec and the database's first faces."""
    from occface import db as db_mod
    from occface.build import preview

    from .build_cmd import mask_spec_from_option

    spec = mask_spec_from_option(kind, "--kind")
    if db_name != "sample" and not root:
        raise click.UsageError(f"--db {db_name} needs --root")
    with user_errors():
        source = db_mod.open_database(db_name, root if db_name != "sample" else None, ())
        return spec, preview.sample_faces(source, n_faces)


def _db_options(f):
    f = click.option("--faces", "n_faces", default=6, show_default=True, help="With --kind: faces (columns) drawn on.")(f)
    f = click.option("--root", type=click.Path(exists=True, file_okay=False),
                     help="With --kind --db folder: the folder of photos.")(f)
    f = click.option("--db", "db_name", type=click.Choice(["sample", "folder"]), default="sample", show_default=True,
                     help="With --kind: the faces to draw on (sample: the photos that ship with scikit-image).")(f)
    return f


@masks.command()
@click.argument("set_name", metavar="[SET]", required=False)
@click.option("--verify/--no-verify", default=True, show_default=True, help="Check the files against checksums.json.")
@click.option("--kind", default=None,
              help="Instead of a SET: a mask kind (preset such as occluders / face-mask, or JSON) drawn on real faces.")
@_db_options
@click.option("--draws", default=20, show_default=True, help="With --kind: draws per face.")
def stats(set_name, verify, kind, db_name, root, n_faces, draws):
    """Print the hole-ratio histogram and per-group / per-bucket counts of SET (bundled name or folder),
    or with --kind the hole ratios of a kind on real faces (per object / style / component)."""
    if kind is not None:
        from occface.build import preview

        spec, faces = _kind_and_faces(kind, db_name, root, n_faces)
        click.echo(f"{kind} on {len(faces)} {db_name} faces x {draws} draws (hole = mask 1 = missing; occluders: "
                   "alpha > 0.5)")
        click.echo(preview.format_stats(preview.mask_stats(spec, faces, draws=draws)))
        return
    if set_name is None:
        raise click.UsageError("give a SET, or --kind KIND")
    if masksets.is_build(set_name):
        raise click.ClickException(f"{set_name} is an occface build, not a mask set: "
                                   f"`occface inspect {set_name}` counts its masks by kind and group, "
                                   f"`occface card {set_name}` plots their hole ratios")
    with user_errors():
        ms = masksets.load_set(set_name)
    click.echo(masksets.format_stats(masksets.stats(ms)))
    if verify:
        problems = masksets.verify(set_name)
        click.echo("\nchecksums: " + ("ok" if not problems else "; ".join(problems)))
        if problems:
            sys.exit(1)


@masks.command()
@click.argument("set_name", metavar="[SET]", required=False)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Picture to write (.png; .jpg with --kind).")
@click.option("--per-group", default=8, show_default=True, help="Masks shown per group (one row per group).")
@click.option("--kind", default=None,
              help="Instead of a SET: a mask kind (preset such as occluders / face-mask, or JSON) drawn on real faces.")
@_db_options
@click.option("--draws", default=2, show_default=True, help="With --kind (not a mixture or an occluder): rows of draws.")
def show(set_name, out, per_group, kind, db_name, root, n_faces, draws):
    """Write a labelled PNG grid of SET: one row per group (its name, mask count and hole-ratio
    range), each mask captioned with its hole ratio; holes white.  With --kind: a labelled grid of
    the kind on real faces as a build stores them (one row per object / style / component)."""
    from occface import pictures

    if kind is not None:
        from occface.build import preview

        spec, faces = _kind_and_faces(kind, db_name, root, n_faces)
        img = preview.mask_grid(spec, faces, draws=draws, title=f"occface build --mask {kind}: hr_occluded "
                                                                  f"(128 px) on {db_name} faces")
        with user_errors(OSError):
            preview.write_picture(out, img)
        click.echo(f"wrote {out} ({len(preview.mask_rows(spec, draws))} rows x {len(faces)} faces)")
        return
    if set_name is None:
        raise click.UsageError("give a SET, or --kind KIND")
    if masksets.is_build(set_name):
        raise click.ClickException(f"{set_name} is an occface build, not a mask set: "
                                   f"`occface inspect {set_name}` draws its samples")
    with user_errors():
        ms = masksets.load_set(set_name)
    with user_errors(OSError):
        pictures.write_png(out, masksets.grid(ms, per_group))
    click.echo(f"wrote {out} ({len(ms.labels)} groups, up to {per_group} masks each)")


@click.command("masks")
@click.option("--n", default=1000, show_default=True, help="Masks per generator per round.")
@click.option("--rounds", default=5, show_default=True, help="Interleaved rounds (medians are reported).")
@click.option("--seed", default=0, show_default=True, help="Base seed of the masks drawn.")
@click.option("--occluders/--no-occluders", default=True, show_default=True,
              help="Also time the occluders (sampled and painted on the sample database's faces).")
def bench_masks(n, rounds, seed, occluders):
    """Mask generators and occluders vs a PConv-Keras-style baseline, side by side (run on one core: taskset -c 0)."""
    bench_mod.run(n=n, rounds=rounds, seed=seed, echo=click.echo, occluders=occluders)
