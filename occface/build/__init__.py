"""Building a dataset: photos in, verified HDF5 shards and a manifest out.

* :mod:`.config`: :class:`BuildConfig`, everything that determines a build's bytes;
* :mod:`.sample`: one photo -> samples (decode, detect, align, mask, downsample, heatmaps);
* :mod:`.run`: planning shards, worker processes, partitions and resume;
* :mod:`.summary`: counts and the contact sheet of a finished build.

``occface.build.build(source, cfg, out_dir)`` is the entry point.
"""

from ..errors import BuildError
from .config import BuildConfig
from .run import Partition, build, check_identity_disjoint, plan
from .sample import make_sample, process_record, process_records

__all__ = ["BuildConfig", "BuildError", "Partition", "build", "plan", "check_identity_disjoint", "make_sample", "process_record", "process_records"]
