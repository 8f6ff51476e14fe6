"""``--db celeba-hq``: CelebA-HQ (30,000 faces, 1024x1024, pre-aligned) as distributed.

Images, under ``root`` (searched in this order; the first folder holding them wins):

* ``CelebA-HQ-img/N.jpg`` (CelebAMask-HQ; also ``CelebAMask-HQ/CelebA-HQ-img/`` or ``root`` itself),
* ``imgHQNNNNN.png`` (``root`` or ``data1024x1024/``), N = 0 ... 29999.

Optional metadata, found under ``root`` (or one of ``Anno/``, ``Eval/``,
``CelebAMask-HQ/``) or given as explicit paths:

* ``CelebA-HQ-to-CelebA-mapping.txt`` (or PGGAN's ``image_list.txt``):
  ``idx orig_idx orig_file`` rows linking each CelebA-HQ index to CelebA;
* ``list_eval_partition.txt``: CelebA's official partition (0 train, 1 val, 2 test);
* ``identity_CelebA.txt``: CelebA identities.

Splits (``manifests/celeba-hq.json``): ``official`` (CelebA's partition via
the mapping: train / val / test), ``identity`` (identity-disjoint, exact
test fraction of identities), ``paper`` (identity-disjoint 28,432 / 1,568,
see the protocol file for the rule) and ``paper-index`` (28,432 / 1,568 by
index, only for copies without identities).  The default is ``paper`` when
identities are available, else ``paper-index``.  Every rule is computed from
the metadata files (all 30,000 rows), never from the images present, so a
partial copy keeps each image's split.

CelebA-HQ is pre-aligned at 1024 px: :meth:`load` returns a copy
area-downscaled to ``load_max_side`` (512) on the longest side; detection,
landmarks and the 128-px crop all use that copy (a 1024 face needs no more
than 512 px for a 128 crop), so ``meta/det_box`` and ``meta/align_matrix``
are in its pixels (x 2 for 1024 originals).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import numpy as np

from ..faces.decode import decode_image
from .base import Datasheet, Record, Source, identity_order, split_by_identity
from .protocols import parse_bool, protocol as load_protocol, protocol_file, settle_coverage

_DOC = protocol_file("celeba-hq")
N_IMAGES = _DOC["images"]
SPLITS = tuple(_DOC["protocols"])
IMAGE_DIRS = ("CelebA-HQ-img", os.path.join("CelebAMask-HQ", "CelebA-HQ-img"), "data1024x1024", "")
META_DIRS = ("", "Anno", "Eval", "CelebAMask-HQ", "..")
NAME_RES = (re.compile(r"^(\d{1,5})\.(jpg|jpeg|png)$", re.I), re.compile(r"^imgHQ(\d{5})\.(png|jpg|jpeg)$", re.I))
META_NAMES = {
    "mapping": ("CelebA-HQ-to-CelebA-mapping.txt", "image_list.txt"),
    "partition": ("list_eval_partition.txt",),
    "identity": ("identity_CelebA.txt",),
}
PARTITION_NAMES = {0: "train", 1: "val", 2: "test"}


def _stem(name: str) -> str:
    return os.path.splitext(os.path.basename(name.strip()))[0]


def _rows(path: str) -> list[list[str]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [line.split() for line in fh if line.strip()]


def read_mapping(path: str) -> dict[int, tuple[int, str]]:
    """idx -> (orig_idx, orig_file) from ``CelebA-HQ-to-CelebA-mapping.txt`` / ``image_list.txt``."""
    out = {}
    for row in _rows(path):
        if len(row) < 3 or not row[0].isdigit():
            continue  # header ("idx orig_idx orig_file ...")
        out[int(row[0])] = (int(row[1]), row[2])
    if not out:
        raise ValueError(f"{path}: no 'idx orig_idx orig_file' rows")
    return out


def read_pairs(path: str) -> dict[str, int]:
    """CelebA ``<file> <int>`` lists (partition, identity), keyed by file stem."""
    out = {}
    for row in _rows(path):
        if len(row) >= 2 and row[1].lstrip("-").isdigit():
            out[_stem(row[0])] = int(row[1])
    if not out:
        raise ValueError(f"{path}: no '<file> <number>' rows")
    return out


def paper_split(identity_of: dict[int, int], n_test: int, salt: str) -> dict[int, str]:
    """Identity-disjoint split with exactly ``n_test`` test images.

    Identities in SHA-256 order of ``salt|identity``; walking that order, an identity
    joins test when all its images fit the remaining budget, else it stays in train;
    stops when the budget is spent.  Raises ValueError if no exact fill exists that way.
    """
    groups: dict[str, list[int]] = {}
    for idx, ident in identity_of.items():
        groups.setdefault(str(ident), []).append(idx)
    left, test = n_test, set()
    for ident in identity_order(groups, salt):
        if left == 0:
            break
        if len(groups[ident]) <= left:
            test.add(ident)
            left -= len(groups[ident])
    if left:
        raise ValueError(f"paper split: identities cannot fill exactly {n_test} test images ({left} short)")
    return {idx: ("test" if str(ident) in test else "train") for idx, ident in identity_of.items()}


@dataclass(frozen=True)
class CelebAHQSource(Source):
    root: str
    split: str | None = None  # official | identity | paper | paper-index (default: paper, or paper-index)
    test_fraction: float = 0.1  # identity split
    split_salt: str | None = None  # default: the protocol's salt
    mapping: str | None = None
    partition: str | None = None
    identity: str | None = None
    load_max_side: int = 512
    require_complete: bool = False

    name = "celeba-hq"
    datasheet = Datasheet(
        title="CelebA-HQ",
        citation=("T. Karras, T. Aila, S. Laine, J. Lehtinen, \"Progressive Growing of GANs for Improved Quality, "
                  "Stability, and Variation\", ICLR 2018; from CelebA: Z. Liu, P. Luo, X. Wang, X. Tang, "
                  "\"Deep Learning Face Attributes in the Wild\", ICCV 2015."),
        licence=("CelebA's agreement: non-commercial research and educational use only, no redistribution of "
                 "the images or of derived data for commercial purposes; CelebA-HQ inherits those terms."),
        motivation="High-resolution celebrity faces for generative models (CelebA: face attribute learning).",
        collection="CelebA's images of celebrities were gathered from the web; CelebA-HQ selected 30,000 of "
                   "them and enhanced and cropped them to 1024x1024.",
        composition="30,000 colour faces at 1024x1024 with CelebA's identity labels (via its mapping file); "
                    "mostly frontal, public figures.",
    )

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"database root {self.root!r} is not a directory")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"celeba-hq split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        s("test_fraction", float(self.test_fraction))
        s("load_max_side", int(self.load_max_side))
        s("require_complete", parse_bool(self.require_complete))
        for kind in META_NAMES:
            p = getattr(self, kind)
            if p is not None and not os.path.isfile(p):
                raise FileNotFoundError(f"{kind} file {p!r} does not exist")
        self._images  # noqa: B018 - a wrong root fails here
        self.resolved_split  # noqa: B018 - a split whose files are missing fails here

    # ------------------------------------------------------------------ files

    @functools.cached_property
    def _images(self) -> tuple[str, dict[int, str], dict]:
        root = os.path.abspath(self.root)
        for sub in IMAGE_DIRS:
            d = os.path.join(root, sub) if sub else root
            if not os.path.isdir(d):
                continue
            found: dict[int, str] = {}
            dup = other = out_of_range = 0
            for e in sorted(os.scandir(d), key=lambda e: e.name):
                if e.name.startswith(".") or not e.is_file():
                    continue
                m = NAME_RES[0].match(e.name) or NAME_RES[1].match(e.name)
                if not m:
                    other += 1
                    continue
                idx = int(m.group(1))
                if idx >= N_IMAGES:
                    out_of_range += 1
                elif idx in found:
                    dup += 1
                else:
                    found[idx] = e.name
            if found:
                return d, found, {"duplicates": dup, "other_files": other, "out_of_range": out_of_range}
        entries = sorted(n for n in os.listdir(root) if not n.startswith("."))
        shown = ", ".join(entries[:12]) + (f", … ({len(entries)} entries)" if len(entries) > 12 else "") if entries else "nothing"
        raise FileNotFoundError(
            f"no CelebA-HQ images under {root}: expected CelebA-HQ-img/N.jpg or imgHQNNNNN.png "
            f"(looked in {', '.join(sub or '.' for sub in IMAGE_DIRS)}); found: {shown}"
        )

    def _meta_path(self, kind: str) -> str | None:
        given = getattr(self, kind)
        if given:
            return os.path.abspath(given)
        root = os.path.abspath(self.root)
        for sub in META_DIRS:
            for fn in META_NAMES[kind]:
                p = os.path.normpath(os.path.join(root, sub, fn))
                if os.path.isfile(p):
                    return p
        return None

    @functools.cached_property
    def _meta(self) -> dict:
        paths = {k: self._meta_path(k) for k in META_NAMES}
        mapping = read_mapping(paths["mapping"]) if paths["mapping"] else None
        partition = read_pairs(paths["partition"]) if paths["partition"] else None
        identity = read_pairs(paths["identity"]) if paths["identity"] else None
        return {"paths": paths, "mapping": mapping, "partition": partition, "identity": identity}

    @property
    def identities_known(self) -> bool:
        m = self._meta
        return m["mapping"] is not None and m["identity"] is not None

    @property
    def resolved_split(self) -> str:
        split = self.split or ("paper" if self.identities_known else "paper-index")
        needs = load_protocol("celeba-hq", split)["needs"]
        missing = [k for k in needs if self._meta[k] is None]
        if missing:
            want = ", ".join(f"{k} ({' or '.join(META_NAMES[k])})" for k in missing)
            raise FileNotFoundError(
                f"celeba-hq split {split!r} needs {want} under {os.path.abspath(self.root)} "
                f"(or given explicitly); not found"
            )
        if split == "paper-index" and self.identities_known:
            raise ValueError("celeba-hq split 'paper-index' is not identity-disjoint and CelebA identities are "
                             "known here: use split 'paper' (identity-disjoint 28,432 / 1,568)")
        return split

    # ------------------------------------------------------------------ records

    @functools.cached_property
    def _survey(self) -> tuple[list[Record], dict]:
        img_dir, found, file_counts = self._images
        meta = self._meta
        split = self.resolved_split
        rules = load_protocol("celeba-hq", split)
        salt = self.split_salt or rules.get("salt", "")
        mapping, partition, identity = meta["mapping"], meta["partition"], meta["identity"]
        ident_of: dict[int, int] = {}
        if mapping is not None and identity is not None:
            ident_of = {i: identity[_stem(f)] for i, (_, f) in mapping.items() if _stem(f) in identity}
        unmapped = []  # images whose split cannot be computed
        if split == "official":
            split_of = {}
            for i in found:
                part = partition.get(_stem(mapping[i][1])) if i in mapping else None
                if part in PARTITION_NAMES:
                    split_of[i] = PARTITION_NAMES[part]
        elif split == "identity":
            by_ident = split_by_identity([str(v) for v in ident_of.values()], self.test_fraction, salt)
            split_of = {i: by_ident[str(v)] for i, v in ident_of.items()}
        elif split == "paper":
            if len(ident_of) != N_IMAGES:
                raise ValueError(f"celeba-hq split 'paper' needs identities for all {N_IMAGES} mapping rows, "
                                 f"got {len(ident_of)} (mapping {meta['paths']['mapping']})")
            split_of = paper_split(ident_of, rules["test_images"], salt)
        else:  # paper-index
            split_of = {i: ("test" if i >= rules["test_from_index"] else "train") for i in found}
        records = []
        for i in sorted(found):
            if i not in split_of:
                unmapped.append(found[i])
                continue
            orig = mapping[i] if mapping and i in mapping else None
            part = partition.get(_stem(orig[1]), -1) if orig and partition else -1
            ident = ident_of.get(i, -1)
            rel = found[i]
            records.append(Record(
                key=f"celeba-hq:{rel}", source=rel, subject=str(ident) if ident >= 0 else "", split=split_of[i],
                meta={"index": i, "celeba_file": orig[1] if orig else "", "identity": ident, "celeba_partition": part},
            ))
        records.sort(key=lambda r: r.key)
        missing = N_IMAGES - len(found)
        problems = []
        if missing:
            gaps = [i for i in range(N_IMAGES) if i not in found][:5]
            problems.append(f"{len(found)} of {N_IMAGES} images found in {img_dir} ({missing} missing, e.g. index {gaps})")
        if unmapped:
            problems.append(f"{len(unmapped)} images have no {split} split (not in the mapping / partition / "
                            f"identity files, e.g. {unmapped[0]}) and are left out")
        for k, label in (("duplicates", "duplicate indices"), ("out_of_range", f"indices >= {N_IMAGES}"),
                         ("other_files", "other files")):
            if file_counts[k]:
                problems.append(f"{file_counts[k]} {label} in {img_dir} ignored")
        counts: dict[str, int] = {}
        for r in records:
            counts[r.split] = counts.get(r.split, 0) + 1
        coverage = {
            "image_dir": img_dir,
            "images_found": len(found),
            "images_expected": N_IMAGES,
            "missing_images": missing,
            "unsplit_images": len(unmapped),
            "unsplit_examples": unmapped[:5],
            **file_counts,
            "metadata": {k: (p or None) for k, p in meta["paths"].items()},
            "complete": not problems,
            "problems": problems,
        }
        split_info = {"name": split, "version": rules["version"], "rule": rules["rule"], "salt": salt or None}
        if split == "identity":
            split_info["test_fraction"] = self.test_fraction
        if split_of and split in ("paper", "identity", "official"):
            full: dict[str, int] = {}
            for v in split_of.values():
                full[v] = full.get(v, 0) + 1
            split_info["full_copy_counts"] = dict(sorted(full.items()))
        return records, {"coverage": coverage, "split": split_info, "counts": {"records": len(records), **counts}}

    def survey(self) -> dict:
        return self._survey[1]["coverage"]

    def records(self) -> list[Record]:
        records, info = self._survey
        cov = info["coverage"]
        settle_coverage("celeba-hq", cov["problems"], self.require_complete, "")
        if not records:
            raise FileNotFoundError("celeba-hq: no image could be given a split: " + "; ".join(cov["problems"]))
        return list(records)

    def load(self, record: Record) -> np.ndarray:
        rgb = decode_image(os.path.join(self._images[0], record.source))[0]
        side = max(rgb.shape[:2])
        if self.load_max_side and side > self.load_max_side:
            import cv2

            scale = self.load_max_side / side
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return rgb

    def input_files(self, record: Record) -> tuple[str, ...]:
        return (os.path.join(self._images[0], record.source),)

    def fields(self) -> dict[str, str]:
        return {"index": "int", "celeba_file": "str", "identity": "int", "celeba_partition": "int"}

    def describe(self) -> dict:
        records, info = self._survey
        return {
            "db": "celeba-hq",
            "root": os.path.abspath(self.root),
            "image_dir": self._images[0],
            "protocol": {"name": info["split"]["name"], "version": info["split"]["version"],
                         "file": "manifests/celeba-hq.json", "split": info["split"]},
            "load": (f"area-downscaled (cv2.INTER_AREA) to {self.load_max_side} px on the longest side before "
                     "detection and alignment" if self.load_max_side else "as stored"),
            "load_max_side": self.load_max_side,
            "require_complete": self.require_complete,
            "counts": info["counts"],
            "coverage": info["coverage"],
        }
