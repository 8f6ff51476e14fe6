"""``occface bench data``: the loader against image files + Pillow (figures in docs/benchmarks.md)."""

from __future__ import annotations

import json

import click


@click.command("data")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-n", "n", default=2000, show_default=True, help="Samples timed (a random subset of the build).")
@click.option("--rounds", default=5, show_default=True, help="Interleaved rounds; figures are medians.")
@click.option("--seed", default=0, show_default=True, help="Seed of the sample subset and its order.")
@click.option("--batch-size", default=64, show_default=True, help="DataLoader / get_batch batch size.")
@click.option("--torch/--no-torch", "torch_items", default=True, show_default=True,
              help="Time ShardDataset + DataLoader (else numpy ShardReader.get_batch batches).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON too.")
def bench_data(sources, n, rounds, seed, batch_size, torch_items, as_json):
    """Time complete training items from SOURCES (builds or shards) against JPEG decode + resize.

    Run pinned to one core for per-core figures: ``taskset -c 0 occface bench data BUILD``.
    """
    from occface.bench import data as bench_mod
    from occface.errors import OccfaceError

    try:
        result = bench_mod.run(list(sources), n=n, rounds=rounds, seed=seed, torch_items=torch_items,
                               batch_size=batch_size, echo=click.echo)
    except (ValueError, OccfaceError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, indent=1))
