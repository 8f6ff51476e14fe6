"""``--db multipie``: CMU Multi-PIE as distributed.

Layout (``root`` may contain ``data/`` or be ``data/`` itself)::

    data/sessionNN/multiview/SSS/RR/CC_C/SSS_NN_RR_CCC_II.png
    e.g. data/session01/multiview/001/01/05_1/001_01_01_051_07.png

SSS subject, NN session (01-04), RR recording within the session, CC_C camera
(written without the underscore in the file name), II illumination / flash
shot (00 = no flash ... 19).

The selection follows a versioned protocol from ``manifests/multipie.json``
(default ``prouigan`` v1: the 13 head-height cameras x the six expressions,
flash shot 07, all subjects; train = the first 250 subject ids in sorted
order, test = the rest).  Cameras, a yaw range, expressions, illuminations,
the recordings rule and the number of train subjects can be overridden; the
overrides are recorded next to the protocol name and version.

Only the selected camera folders are listed, so a full 750k-image copy is
surveyed in seconds.  Whatever the selection expects but the copy lacks
(sessions, subjects, camera folders, images) is counted in
``describe()["coverage"]`` and reported with a :class:`PartialCopyWarning`
(or raised with ``require_complete``), never silently accepted.

Profile cameras (+-75, +-90 degrees) defeat dlib's frontal HOG detector: the
CLI builds Multi-PIE with ``--detector hog+cnn`` by default (CNN only when HOG
finds nothing), ``meta/detector`` says which one found each face and a
rejection's detail names the detectors that found none.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import numpy as np

from ..faces.decode import decode_image
from .base import Datasheet, Record, Source
from .protocols import parse_bool, parse_list, protocol as load_protocol, protocol_file, settle_coverage

SESSION_RE = re.compile(r"^session(\d\d)$")
SUBJECT_RE = re.compile(r"^\d{3}$")
RECORDING_RE = re.compile(r"^\d\d$")
CAMERA_RE = re.compile(r"^\d\d_\d$")
FILE_RE = re.compile(r"^(\d{3})_(\d\d)_(\d\d)_(\d{3})_(\d\d)\.png$")
LAYOUT = "data/sessionNN/multiview/SSS/RR/CC_C/SSS_NN_RR_CCC_II.png"


def _tables():
    doc = protocol_file("multipie")
    yaw = doc["cameras"]
    expr = {name: [tuple(p) for p in pairs] for name, pairs in doc["expressions"].items()}
    by_pair = {p: name for name, pairs in expr.items() for p in pairs}
    return yaw, expr, by_pair, doc


CAMERA_YAW, EXPRESSIONS, EXPRESSION_OF, _DOC = _tables()


def camera_label(text: str) -> str:
    """``"051"`` or ``"05_1"`` -> ``"05_1"``."""
    t = text.strip()
    if re.fullmatch(r"\d{3}", t):
        t = f"{t[:2]}_{t[2]}"
    if t not in CAMERA_YAW:
        raise ValueError(f"unknown Multi-PIE camera {text!r}; known: {', '.join(CAMERA_YAW)}")
    return t


def parse_path(relpath: str) -> dict:
    """Parse ``sessionNN/multiview/SSS/RR/CC_C/SSS_NN_RR_CCC_II.png`` (optionally under ``data/``).

    Returns subject (str), session, recording (int), camera ("05_1"), yaw (float, NaN for the
    elevated cameras 08_1 / 19_1), expression, illumination (int).  Raises ValueError when the
    path does not follow the layout or the file name disagrees with its folders.
    """
    parts = relpath.replace(os.sep, "/").split("/")
    if parts and parts[0] == "data":
        parts = parts[1:]
    if len(parts) != 6 or parts[1] != "multiview":
        raise ValueError(f"{relpath!r} does not follow {LAYOUT}")
    ses, _, subj, rec, cam, fn = parts
    m_ses, m_file = SESSION_RE.match(ses), FILE_RE.match(fn)
    if not (m_ses and SUBJECT_RE.match(subj) and RECORDING_RE.match(rec) and CAMERA_RE.match(cam) and m_file):
        raise ValueError(f"{relpath!r} does not follow {LAYOUT}")
    f_subj, f_ses, f_rec, f_cam, f_ill = m_file.groups()
    if (f_subj, f_ses, f_rec, f_cam) != (subj, m_ses.group(1), rec, cam.replace("_", "")):
        raise ValueError(f"{relpath!r}: file name disagrees with its folders")
    session, recording = int(f_ses), int(f_rec)
    yaw = CAMERA_YAW.get(cam, None)
    return {
        "subject": subj,
        "session": session,
        "recording": recording,
        "camera": cam,
        "yaw": float("nan") if yaw is None else float(yaw),
        "expression": EXPRESSION_OF.get((session, recording), "unknown"),
        "illumination": int(f_ill),
    }


def _ints(value) -> tuple[int, ...]:
    """``"7"``, ``"0-19"``, ``"0,7,13"``, ``(7,)`` -> sorted unique ints."""
    out = set()
    for item in parse_list(value) if not isinstance(value, int) else (str(value),):
        if re.fullmatch(r"\d+\s*-\s*\d+", item):
            a, b = (int(x) for x in item.split("-"))
            out.update(range(a, b + 1))
        else:
            out.add(int(item))
    return tuple(sorted(out))


def _listdir(path: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(path) if not e.name.startswith("."))
    except OSError:
        return []


@dataclass(frozen=True)
class MultiPieSource(Source):
    root: str
    protocol: str = "prouigan"
    cameras: tuple[str, ...] | None = None  # override the protocol's cameras ("05_1" or "051")
    yaw_range: tuple[int, int] | None = None  # keep cameras with lo <= yaw <= hi
    expressions: tuple[str, ...] | None = None
    illuminations: tuple[int, ...] | None = None  # flash shots 0..19 ("7", "0-19", "0,7")
    recordings: str | None = None  # "first" (per subject and expression) or "all"
    train_subjects: int | None = None  # first N sorted subject ids -> train, the rest -> test
    require_complete: bool = False

    name = "multipie"
    datasheet = Datasheet(
        title="CMU Multi-PIE",
        citation=("R. Gross, I. Matthews, J. Cohn, T. Kanade, S. Baker, \"Multi-PIE\", Image and Vision "
                  "Computing 28(5), 2010."),
        licence=("Distributed by Carnegie Mellon University under a licence agreement; the images may not be "
                 "redistributed, so a build (which holds face crops) may only be shared with other licensees."),
        motivation="Face recognition across pose, illumination and expression, recorded under controlled "
                   "conditions.",
        collection="337 people recorded in up to four sessions in a studio, with 15 cameras (13 at head "
                   "height, yaw -90 to +90 degrees, and 2 above), 18 flashes plus ambient light, and up to "
                   "six expressions.",
        composition="High-resolution colour studio photos; the protocol in manifests/multipie.json selects "
                    "cameras, expressions, illuminations and the identity split.",
    )
    detect_defaults = {"detector": "hog+cnn", "cnn_max_side": 640}

    def __post_init__(self):
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass normalisation
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"database root {self.root!r} is not a directory")
        rules = load_protocol("multipie", self.protocol)
        if self.cameras is not None:
            s("cameras", tuple(camera_label(c) for c in parse_list(self.cameras)))
            if not self.cameras:
                raise ValueError("cameras: empty selection")
        if self.yaw_range is not None:
            yr = self.yaw_range
            vals = [int(v) for v in (parse_list(yr) if not isinstance(yr, tuple) else yr)]
            if len(vals) != 2 or vals[0] > vals[1]:
                raise ValueError(f"yaw_range needs LO,HI with LO <= HI, got {yr!r}")
            s("yaw_range", (vals[0], vals[1]))
        if self.expressions is not None:
            ex = tuple(e.lower() for e in parse_list(self.expressions))
            bad = [e for e in ex if e not in EXPRESSIONS]
            if bad or not ex:
                raise ValueError(f"unknown expression(s) {bad or ex}; known: {', '.join(EXPRESSIONS)}")
            s("expressions", ex)
        if self.illuminations is not None:
            ill = _ints(self.illuminations)
            lo, hi = _DOC["illumination_range"]
            if not ill or any(not lo <= i <= hi for i in ill):
                raise ValueError(f"illuminations must be shots {lo}..{hi}, got {self.illuminations!r}")
            s("illuminations", ill)
        if self.recordings is not None and self.recordings not in ("first", "all"):
            raise ValueError(f"recordings must be 'first' or 'all', got {self.recordings!r}")
        if self.train_subjects is not None:
            s("train_subjects", int(self.train_subjects))
            if self.train_subjects < 0:
                raise ValueError("train_subjects must be >= 0")
        s("require_complete", parse_bool(self.require_complete))
        if not self.selected_cameras:
            raise ValueError(f"no camera left: cameras {self.cameras or rules['cameras']} within yaw {self.yaw_range}")
        self.data_dir  # noqa: B018 - a wrong root fails here, naming what was expected and what was found

    # ------------------------------------------------------------------ resolved rules

    @property
    def rules(self) -> dict:
        return load_protocol("multipie", self.protocol)

    @property
    def selected_cameras(self) -> tuple[str, ...]:
        cams = self.cameras if self.cameras is not None else tuple(self.rules["cameras"])
        if self.yaw_range is not None:
            lo, hi = self.yaw_range
            cams = tuple(c for c in cams if CAMERA_YAW[c] is not None and lo <= CAMERA_YAW[c] <= hi)
        return cams

    @property
    def selected_expressions(self) -> tuple[str, ...]:
        return self.expressions if self.expressions is not None else tuple(self.rules["expressions"])

    @property
    def selected_illuminations(self) -> tuple[int, ...]:
        return self.illuminations if self.illuminations is not None else tuple(self.rules["illuminations"])

    @property
    def recordings_rule(self) -> str:
        return self.recordings or self.rules["recordings_per_expression"]

    @property
    def n_train_subjects(self) -> int:
        return self.train_subjects if self.train_subjects is not None else int(self.rules["split"]["train_subjects"])

    @functools.cached_property
    def data_dir(self) -> str:
        root = os.path.abspath(self.root)
        for cand in (os.path.join(root, "data"), root):
            if any(SESSION_RE.match(n) and os.path.isdir(os.path.join(cand, n, "multiview")) for n in _listdir(cand)):
                return cand
        found = _listdir(root)
        shown = ", ".join(found[:12]) + (f", … ({len(found)} entries)" if len(found) > 12 else "") if found else "nothing"
        hint = ""
        if SESSION_RE.match(os.path.basename(root)) or os.path.basename(root) == "multiview":
            hint = f" ({os.path.basename(root)!r} looks like a folder inside the copy: pass the folder holding data/)"
        raise FileNotFoundError(
            f"no session01/multiview (nor any sessionNN/multiview) under {root} or {os.path.join(root, 'data')}: "
            f"expected the Multi-PIE layout {LAYOUT}; found: {shown}{hint}"
        )

    # ------------------------------------------------------------------ survey

    @functools.cached_property
    def _survey(self) -> tuple[list[Record], dict]:
        base = self.data_dir
        sessions = {}
        for n in _listdir(base):
            m = SESSION_RE.match(n)
            if m and os.path.isdir(os.path.join(base, n, "multiview")):
                sessions[int(m.group(1))] = n
        unrecognised: list[str] = []
        attended: dict[str, dict[tuple[int, int], str]] = {}  # subject -> (session, recording) -> rel dir
        per_session = {}
        for ses in sorted(sessions):
            mv = f"{sessions[ses]}/multiview"
            subj_count = rec_count = 0
            for subj in _listdir(os.path.join(base, mv)):
                if not SUBJECT_RE.match(subj) or not os.path.isdir(os.path.join(base, mv, subj)):
                    unrecognised.append(f"{mv}/{subj}")
                    continue
                subj_count += 1
                for rec in _listdir(os.path.join(base, mv, subj)):
                    if not RECORDING_RE.match(rec):
                        unrecognised.append(f"{mv}/{subj}/{rec}")
                        continue
                    rec_count += 1
                    attended.setdefault(subj, {})[(ses, int(rec))] = f"{mv}/{subj}/{rec}"
            per_session[f"{ses:02d}"] = {"subjects": subj_count, "recordings": rec_count}
        subjects = sorted(attended, key=lambda s: (int(s), s))
        n_train = self.n_train_subjects
        split_of = {s: ("train" if i < n_train else "test") for i, s in enumerate(subjects)}

        cams, ills = self.selected_cameras, self.selected_illuminations
        records, missing_examples = [], []
        expected = 0
        missing_by_camera: dict[str, int] = {}
        missing_by_session: dict[str, int] = {}
        missing_camera_dirs = 0
        for subj in subjects:
            recs = attended[subj]
            for expr in self.selected_expressions:
                pairs = [p for p in EXPRESSIONS[expr] if p in recs]
                if self.recordings_rule == "first":
                    pairs = pairs[:1]
                for ses, rec in pairs:
                    rel_rec = recs[(ses, rec)]
                    for cam in cams:
                        cam_dir = f"{rel_rec}/{cam}"
                        names = _listdir(os.path.join(base, cam_dir))
                        if not names and not os.path.isdir(os.path.join(base, cam_dir)):
                            missing_camera_dirs += 1
                        have = {}
                        for fn in names:
                            try:
                                info = parse_path(f"{cam_dir}/{fn}")
                            except ValueError:
                                unrecognised.append(f"{cam_dir}/{fn}")
                                continue
                            have[info["illumination"]] = (fn, info)
                        for ill in ills:
                            expected += 1
                            if ill in have:
                                fn, info = have[ill]
                                rel = f"{cam_dir}/{fn}"
                                meta = {k: v for k, v in info.items() if k != "subject"}
                                records.append(Record(key=f"multipie:{rel}", source=rel, subject=subj,
                                                      split=split_of[subj], meta=meta))
                            else:
                                missing_by_camera[cam] = missing_by_camera.get(cam, 0) + 1
                                missing_by_session[f"{ses:02d}"] = missing_by_session.get(f"{ses:02d}", 0) + 1
                                if len(missing_examples) < 5:
                                    want = f"{subj}_{ses:02d}_{rec:02d}_{cam.replace('_', '')}_{ill:02d}.png"
                                    missing_examples.append(f"{cam_dir}/{want}")
        records.sort(key=lambda r: r.key)

        expected_sessions = [f"{s:02d}" for s in _DOC["sessions"]]
        sessions_missing = [s for s in expected_sessions if s not in per_session]
        n_missing = expected - len(records)
        coverage = {
            "sessions": per_session,
            "sessions_missing": sessions_missing,
            "subjects_found": len(subjects),
            "subjects_expected": _DOC["subjects"],
            "selected_images": len(records),
            "expected_images": expected,
            "missing_images": n_missing,
            "missing_by_camera": dict(sorted(missing_by_camera.items())),
            "missing_by_session": dict(sorted(missing_by_session.items())),
            "missing_camera_dirs": missing_camera_dirs,
            "missing_examples": missing_examples,
            "unrecognised": len(unrecognised),
            "unrecognised_examples": unrecognised[:5],
        }
        problems = []
        if sessions_missing:
            problems.append(f"sessions missing: {', '.join(sessions_missing)} (found {', '.join(per_session) or 'none'})")
        if len(subjects) != _DOC["subjects"]:
            problems.append(
                f"{len(subjects)} subjects found, a full copy has {_DOC['subjects']} "
                f"(the first-{n_train} train split is taken over the subjects found)"
            )
        if n_missing:
            by_cam = ", ".join(f"{c}: {k}" for c, k in sorted(missing_by_camera.items()))
            problems.append(
                f"{n_missing} of {expected} selected images missing ({missing_camera_dirs} camera folders absent; "
                f"by camera {by_cam}; e.g. {missing_examples[0]})"
            )
        if unrecognised:
            problems.append(f"{len(unrecognised)} entries do not follow {LAYOUT} (e.g. {unrecognised[0]})")
        coverage["complete"] = not problems
        coverage["problems"] = problems
        split_info = {
            "rule": "first_n_sorted_subject_ids",
            "train_subjects": n_train,
            "subjects": len(subjects),
            "train_ids": [subjects[0], subjects[min(n_train, len(subjects)) - 1]] if subjects[:n_train] else [],
            "test_ids": [subjects[n_train], subjects[-1]] if subjects[n_train:] else [],
        }
        return records, {"coverage": coverage, "split": split_info}

    def survey(self) -> dict:
        """Coverage of the copy against the selection (sessions, subjects, missing images by camera)."""
        return self._survey[1]["coverage"]

    def records(self) -> list[Record]:
        records, info = self._survey
        cov = info["coverage"]
        settle_coverage("multipie", cov["problems"], self.require_complete, str(self.data_dir))
        if not records:
            raise FileNotFoundError(
                f"no Multi-PIE images selected under {self.data_dir} (cameras {', '.join(self.selected_cameras)}, "
                f"illuminations {list(self.selected_illuminations)}, expressions {', '.join(self.selected_expressions)}): "
                + "; ".join(cov["problems"])
            )
        return list(records)

    def load(self, record: Record) -> np.ndarray:
        return decode_image(os.path.join(self.data_dir, record.source))[0]

    def input_files(self, record: Record) -> tuple[str, ...]:
        return (os.path.join(self.data_dir, record.source),)

    def fields(self) -> dict[str, str]:
        return {"session": "int", "recording": "int", "camera": "str", "yaw": "float", "expression": "str",
                "illumination": "int"}

    def describe(self) -> dict:
        records, info = self._survey
        rules = self.rules
        overrides = {k: v for k, v in (
            ("cameras", self.cameras), ("yaw_range", self.yaw_range), ("expressions", self.expressions),
            ("illuminations", self.illuminations), ("recordings", self.recordings),
            ("train_subjects", self.train_subjects)) if v is not None}
        counts: dict[str, int] = {}
        for r in records:
            counts[r.split] = counts.get(r.split, 0) + 1
        return {
            "db": "multipie",
            "root": os.path.abspath(self.root),
            "data_dir": self.data_dir,
            "protocol": {
                "name": rules["name"],
                "version": rules["version"],
                "file": rules["file"],
                "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
                "cameras": {c: CAMERA_YAW[c] for c in self.selected_cameras},
                "expressions": {e: [list(p) for p in EXPRESSIONS[e]] for e in self.selected_expressions},
                "recordings_per_expression": self.recordings_rule,
                "illuminations": list(self.selected_illuminations),
                "split": info["split"],
            },
            "require_complete": self.require_complete,
            "counts": {"records": len(records), **dict(sorted(counts.items()))},
            "coverage": info["coverage"],
        }
