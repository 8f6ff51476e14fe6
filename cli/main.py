"""The ``occface`` console script.  Commands are thin: parse options, build a
frozen config, call the library, print.  Every command takes ``-q/--quiet`` and
``-v/--verbose`` (:mod:`.common`)."""

from __future__ import annotations

import click

from . import build_cmd
from . import card_cmd
from . import data_cmd
from . import degrade_cmd
from . import export_cmd
from . import masks_cmd
from . import model_cmd
from . import train_cmd
from .common import add_verbosity


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="occface", help="Print the occface version and exit.")
def main():
    """occface: occluded-face datasets and a Pro-UIGAN reference model."""


@main.group()
def bench():
    """Benchmarks (figures are recorded in docs/benchmarks.md)."""


main.add_command(build_cmd.build)
main.add_command(build_cmd.inspect_cmd, "inspect")
main.add_command(build_cmd.verify)
main.add_command(build_cmd.join)
main.add_command(card_cmd.card)
main.add_command(export_cmd.export_cmd, "export")
bench.add_command(build_cmd.bench_build, "build")
# --- further command groups register below (one line each) ---
bench.add_command(data_cmd.bench_data, "data")
bench.add_command(export_cmd.bench_export, "export")
main.add_command(masks_cmd.masks)
main.add_command(degrade_cmd.degrade)
bench.add_command(masks_cmd.bench_masks, "masks")
bench.add_command(model_cmd.bench_model, "model")
bench.add_command(model_cmd.bench_gpu, "gpu")
main.add_command(train_cmd.train_ref, "train-ref")
main.add_command(train_cmd.validate, "validate")
main.add_command(train_cmd.hallucinate, "hallucinate")
main.add_command(train_cmd.export_weights, "export-weights")
add_verbosity(main)  # last: every command registered above gets -q / -v

if __name__ == "__main__":
    main()
