"""Records and the adapter interface shared by every database."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Record:
    """One input photo.

    key: stable unique id, ``"<db>:<relative path>[|variant]"``; sorting by key fixes shard membership.
    source: path relative to the database root (what the shards store).
    subject: identity, "" when unknown.
    split: "train", "test", ... assigned by the adapter's protocol.
    meta: database-specific named fields (see ``Source.fields``).
    rejection: ``(reason, detail)`` when the adapter already knows the record must be rejected
        (e.g. a duplicate under the ``reject`` policy); the build records it without decoding.
    """

    key: str
    source: str
    subject: str = ""
    split: str = "train"
    meta: dict = field(default_factory=dict)
    rejection: tuple[str, str] | None = None


@dataclass(frozen=True)
class Inventory:
    """What a source found under its root: the records, plus the entries that are not inputs.

    skipped: ``[{"path", "reason"}]`` for entries that are not inputs (see occface.db.walk).
    duplicates: groups of record sources with byte-identical content.
    stats: ``{input file path (as Source.input_files gives it): (size, mtime_ns)}`` the walk already
        read, so the input fingerprint needs no second ``stat``; files missing here are stat'ed.
    """

    records: list[Record]
    skipped: list[dict] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Datasheet:
    """What the dataset card says about a source database (the "Datasheets for Datasets" headings
    that come from the source rather than from the build).  Facts from the database's own
    papers and pages; ``licence`` is a summary, never a substitute for the database's terms."""

    title: str
    citation: str
    licence: str
    motivation: str
    collection: str
    composition: str
    uses: str = ("Research on face hallucination, face restoration and inpainting of occluded faces; "
                 "not for identifying people or for decisions about them.")


class Source:
    """Adapter interface.  Subclasses are frozen dataclasses (picklable, hashable config).

    ``datasheet``: a class attribute, the :class:`Datasheet` of the database (the dataset card
    reads it; it is not part of the manifest, so it never changes a build's bytes)."""

    name = "base"
    datasheet: Datasheet | None = None

    def records(self) -> list[Record]:
        """All records, sorted by key, splits assigned."""
        raise NotImplementedError

    def inventory(self) -> Inventory:
        """The records and, where the adapter walks a tree, what it skipped and the duplicates it found.

        Default: :meth:`records` only.  The build calls this once per run."""
        return Inventory(self.records())

    def input_files(self, record: Record) -> tuple[str, ...]:
        """The files a record's samples are made from (paths), for the build's input fingerprint.

        Default: ``root/record.source`` for adapters with a ``root``.  Adapters that read more
        (annotations) or read from elsewhere override it."""
        root = getattr(self, "root", None)
        return (os.path.join(root, record.source),) if root else ()

    def warnings(self) -> list[str]:
        """One-line findings about the chosen options that a user should see (logged by the build)."""
        return []

    def load(self, record: Record) -> np.ndarray:
        """(H, W, 3) uint8 RGB.  Raises occface.faces.decode.DecodeError for unusable files."""
        raise NotImplementedError

    def fields(self) -> dict[str, str]:
        """Extra per-sample metadata fields: name -> "int" | "float" | "str"."""
        return {}

    def describe(self) -> dict:
        """Resolved adapter options and protocol, for the manifest."""
        raise NotImplementedError

    def photo_key(self, record: Record) -> str:
        """Records with equal photo keys load identical pixels, so the build decodes and detects them once.

        Default: every record is its own photo.  Override for variants of one photo (Helen's x8)."""
        return record.key

    def choose_faces(self, record: Record, faces: list) -> list | None:
        """Hook for databases that annotate which face is meant (None = use the detector policy)."""
        return None

    def transform_sample(self, record: Record, sample: dict, cfg) -> dict:
        """Hook applied to each finished sample (e.g. Helen's dihedral augmentation); default: unchanged."""
        return sample


def identity_order(identities, salt: str) -> list[str]:
    """Identities in a stable pseudo-random order (SHA-256 of salt|identity), for splits."""
    return sorted(set(identities), key=lambda s: (hashlib.sha256(f"{salt}|{s}".encode()).hexdigest(), s))


def split_by_identity(subjects: list[str], test_fraction: float, salt: str) -> dict[str, str]:
    """Map each identity to "train" or "test": exactly round(test_fraction * n) identities go to test."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError("test fraction must be in [0, 1]")
    order = identity_order(subjects, salt)
    n_test = int(round(test_fraction * len(order)))
    test = set(order[:n_test])
    return {s: ("test" if s in test else "train") for s in order}
