"""The errors occface raises for things a user can get wrong.

Every one carries a one-line message that says what is wrong and, where it helps, what to
do; the message names files and values, never command-line flags (the CLI adds those).
The CLI prints ``str(error)`` for any :class:`OccfaceError` and exits non-zero, without a
traceback.
"""

from __future__ import annotations


class OccfaceError(Exception):
    """Base of occface's user-facing errors."""


class BuildError(OccfaceError):
    """A build cannot be planned, resumed or joined as asked."""


class InputsChanged(BuildError):
    """A resume found shards built from other inputs than the database holds now.

    ``stale``: indices of the shards concerned; ``added`` / ``removed`` / ``modified``: record
    sources (first few are in the message)."""

    def __init__(self, message: str, stale=(), added=(), removed=(), modified=()):
        super().__init__(message)
        self.stale, self.added, self.removed, self.modified = list(stale), list(added), list(removed), list(modified)


class BuildLocked(BuildError):
    """Another build is writing into the same output folder."""


class WriteFailed(BuildError):
    """The output folder cannot be written (full, read-only, no permission)."""


class DataError(OccfaceError):
    """A source is not a finished build or shard, or shards that cannot be mixed."""


class FormatError(OccfaceError):
    """A file is not what its format says (manifest, shard, checkpoint)."""
