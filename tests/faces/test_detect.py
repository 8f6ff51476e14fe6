"""Detection policies with real dlib: several faces, the CNN detector, small faces."""

import numpy as np
import pytest

from occface.build import process_record
from occface.build import BuildConfig
from occface.db.base import Record, Source
from occface.faces.detect import DetectConfig, detect_faces, select_faces


class ArraySource(Source):
    """Serves in-memory photos; real pixels, nothing mocked but the file system."""

    name = "arrays"

    def __init__(self, photos):
        self.photos = photos

    def load(self, record):
        return self.photos[record.source]

    def describe(self):
        return {"db": "arrays"}


@pytest.fixture(scope="module")
def two_faces(lfw_faces):
    """Two real LFW faces side by side, the right one larger."""
    left = np.pad(lfw_faces[0], ((30, 30), (10, 10), (0, 0)), mode="edge")
    import cv2

    right = cv2.resize(lfw_faces[1], (160, 160), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.concatenate([left, right], axis=1))


def test_largest_all_reject_policies(two_faces):
    faces = detect_faces(two_faces, DetectConfig())
    assert len(faces) == 2
    assert faces[0].area > faces[1].area and faces[0].box[0] > 100  # the big right face comes first
    for f in faces:
        assert f.landmarks.shape == (68, 2) and f.detector == "hog"
    src = ArraySource({"two.png": two_faces})
    rec = Record(key="arrays:two.png", source="two.png")
    got, rej = process_record(rec, src, BuildConfig(detect=DetectConfig(multi_face="largest")))
    assert rej is None and len(got) == 1 and got[0]["meta"]["num_faces"] == 2
    got, rej = process_record(rec, src, BuildConfig(detect=DetectConfig(multi_face="all")))
    assert rej is None and [g["meta"]["face_index"] for g in got] == [0, 1]
    assert [g["meta"]["key"] for g in got] == ["arrays:two.png#0", "arrays:two.png#1"]
    got, rej = process_record(rec, src, BuildConfig(detect=DetectConfig(multi_face="reject")))
    assert got == [] and rej["reason"] == "multiple_faces"


def test_upsampling_only_when_nothing_is_found(lfw_faces):
    import cv2

    small = np.ascontiguousarray(cv2.resize(lfw_faces[0], (60, 60), interpolation=cv2.INTER_AREA))
    small = np.pad(small, ((20, 20), (20, 20), (0, 0)), mode="edge")
    assert detect_faces(small, DetectConfig(hog_upsample=(0,))) == []
    faces = detect_faces(small, DetectConfig(hog_upsample=(0, 1)))
    assert len(faces) == 1 and faces[0].upsample == 1
    assert detect_faces(lfw_faces[0], DetectConfig(hog_upsample=(0, 1)))[0].upsample == 0


def test_cnn_detector_and_fallback(astronaut):
    import cv2

    img = np.ascontiguousarray(cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA))
    cnn = detect_faces(img, DetectConfig(detector="cnn", cnn_upsample=1))
    assert cnn and cnn[0].detector == "cnn" and cnn[0].score > 0.5
    hog = detect_faces(img, DetectConfig(detector="hog"))
    # the two detectors agree on where the face is
    cx = lambda f: ((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2)
    assert np.hypot(*np.subtract(cx(cnn[0]), cx(hog[0]))) < 15
    wall = np.full((120, 120, 3), 90, np.uint8)
    assert detect_faces(wall, DetectConfig(detector="hog+cnn")) == []


def test_min_face_size_rejects(lfw_faces):
    faces = detect_faces(lfw_faces[0], DetectConfig())
    kept, why = select_faces(faces, DetectConfig(min_face_px=500))
    assert kept == [] and why == "face_too_small"


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="detector"):
        DetectConfig(detector="mtcnn")
    with pytest.raises(ValueError, match="multi_face"):
        DetectConfig(multi_face="first")
