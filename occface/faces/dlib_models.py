"""Locate and load dlib's model files from the ``face_recognition_models`` package.

That package's ``__init__`` imports ``pkg_resources``, which recent setuptools
no longer ships, so we find its folder with ``importlib.util.find_spec`` and
never import it.  Loaded models are cached per process (the 68-point
predictor is ~100 MB and takes a noticeable fraction of a second to read).
"""

from __future__ import annotations

import functools
import importlib.util
import os

MODEL_FILES = {
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}


class ModelFilesMissing(RuntimeError):
    pass


def model_path(name: str) -> str:
    """Absolute path of one of :data:`MODEL_FILES` (``shape68``, ``shape5``, ``cnn``, ``resnet``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(
            "dlib model files not found: install them with `pip install face_recognition_models`"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", MODEL_FILES[name])
    if not os.path.isfile(path):
        raise ModelFilesMissing(f"dlib model file missing: {path} (reinstall face_recognition_models)")
    return path


@functools.lru_cache(maxsize=None)
def hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def cnn_detector():
    import dlib

    return dlib.cnn_face_detection_model_v1(model_path("cnn"))


@functools.lru_cache(maxsize=None)
def shape_predictor68():
    import dlib

    return dlib.shape_predictor(model_path("shape68"))


@functools.lru_cache(maxsize=None)
def face_descriptor_model():
    import dlib

    return dlib.face_recognition_model_v1(model_path("resnet"))
