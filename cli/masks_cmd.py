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
    """Bundled evaluation mask sets (see docs/masks.md)."""


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


@masks.command()
@click.argument("set_name", metavar="SET")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Check the files against checksums.json.")
def stats(set_name, verify):
    """Print the hole-ratio histogram and per-group / per-bucket counts of SET (bundled name or folder)."""
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
@click.argument("set_name", metavar="SET")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--per-group", default=8, show_default=True, help="Masks shown per group (one row per group).")
def show(set_name, out, per_group):
    """Write a labelled PNG grid of SET: one row per group (its name, mask count and hole-ratio
    range), each mask captioned with its hole ratio; holes white."""
    from occface import pictures

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
def bench_masks(n, rounds, seed):
    """Mask generators vs a PConv-Keras-style baseline, side by side (run on one core: taskset -c 0)."""
    bench_mod.run(n=n, rounds=rounds, seed=seed, echo=click.echo)
