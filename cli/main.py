"""The ``occface`` console script.  Commands are thin: parse options, build a
frozen config, call the library, print.  Every command takes ``-q/--quiet`` and
``-v/--verbose`` (:mod:`.common`).

Errors: a command turns the library's errors (``OccfaceError``, and ``ValueError`` for a bad
option value) into one ``Error: ...`` line and a non-zero exit code.  :func:`run` (the
console script) does the same for anything unexpected, so no traceback reaches a user;
``occface --debug COMMAND ...`` shows the full traceback instead.
"""

from __future__ import annotations

import sys
import traceback

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


DEBUG = {"on": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="occface", help="Print the occface version and exit.")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error instead of one line.")
def main(debug):
    """occface: occluded-face datasets and a Pro-UIGAN reference model."""
    DEBUG["on"] = debug


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
bench.add_command(build_cmd.bench_integrity, "integrity")
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

def run(argv=None) -> None:
    """The console script: :func:`main` with one-line errors (tracebacks only with ``--debug``)."""
    try:
        rc = main.main(args=argv, standalone_mode=False)
    except click.ClickException as exc:
        cause = exc.__cause__ or exc.__context__
        if DEBUG["on"] and cause is not None:
            traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Aborted!", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless --debug
        if DEBUG["on"]:
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(f"Error: internal error ({type(exc).__name__}{': ' + detail if detail else ''}); "
                   "run again with occface --debug ... for the traceback, and please report it", err=True)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    run()
