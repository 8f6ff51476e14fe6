"""Database adapters.  Each adapter turns a root directory (or an installed
resource) into a sorted list of :class:`~occface.db.base.Record` with splits
assigned, and loads one record's photo as RGB.

Adapters are chosen by name with :func:`get_source`; the mapping is an
explicit dict, not filled by import side effects.
"""

from __future__ import annotations

from .base import Inventory, Record, Source
from .celebahq import CelebAHQSource
from .folder import FolderSource
from .helen import HelenSource
from .multipie import MultiPieSource
from .options import SOURCES, detect_config, get_source, open_database, option_names, parse_options
from .sample import SampleSource

__all__ = ["Inventory", "Record", "Source", "SOURCES", "get_source", "open_database", "detect_config", "option_names",
           "parse_options", "FolderSource", "SampleSource", "MultiPieSource", "CelebAHQSource", "HelenSource"]
