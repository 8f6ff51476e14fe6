"""What every command shares: list option types, ``-q/-v`` logging, and mapping library errors.

Library code reports progress through the ``occface`` logger (or the ``log=`` callbacks the
commands point at it); ``-q`` shows warnings only, the default shows progress, ``-v`` adds
debug detail.  Results a command exists to print go to stdout with ``click.echo``.
"""

from __future__ import annotations

import contextlib
import logging
import sys

import click

LOGGER = logging.getLogger("occface")


class NumberList(click.ParamType):
    """A comma-separated list of ints or floats (``--widths 128,64,32``), optionally of a fixed length.

    A bad value names the option: ``Invalid value for '--widths': 'x' is not an integer in '8,x'``.
    """

    def __init__(self, kind: type = int, length: int | None = None, minimum: float | None = None):
        self.kind, self.length, self.minimum = kind, length, minimum
        what = "integers" if kind is int else "numbers"
        self.name = f"{length} comma-separated {what}" if length else f"comma-separated {what}"

    def get_metavar(self, param, ctx=None):  # click >= 8.2 passes ctx
        n = self.length or 2
        return ",".join(["INT" if self.kind is int else "FLOAT"] * n) + ("" if self.length else ",...")

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = [t.strip() for t in str(value).split(",") if t.strip()]
        out = []
        for t in parts:
            try:
                v = self.kind(t)
            except ValueError:
                self.fail(f"{t!r} is not {'an integer' if self.kind is int else 'a number'} in {value!r}", param, ctx)
            if self.minimum is not None and v < self.minimum:
                self.fail(f"{t!r} is below the minimum {self.minimum:g} in {value!r}", param, ctx)
            out.append(v)
        if not out:
            self.fail(f"{value!r} holds no values", param, ctx)
        if self.length is not None and len(out) != self.length:
            self.fail(f"needs {self.length} comma-separated values, got {len(out)} in {value!r}", param, ctx)
        return tuple(out)


class TextList(click.ParamType):
    """A comma-separated list of names (``--heatmaps fhc4@64,pu7@16``)."""

    name = "comma-separated list"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        return tuple(t.strip() for t in str(value).split(",") if t.strip())


INTS = NumberList(int)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (click's test runner swaps it per invocation)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def set_verbosity(quiet: bool, verbose: int) -> None:
    """Point the ``occface`` logger at stderr: warnings only (quiet), info (default), debug (verbose)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    LOGGER.setLevel(level)
    if not any(getattr(h, "_occface_cli", False) for h in LOGGER.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._occface_cli = True
        LOGGER.addHandler(handler)
    LOGGER.propagate = False


def _verbosity_callback(ctx, param, value):
    store = ctx.ensure_object(dict)  # shared with the parent group: ``occface -q masks stats`` works too
    store[param.name] = max(store.get(param.name, 0), int(value))
    set_verbosity(bool(store.get("quiet", 0)), store.get("verbose", 0))
    return value


def add_verbosity(cmd: click.Command) -> None:
    """Give ``cmd`` (and, for a group, every command under it) ``-q/--quiet`` and ``-v/--verbose``."""
    names = {o for p in cmd.params for o in getattr(p, "opts", ())}
    if "-q" not in names:
        cmd.params.append(click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, is_eager=True,
                                       callback=_verbosity_callback,
                                       help="Print warnings and results only (no progress messages or bars)."))
        cmd.params.append(click.Option(["-v", "--verbose"], count=True, expose_value=False, is_eager=True,
                                       callback=_verbosity_callback, help="Print debug detail too."))
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_verbosity(sub)


def is_quiet() -> bool:
    return LOGGER.getEffectiveLevel() > logging.INFO


def progress_default(progress: bool | None) -> bool | None:
    """A ``--progress/--no-progress`` value, off under ``-q``; None = when stderr is a terminal."""
    return False if is_quiet() else progress


def info(message: str) -> None:
    """Progress for the user (stderr; hidden by ``-q``)."""
    LOGGER.info(message)


@contextlib.contextmanager
def user_errors(*extra: type, hint: str | None = None):
    """Turn the library's user-facing errors into one-line click errors (no traceback)."""
    from occface.errors import OccfaceError

    try:
        yield
    except (OccfaceError, ValueError, FileNotFoundError, *extra) as exc:
        raise click.ClickException(str(exc) + (f" ({hint})" if hint else "")) from None
