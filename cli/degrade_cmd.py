"""``occface degrade show``: the degradation presets on real faces."""

from __future__ import annotations

import click

from .common import user_errors


@click.group()
def degrade():
    """LR degradation chains (see docs/degrade.md)."""


@degrade.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Picture to write (.png, .jpg).")
@click.option("--preset", "presets", multiple=True,
              help="Preset name or JSON spec / @spec.json, repeatable [default: none, gfpgan, light, heavy].")
@click.option("--db", "db_name", type=click.Choice(["sample", "folder"]), default="sample", show_default=True,
              help="The faces to degrade (sample: the photos that ship with scikit-image).")
@click.option("--root", type=click.Path(exists=True, file_okay=False), help="With --db folder: the folder of photos.")
@click.option("--faces", "n_faces", default=6, show_default=True, help="Faces (columns).")
@click.option("--draws", default=2, show_default=True, help="Rows (draws) per preset.")
@click.option("--seed", default=0, show_default=True, help="Base seed of the degradations drawn.")
def show(out, presets, db_name, root, n_faces, draws, seed):
    """Write a labelled grid: the clean HR, then each preset's 16-px LR (enlarged 8x) of the same faces."""
    from occface import db as db_mod
    from occface import degrade as degrade_mod
    from occface.build import BuildConfig, preview

    from .build_cmd import degrade_spec_from_option

    specs = {}
    for text in presets or ("none", "gfpgan", "light", "heavy"):
        spec = degrade_spec_from_option(text, "--preset")
        specs[spec.name if text in degrade_mod.PRESETS else f"{spec.name} {len(specs) + 1}"] = spec
    if db_name != "sample" and not root:
        raise click.UsageError(f"--db {db_name} needs --root")
    with user_errors():
        faces = preview.sample_faces(db_mod.open_database(db_name, root if db_name != "sample" else None, ()), n_faces)
    img = preview.degrade_grid(specs, faces, BuildConfig(seed=seed), draws=draws,
                               title=f"occface build --degrade PRESET: the 16-px LR of {db_name} faces")
    with user_errors(OSError):
        preview.write_picture(out, img)
    click.echo(f"wrote {out} ({len(specs)} presets x {draws} draws x {len(faces)} faces)")
