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
    with pytest.raises(ValueError, match="max_side"):
        DetectConfig(max_side=40)


# ----------------------------------------------------------------------------- the detection copy (max_side)

def test_box_mapping_from_the_bounded_copy_is_exact(astronaut):
    """A photo enlarged 3x by pixel repetition area-averages back to the original exactly, so HOG on the
    copy sees the original: the mapped box must be the original box scaled to the enlarged photo."""
    from occface.faces.detect import bounded_copy, map_box

    big = np.ascontiguousarray(np.repeat(np.repeat(astronaut, 3, axis=0), 3, axis=1))  # 1536 x 1536
    copy, sx, sy = bounded_copy(big, 512)
    assert np.array_equal(copy, astronaut) and sx == sy == 1 / 3
    small = detect_faces(astronaut, DetectConfig(max_side=0), landmarks=False)
    found = detect_faces(big, DetectConfig(max_side=512), landmarks=False)
    assert len(found) == len(small) == 1
    l, t, r, b = small[0].box
    assert found[0].box == (3 * l, 3 * t, 3 * r + 2, 3 * b + 2)  # pixels [l, r] of the copy = [3l, 3r + 2]
    assert found[0].scale == pytest.approx(1 / 3) and found[0].upsample == 0 and found[0].score == small[0].score


@pytest.mark.parametrize("shape", [(1000, 1000), (733, 1291), (1291, 733), (2001, 1500), (600, 1600)])
def test_bounded_copy_scales_and_box_edges_are_consistent(shape):
    from occface.faces.detect import bounded_copy, map_box

    img = np.zeros((*shape, 3), np.uint8)
    copy, sx, sy = bounded_copy(img, 512)
    h2, w2 = copy.shape[:2]
    k = max(shape) // 512
    assert max(h2, w2) == 512 and (sx, sy) == (w2 / (k * (shape[1] // k)), h2 / (k * (shape[0] // k)))
    # the copy's whole frame maps onto the photo's whole k x k blocks; a box maps linearly on pixel edges
    assert map_box((0, 0, w2 - 1, h2 - 1), sx, sy) == pytest.approx(
        (0, 0, k * (shape[1] // k) - 1, k * (shape[0] // k) - 1))
    x0, y0, x1, y1 = map_box((100, 50, 199, 149), sx, sy)
    assert (x0 * sx, y0 * sy, (x1 + 1) * sx, (y1 + 1) * sy) == pytest.approx((100, 50, 200, 150))
    assert bounded_copy(img, 0)[0] is img and bounded_copy(img, max(shape))[0] is img


def _canvas(face, shape, at):
    canvas = np.full((*shape, 3), 128, np.uint8)
    y, x = at
    canvas[y : y + face.shape[0], x : x + face.shape[1]] = face
    return canvas


def test_fallback_order_is_followed_and_recorded(astronaut, lfw_faces):
    """copy -> full resolution at each HOG level -> CNN; meta records the scale, level and detector."""
    import cv2

    from occface.faces.detect import hog_steps

    cfg = DetectConfig(max_side=640)
    assert hog_steps((2000, 1500, 3), cfg) == [("copy", 0), ("full", 0), ("full", 1)]
    assert hog_steps((640, 480, 3), cfg) == [("full", 0), ("full", 1)]
    assert hog_steps((2000, 1500, 3), DetectConfig(max_side=0)) == [("full", 0), ("full", 1)]
    photos = {
        # a big face in a big photo: found on the copy
        "big.png": np.ascontiguousarray(cv2.resize(astronaut, (1600, 1600), interpolation=cv2.INTER_CUBIC)),
        # a 100 px face in a 1400 px photo is ~46 px on the copy, below HOG's window: full resolution
        "mid.png": _canvas(lfw_faces[1], (700, 1400), (300, 600)),
        # a 60 px face needs the upsampled pass at full resolution
        "tiny.png": _canvas(cv2.resize(lfw_faces[1], (60, 60), interpolation=cv2.INTER_AREA), (700, 1400), (300, 600)),
    }
    src = ArraySource(photos)
    want = {"big.png": (640 / (2 * 800), 0), "mid.png": (1.0, 0), "tiny.png": (1.0, 1)}
    for name, (scale, up) in want.items():
        got, rej = process_record(Record(key=f"arrays:{name}", source=name), src, BuildConfig(detect=cfg))
        assert rej is None, (name, rej)
        meta = got[0]["meta"]
        assert (meta["detector"], meta["det_upsample"]) == ("hog", up) and meta["det_scale"] == pytest.approx(scale)


def test_cnn_is_the_last_step(astronaut):
    """A face turned on its side defeats HOG at every step; hog+cnn then finds it with the CNN."""
    import cv2

    turned = np.ascontiguousarray(np.rot90(cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)))
    assert detect_faces(turned, DetectConfig(max_side=200), landmarks=False) == []
    faces = detect_faces(turned, DetectConfig(detector="hog+cnn", cnn_upsample=1, max_side=200), landmarks=False)
    assert faces and faces[0].detector == "cnn" and faces[0].scale == 1.0


def test_a_2000px_photo_gives_the_landmarks_of_a_full_resolution_detection(astronaut):
    """Detection on the 640 px copy, landmarks on the full photo: the aligned landmarks agree with a
    full-resolution detection within 1 px of the 128 crop."""
    import cv2

    big = np.ascontiguousarray(cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_CUBIC))
    src = ArraySource({"big.png": big})
    rec = Record(key="arrays:big.png", source="big.png")
    fast, rej = process_record(rec, src, BuildConfig())
    assert rej is None and fast[0]["meta"]["det_scale"] == pytest.approx(640 / (3 * (2048 // 3)))  # k = 3
    full, rej = process_record(rec, src, BuildConfig(detect=DetectConfig(max_side=0)))
    assert rej is None and full[0]["meta"]["det_scale"] == 1.0
    err = np.abs(fast[0]["landmarks"] - full[0]["landmarks"]).max()
    assert err < 1.0, err


def test_greyscale_photos_are_detected_on_one_channel(lfw_faces):
    from occface.faces.detect import single_channel

    grey = lfw_faces[0]
    one = single_channel(grey)
    assert one.shape == grey.shape[:2] and one.flags.c_contiguous and np.array_equal(one, grey[..., 0])
    colour = grey.copy()
    colour[50, 50, 2] ^= 1  # one pixel off the strided sample still makes it colour
    assert single_channel(colour) is colour
    assert single_channel(np.ascontiguousarray(grey[..., 0])).ndim == 2
