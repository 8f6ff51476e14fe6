"""``--db folder``: any directory tree of photos.

Every regular, non-hidden file under the root is a record: files that turn
out not to be images are *rejected with a reason*, never silently skipped,
so the manifest accounts for everything in the tree.  Identity can be taken
from each file's parent folder (LFW-style ``Name/Name_0001.jpg``); splits are
identity-disjoint with an exact test fraction.  Without identities each file
is its own identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..faces.decode import decode_image
from .base import Datasheet, Record, Source, split_by_identity


@dataclass(frozen=True)
class FolderSource(Source):
    root: str
    identity_from_parent: bool = False
    test_fraction: float = 0.1
    split_salt: str = "occface-split-v1"

    name = "folder"
    datasheet = Datasheet(
        title="A folder of photos",
        citation="Whoever took or collected the photos.",
        licence="That of the photos in the folder: record their source, the consent of the people shown "
                "and their licence before sharing a build.",
        motivation="Building an occluded-face dataset from one's own photos.",
        collection="Every regular file under the root folder is an input record; files that are not usable "
                   "photos are rejected with a reason.",
        composition="As the folder holds; identity from the parent folder when asked, otherwise each photo "
                    "is its own identity.",
    )

    def __post_init__(self):
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"database root {self.root!r} is not a directory")

    def _files(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in filenames:
                if fn.startswith("."):
                    continue
                full = os.path.join(dirpath, fn)
                if os.path.isfile(full):
                    out.append(os.path.relpath(full, self.root).replace(os.sep, "/"))
        return sorted(out)

    def records(self) -> list[Record]:
        files = self._files()
        if not files:
            raise FileNotFoundError(f"no files under {self.root!r}")
        if self.identity_from_parent:
            subject = {f: (f.rsplit("/", 2)[-2] if "/" in f else "") for f in files}
            ids = {f: subject[f] or f for f in files}
        else:
            subject = {f: "" for f in files}
            ids = {f: f for f in files}
        split = split_by_identity(list(ids.values()), self.test_fraction, self.split_salt)
        return [Record(key=f"folder:{f}", source=f, subject=subject[f], split=split[ids[f]]) for f in files]

    def load(self, record: Record) -> np.ndarray:
        return decode_image(os.path.join(self.root, record.source))[0]

    def describe(self) -> dict:
        return {
            "db": "folder",
            "root": os.path.abspath(self.root),
            "identity_from_parent": self.identity_from_parent,
            "test_fraction": self.test_fraction,
            "split_salt": self.split_salt,
            "protocol": {"name": "folder", "version": 1},
        }
