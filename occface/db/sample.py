"""``--db sample``: real face photos that ship inside installed packages (no download).

* scikit-image's ``astronaut.png`` (Eileen Collins, NASA, public domain), 512x512;
* the first 100 images of scikit-image's ``lfw_subset.npy``: real LFW faces,
  25x25 grayscale, tightly cropped.  dlib's HOG detector needs faces of about
  80 px, so each is enlarged 4x with bicubic interpolation before detection
  (recorded in the manifest).  Expect a few to be rejected as ``no_face``:
  that is the rejection log doing its job.

Identities are unknown, so each photo is its own identity for the split.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from ..faces.decode import decode_image
from .base import Datasheet, Record, Source, split_by_identity


def skimage_data_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("skimage.data")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-image is not installed (`pip install scikit-image`)")
    return os.path.dirname(spec.origin)


@functools.lru_cache(maxsize=2)
def _lfw_subset(path: str) -> np.ndarray:
    return np.load(path)


@dataclass(frozen=True)
class SampleSource(Source):
    lfw_faces: int = 100
    upscale: int = 4
    test_fraction: float = 0.1
    split_salt: str = "occface-split-v1"

    name = "sample"
    datasheet = Datasheet(
        title="occface sample database (scikit-image's astronaut photo and LFW subset)",
        citation=("G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller, \"Labeled Faces in the Wild: A Database for "
                  "Studying Face Recognition in Unconstrained Environments\", UMass Amherst TR 07-49, 2007; "
                  "scikit-image's data module (astronaut.png, lfw_subset.npy)."),
        licence=("astronaut.png: NASA photograph of Eileen Collins, public domain. lfw_subset.npy: LFW faces as "
                 "shipped by scikit-image; LFW's photos were gathered from news pictures on the web and come "
                 "with no licence of their own beyond research use."),
        motivation="A small database of real faces that installs with occface's dependencies, for tests, "
                   "examples and first looks; not for reporting results.",
        collection="The faces ship inside scikit-image; nothing is downloaded. LFW's images were collected "
                   "from news photographs and detected with the Viola-Jones detector by the LFW authors.",
        composition="101 photos: one 512x512 colour portrait and the first 100 faces of scikit-image's LFW "
                    "subset (25x25 greyscale, enlarged 4x before detection); identities are unknown, so "
                    "each photo is its own identity.",
        uses="Tests, examples and smoke runs only: 25 px greyscale sources are far below the 128 px target.",
    )

    @property
    def root(self) -> str:
        return skimage_data_dir()

    def records(self) -> list[Record]:
        files = ["astronaut.png"] + [f"lfw_subset.npy[{i:03d}]" for i in range(self.lfw_faces)]
        split = split_by_identity(files, self.test_fraction, self.split_salt)
        return [Record(key=f"sample:{f}", source=f, split=split[f]) for f in files]

    def load(self, record: Record) -> np.ndarray:
        import cv2

        if record.source.startswith("lfw_subset.npy["):
            idx = int(record.source[len("lfw_subset.npy[") : -1])
            face = _lfw_subset(os.path.join(self.root, "lfw_subset.npy"))[idx]
            gray = np.clip(np.rint(face * 255.0), 0, 255).astype(np.uint8)
            side = gray.shape[0] * self.upscale
            big = cv2.resize(gray, (side, side), interpolation=cv2.INTER_CUBIC)
            return np.ascontiguousarray(np.repeat(big[..., None], 3, axis=2))
        return decode_image(os.path.join(self.root, record.source))[0]

    def input_files(self, record: Record) -> tuple[str, ...]:
        name = "lfw_subset.npy" if record.source.startswith("lfw_subset.npy[") else record.source
        return (os.path.join(self.root, name),)

    def describe(self) -> dict:
        return {
            "db": "sample",
            "root": "skimage.data",
            "lfw_faces": self.lfw_faces,
            "upscale": f"{self.upscale}x bicubic (cv2.INTER_CUBIC) before detection",
            "test_fraction": self.test_fraction,
            "split_salt": self.split_salt,
            "protocol": {"name": "sample", "version": 1},
        }
