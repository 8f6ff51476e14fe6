"""On-disk formats, each in one place (docs/format.md).

* :mod:`.shards`: the HDF5 shard (write, read attributes / metadata / the loader's index);
* :mod:`.manifest`: ``manifest.json`` (write, read, join partitions, verify);
* :mod:`.canonical`: canonical JSON of configs and file hashes;
* :mod:`.atomic`: the one atomic-write helper everything uses;
* :mod:`.lock`: ``build.lock``, one writer per build folder.

Checkpoints have their own module, :mod:`occface.train.checkpoint`.
"""

from .manifest import MANIFEST, join, load_manifest, manifest_sha256, shard_paths, verify

__all__ = ["MANIFEST", "join", "load_manifest", "manifest_sha256", "shard_paths", "verify"]
