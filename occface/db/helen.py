"""``--db helen``: the Helen database (2,330 in-the-wild photos, 194-point contours) as distributed.

Layout under ``root``::

    trainnames.txt, testnames.txt     one image name per line (2,000 / 330), with or without .jpg
    annotation/N.txt                  first line the image name, then 194 "x , y" rows
    <any folders>/NAME.jpg            helen_1/ ... helen_5/ (or train/, test/, ...): found by name

Splits (``manifests/helen.json``): ``official`` (2,000 / 330 from the name
lists) and ``paper`` (2,280 / 50: the first 50 test names in sorted order are
test, every other listed name is train).  Identities are unknown in Helen,
so ``subject`` is empty.

Several faces in one photo: :meth:`choose_faces` keeps the detected face
that best overlaps the annotated contour's bounding box (highest IoU, at
least ``min_iou``, box centre inside the contour's box); when none does the
build rejects the photo as ``annotated_face_not_found``.

Augmentation ``x8`` (``augment=True``): each *training* photo gives 8
records, ``helen:<path>`` and ``helen:<path>|<variant>`` for the 7 other
symmetries of the square (rot90 / rot180 / rot270 counter-clockwise, each
also followed by a horizontal flip, and the flip alone).  Detection, face
choice and alignment run on the photo as distributed; the variant is applied
to the finished aligned sample by :meth:`transform_sample` (see
``occface.db.augment``), recorded in ``meta/augmentation``.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import numpy as np

from ..faces.decode import decode_image
from .augment import VARIANTS, augment_sample
from .base import Datasheet, Record, Source
from .protocols import parse_bool, protocol as load_protocol, protocol_file, settle_coverage

_DOC = protocol_file("helen")
SPLITS = tuple(_DOC["protocols"])
IMAGE_EXT = (".jpg", ".jpeg", ".png")
_NUM = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def read_names(path: str) -> list[str]:
    """Image names from trainnames.txt / testnames.txt (extension dropped)."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            t = line.strip()
            if t:
                out.append(os.path.splitext(t)[0] if t.lower().endswith(IMAGE_EXT) else t)
    return out


@functools.lru_cache(maxsize=4096)
def read_annotation(path: str) -> tuple[str, np.ndarray]:
    """(image name, (P, 2) float64 points) from a Helen annotation file."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = [ln.strip() for ln in fh if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: empty annotation")
    pts = []
    for ln in lines[1:]:
        nums = _NUM.findall(ln)
        if len(nums) != 2:
            raise ValueError(f"{path}: expected 'x , y' rows, got {ln!r}")
        pts.append((float(nums[0]), float(nums[1])))
    name = lines[0]
    name = os.path.splitext(name)[0] if name.lower().endswith(IMAGE_EXT) else name
    return name, np.array(pts, np.float64).reshape(-1, 2)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pick_annotated(faces: list, points: np.ndarray, min_iou: float = 0.25) -> list:
    """The one face whose box best overlaps the annotated points' bounding box, or []."""
    if len(points) == 0:
        return []
    ann = (*points.min(0), *points.max(0))
    best, best_iou = None, min_iou
    for f in faces:
        cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        if not (ann[0] <= cx <= ann[2] and ann[1] <= cy <= ann[3]):
            continue
        iou = _iou(f.box, ann)
        if iou >= best_iou:
            best, best_iou = f, iou
    return [best] if best is not None else []


def _find(root: str, name: str) -> str | None:
    """``root/name``, else ``root/<folder>/name`` (first folder in sorted order)."""
    cands = [os.path.join(root, name)] + [os.path.join(root, d, name) for d in sorted(os.listdir(root))]
    return next((c for c in cands if os.path.isfile(c)), None)


@dataclass(frozen=True)
class HelenSource(Source):
    root: str
    split: str = "paper"  # official | paper
    augment: str | bool = False  # "x8" (or true): dihedral x8 augmentation of the training split
    min_iou: float = 0.25  # annotated-face choice
    max_side: int = 0  # >0: area-downscale larger photos to this longest side before detection
    require_complete: bool = False

    name = "helen"
    datasheet = Datasheet(
        title="Helen (with the 300-W 68-point annotations)",
        citation=("V. Le, J. Brandt, Z. Lin, L. Bourdev, T. S. Huang, \"Interactive Facial Feature Localization\", "
                  "ECCV 2012; 68-point annotations: C. Sagonas et al., \"300 Faces in-the-Wild Challenge\", "
                  "ICCV Workshops 2013."),
        licence=("Photos from Flickr under their owners' terms, annotations for research use; the 300-W "
                 "annotations are for non-commercial research. Check both before sharing a build."),
        motivation="Facial feature localisation in unconstrained photos.",
        collection="High-resolution Flickr photos with faces in varied poses, lighting and expressions, "
                   "annotated by hand with dense contours; 300-W re-annotated them with 68 points.",
        composition="2,330 photos (2,000 train, 330 test), one annotated face each; no identity labels.",
    )

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"database root {self.root!r} is not a directory")
        if self.split not in SPLITS:
            raise ValueError(f"helen split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if isinstance(self.augment, str) and self.augment.lower() in ("x8", "none"):
            s("augment", self.augment.lower() == "x8")
        s("augment", parse_bool(self.augment))
        s("min_iou", float(self.min_iou))
        s("max_side", int(self.max_side))
        s("require_complete", parse_bool(self.require_complete))
        self._files  # noqa: B018 - a wrong root fails here

    @functools.cached_property
    def _files(self) -> dict:
        root = os.path.abspath(self.root)
        lists = {k: _find(root, fn) for k, fn in (("train", "trainnames.txt"), ("test", "testnames.txt"))}
        if not any(lists.values()):
            entries = sorted(n for n in os.listdir(root) if not n.startswith("."))
            shown = ", ".join(entries[:12]) + (f", … ({len(entries)} entries)" if len(entries) > 12 else "") if entries else "nothing"
            raise FileNotFoundError(
                f"no trainnames.txt or testnames.txt under {root}: expected the Helen layout (trainnames.txt, "
                f"testnames.txt, annotation/N.txt, NAME.jpg in any folder); found: {shown}"
            )
        ann_dir = None
        for dirpath, dirnames, _ in os.walk(root):
            dirnames.sort()
            if os.path.basename(dirpath) == "annotation":
                ann_dir = dirpath
                break
        images: dict[str, str] = {}
        duplicates = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and os.path.join(dirpath, d) != ann_dir)
            for fn in sorted(filenames):
                if fn.startswith(".") or not fn.lower().endswith(IMAGE_EXT):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, fn), root).replace(os.sep, "/")
                stem = os.path.splitext(fn)[0]
                if stem in images:
                    duplicates.append(rel)
                else:
                    images[stem] = rel
        annotations: dict[str, str] = {}
        bad_annotations = []
        if ann_dir:
            for fn in sorted(os.listdir(ann_dir)):
                if not fn.endswith(".txt"):
                    continue
                path = os.path.join(ann_dir, fn)
                try:
                    name, _ = read_annotation(path)
                except (ValueError, OSError):
                    bad_annotations.append(fn)
                    continue
                annotations.setdefault(name, os.path.relpath(path, root).replace(os.sep, "/"))
        return {"lists": lists, "annotation_dir": ann_dir, "images": images, "duplicates": duplicates,
                "annotations": annotations, "bad_annotations": bad_annotations}

    @functools.cached_property
    def _survey(self) -> tuple[list[Record], dict]:
        files = self._files
        rules = load_protocol("helen", self.split)
        names = {k: (read_names(p) if p else []) for k, p in files["lists"].items()}
        if self.split == "official":
            split_of = {n: "train" for n in names["train"]}
            split_of.update({n: "test" for n in names["test"]})
        else:
            test = set(sorted(names["test"])[: rules["test_images"]])
            split_of = {n: ("test" if n in test else "train") for n in names["train"] + names["test"]}
        expected = {k: (rules["train_images"] if k == "train" else rules["test_images"]) for k in ("train", "test")}
        listed = {k: sum(1 for v in split_of.values() if v == k) for k in ("train", "test")}
        images, annotations = files["images"], files["annotations"]
        records, missing, unannotated = [], [], []
        for n in sorted(split_of):
            if n not in images:
                missing.append(n)
                continue
            rel = images[n]
            ann = annotations.get(n, "")
            if not ann:
                unannotated.append(n)
            variants = VARIANTS if (self.augment and split_of[n] == "train") else ("none",)
            for v in variants:
                key = f"helen:{rel}" if v == "none" else f"helen:{rel}|{v}"
                records.append(Record(key=key, source=rel, split=split_of[n], meta={"annotation": ann, "augmentation": v}))
        records.sort(key=lambda r: r.key)
        unlisted = sorted(set(images) - set(split_of))
        problems = []
        for k, fn in (("train", "trainnames.txt"), ("test", "testnames.txt")):
            if not files["lists"][k]:
                problems.append(f"{fn} not found")
        if listed != expected:
            problems.append(f"name lists give {listed['train']} train / {listed['test']} test, "
                            f"the {self.split} protocol has {expected['train']} / {expected['test']}")
        if missing:
            problems.append(f"{len(missing)} listed images not found (e.g. {missing[0]})")
        if not files["annotation_dir"]:
            problems.append("no annotation/ folder: the annotated face cannot be chosen (largest face used)")
        elif unannotated:
            problems.append(f"{len(unannotated)} images without an annotation file (largest face used, e.g. {unannotated[0]})")
        if files["bad_annotations"]:
            problems.append(f"{len(files['bad_annotations'])} unreadable annotation files (e.g. {files['bad_annotations'][0]})")
        if files["duplicates"]:
            problems.append(f"{len(files['duplicates'])} duplicate image names ignored (e.g. {files['duplicates'][0]})")
        photos: dict[str, int] = {}
        counts: dict[str, int] = {}
        for r in records:
            counts[r.split] = counts.get(r.split, 0) + 1
            if r.meta["augmentation"] == "none":
                photos[r.split] = photos.get(r.split, 0) + 1
        coverage = {
            "listed": listed,
            "expected": expected,
            "images_found": len(images),
            "missing_images": len(missing),
            "missing_examples": missing[:5],
            "annotation_dir": os.path.relpath(files["annotation_dir"], os.path.abspath(self.root)).replace(os.sep, "/")
            if files["annotation_dir"] else None,
            "annotations": len(annotations),
            "unannotated": len(unannotated),
            "bad_annotations": len(files["bad_annotations"]),
            "duplicates": len(files["duplicates"]),
            "unlisted_images": len(unlisted),
            "complete": not problems,
            "problems": problems,
        }
        info = {"coverage": coverage, "rules": rules,
                "counts": {"records": len(records), **dict(sorted(counts.items())),
                           "photos": dict(sorted(photos.items()))}}
        return records, info

    def survey(self) -> dict:
        return self._survey[1]["coverage"]

    def records(self) -> list[Record]:
        records, info = self._survey
        cov = info["coverage"]
        settle_coverage("helen", cov["problems"], self.require_complete, "")
        if not records:
            raise FileNotFoundError(f"helen: none of the listed images found under {os.path.abspath(self.root)}: "
                                    + "; ".join(cov["problems"]))
        return list(records)

    def _scale(self, record: Record) -> float:
        if not self.max_side:
            return 1.0
        from PIL import Image

        with Image.open(os.path.join(os.path.abspath(self.root), record.source)) as im:
            side = max(im.size)
        return min(1.0, self.max_side / side)

    def load(self, record: Record) -> np.ndarray:
        rgb = decode_image(os.path.join(os.path.abspath(self.root), record.source))[0]
        if self.max_side and max(rgb.shape[:2]) > self.max_side:
            import cv2

            scale = self.max_side / max(rgb.shape[:2])
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return rgb

    def annotation_points(self, record: Record) -> np.ndarray | None:
        """The annotated contour in the pixels of :meth:`load`'s image, or None."""
        ann = record.meta.get("annotation")
        if not ann:
            return None
        pts = read_annotation(os.path.join(os.path.abspath(self.root), ann))[1]
        s = self._scale(record)
        return pts * s + (s - 1) / 2 if s != 1.0 else pts

    def input_files(self, record: Record) -> tuple[str, ...]:
        root = os.path.abspath(self.root)
        ann = record.meta.get("annotation")
        return (os.path.join(root, record.source),) + ((os.path.join(root, ann),) if ann else ())

    def photo_key(self, record: Record) -> str:
        return record.source  # the x8 variants share the photo; the augmentation is applied to the sample

    def choose_faces(self, record: Record, faces: list) -> list | None:
        pts = self.annotation_points(record)
        if pts is None:
            return None
        return pick_annotated(faces, pts, self.min_iou)

    def transform_sample(self, record: Record, sample: dict, cfg) -> dict:
        return augment_sample(sample, record.meta.get("augmentation", "none"), cfg)

    def fields(self) -> dict[str, str]:
        return {"annotation": "str", "augmentation": "str"}

    def describe(self) -> dict:
        records, info = self._survey
        rules = info["rules"]
        return {
            "db": "helen",
            "root": os.path.abspath(self.root),
            "protocol": {"name": rules["name"], "version": rules["version"], "file": rules["file"],
                         "rule": rules["rule"]},
            "augment": "x8" if self.augment else "none",
            "augmentation": _DOC["augmentations"]["x8" if self.augment else "none"],
            "face_choice": f"detected face with the highest IoU (>= {self.min_iou}) with the annotated contour's "
                           "bounding box, its centre inside that box",
            "max_side": self.max_side,
            "require_complete": self.require_complete,
            "counts": info["counts"],
            "coverage": info["coverage"],
        }
