"""``occface card``: the dataset card of a build."""

from __future__ import annotations

import click

from .common import info, user_errors


@click.command()
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--gallery", default=12, show_default=True, type=click.IntRange(min=0),
              help="Samples in the labelled gallery.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random choice of gallery samples.")
@click.option("--command", "command_line", default=None,
              help="The command that made the build, as it should appear on the card "
                   "[default: reconstructed from the build's config].")
def card(build_dir, gallery, seed, command_line):
    """Write BUILD/card.md and BUILD/card.html (one self-contained page, images embedded): what was
    built, counts, rejections, plots, a sample gallery and datasheet sections."""
    from occface.card import CardConfig, write_card

    with user_errors(OSError):
        paths = write_card(build_dir, CardConfig(gallery=gallery, seed=seed, command=command_line), log=info)
    click.echo(f"dataset card -> {paths['markdown']} | {paths['html']}")
