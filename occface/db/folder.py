"""``--db folder``: any directory tree of photos.

Every entry under the root is accounted for (occface.db.walk): files with an image
extension are records, everything else (hidden entries, annotations and other
non-image files, FIFOs and sockets, dangling links, links to folders unless
``follow_links``, names that are not UTF-8, other builds) is *skipped with a
reason*, listed in the manifest's ``skipped``.  Records that turn out not to be
usable images are *rejected with a reason*.

Identity can be taken from each file's parent folder (LFW-style
``Name/Name_0001.jpg``); splits are identity-disjoint with an exact test
fraction.  Without identities each file is its own identity, so the split is per
photo and may put one person in both splits (:meth:`FolderSource.warnings`).
Files with byte-identical content are one identity group for the split, so a copy
under another name never lands in the other split; with ``duplicates="reject"``
every copy after the first (in key order) is rejected as ``duplicate`` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..faces.decode import decode_image
from .base import Datasheet, Inventory, Record, Source, split_by_identity
from .protocols import parse_bool
from .walk import find_duplicates, walk

DUPLICATE_POLICIES = ("group", "reject")


def _merge_identities(files: list[str], ids: dict[str, str], groups: list[list[str]]) -> dict[str, str]:
    """Identity of each file after joining the identities of files with identical content (union-find;
    the representative is the smallest identity of its component, so it does not depend on order)."""
    parent: dict[str, str] = {}

    def find(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for g in groups:
        roots = sorted({find(ids[f]) for f in g})
        for r in roots[1:]:
            parent[r] = roots[0]
    return {f: find(ids[f]) for f in files}


@dataclass(frozen=True)
class FolderSource(Source):
    root: str
    identity_from_parent: bool = False
    test_fraction: float = 0.1
    split_salt: str = "occface-split-v1"
    follow_links: bool = False  # walk into links to folders (each real folder once)
    duplicates: str = "group"  # byte-identical files: "group" (one identity for the split) or "reject"

    name = "folder"
    datasheet = Datasheet(
        title="A folder of photos",
        citation="Whoever took or collected the photos.",
        licence="That of the photos in the folder: record their source, the consent of the people shown "
                "and their licence before sharing a build.",
        motivation="Building an occluded-face dataset from one's own photos.",
        collection="Every non-hidden file with an image extension under the root folder is an input record; "
                   "every other entry is skipped with a reason, and files that are not usable photos are "
                   "rejected with a reason.",
        composition="As the folder holds; identity from the parent folder when asked, otherwise each photo "
                    "is its own identity.",
    )

    def __post_init__(self):
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"database root {self.root!r} is not a directory")
        object.__setattr__(self, "follow_links", parse_bool(self.follow_links))
        if self.duplicates not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, got {self.duplicates!r}")

    def inventory(self) -> Inventory:
        found, skipped = walk(self.root, self.follow_links)
        if not found:
            what = f" ({len(skipped)} entries skipped, e.g. {skipped[0]['path']}: {skipped[0]['reason']})" if skipped else ""
            raise FileNotFoundError(f"no image files under {self.root!r}{what}")
        files = [rel for rel, _ in found]
        groups = find_duplicates(self.root, found)
        if self.identity_from_parent:
            subject = {f: (f.rsplit("/", 2)[-2] if "/" in f else "") for f in files}
            ids = {f: subject[f] or f for f in files}
        else:
            subject = {f: "" for f in files}
            ids = {f: f for f in files}
        ids = _merge_identities(files, ids, groups)
        split = split_by_identity(list(ids.values()), self.test_fraction, self.split_salt)
        first_of = {}
        if self.duplicates == "reject":
            first_of = {f: g[0] for g in groups for f in g[1:]}
        records = [
            Record(key=f"folder:{f}", source=f, subject=subject[f], split=split[ids[f]],
                   rejection=("duplicate", f"same bytes as {first_of[f]}") if f in first_of else None)
            for f in files
        ]
        stats = {os.path.join(self.root, rel): (st.st_size, st.st_mtime_ns) for rel, st in found}
        return Inventory(records, skipped, groups, stats)

    def records(self) -> list[Record]:
        return self.inventory().records

    def load(self, record: Record) -> np.ndarray:
        return decode_image(os.path.join(self.root, record.source))[0]

    def warnings(self) -> list[str]:
        if self.identity_from_parent:
            return []
        return [f"folder {self.root}: no identities (identity from the parent folder is off), so the split is per "
                "photo and one person's photos may land in both train and test"]

    def describe(self) -> dict:
        return {
            "db": "folder",
            "root": os.path.abspath(self.root),
            "identity_from_parent": self.identity_from_parent,
            "test_fraction": self.test_fraction,
            "split_salt": self.split_salt,
            "follow_links": self.follow_links,
            "duplicates": self.duplicates,
            "protocol": {"name": "folder", "version": 2},
        }
