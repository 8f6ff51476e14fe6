"""Building a dataset: photos in, verified HDF5 shards and a manifest out.

* :mod:`.config`: :class:`BuildConfig`, everything that determines a build's bytes;
* :mod:`.sample`: one photo -> samples (decode, detect, align, mask, downsample, heatmaps);
* :mod:`.run`: planning shards, worker processes, partitions and resume;
* :mod:`.inputs`: the input fingerprint of every shard, and what changed since it was built;
* :mod:`.resume`: which shards are complete or stale, where a build may go, failed writes;
* :mod:`.summary`: counts and the contact sheet of a finished build.

``occface.build.build(source, cfg, out_dir)`` is the entry point.
"""

from ..errors import BuildError, BuildLocked, InputsChanged, WriteFailed
from .config import BuildConfig
from .run import BuildPlan, Partition, build, check_identity_disjoint, pieces, plan, plan_inputs, whole_shards
from .sample import make_sample, process_record, process_records

__all__ = ["BuildConfig", "BuildError", "BuildLocked", "InputsChanged", "WriteFailed", "BuildPlan", "Partition", "build",
           "pieces", "whole_shards", "plan", "plan_inputs", "check_identity_disjoint", "make_sample", "process_record",
           "process_records"]
