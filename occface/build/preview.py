"""Labelled preview grids and hole-ratio statistics of mask kinds and degradations on real faces.

The faces are a database's first photos that give a face (``--db sample``: the astronaut and
LFW faces that ship with scikit-image), run through the build's own per-photo pipeline
(:func:`occface.build.sample.make_sample`), so a grid shows exactly what a build stores.
Every random draw comes from ``rng_for(seed, "preview:<record key>#<draw>", stage)``.

Pictures are RGB uint8 arrays with a title, column headers (the photos), row headers (the
kinds / presets) and a caption under every cell (hole ratio, or the drawn degradation).
"""

from __future__ import annotations

import dataclasses
import json
import os

import cv2
import numpy as np

from .. import degrade, masks, pictures
from ..faces.detect import detect_faces, select_faces, with_landmarks
from .config import BuildConfig
from .sample import make_sample

def sample_faces(source, n: int, cfg: BuildConfig = BuildConfig()) -> list[tuple[str, np.ndarray, object, str]]:
    """``(label, rgb, face, record key)`` for the first ``n`` records of ``source`` that give a face."""
    out = []
    for rec in source.records():
        try:
            rgb = source.load(rec)
        except Exception:  # noqa: BLE001 - a preview skips what a build would reject
            continue
        faces, why = select_faces(detect_faces(rgb, cfg.detect, landmarks=False), cfg.detect)
        if why or not faces:
            continue
        label = rec.source.replace("lfw_subset.npy", "lfw").replace(".png", "").replace(".jpg", "")
        out.append((label[:16], rgb, with_landmarks(rgb, faces[0]), rec.key))
        if len(out) >= n:
            break
    if not out:
        raise ValueError("no face found in the database's photos")
    return out


def labelled_grid(cells, row_labels: list[str], col_labels: list[str], captions=None, title: str = "",
                  footer: str | None = None) -> np.ndarray:
    """occface's one picture layout (:func:`occface.pictures.grid`); row labels split at ``\\n``."""
    return pictures.grid(cells, columns=col_labels, row_labels=[lab.split("\n") for lab in row_labels],
                         captions=captions, title=title or None, footer=footer)


def mask_rows(spec, draws: int = 1) -> list[tuple[str, object]]:
    """What a grid of ``spec`` shows, one (label, spec) per row: a mixture's components, an
    occluder's styles (when its style is ``any``), else ``draws`` rows of the spec itself."""
    if isinstance(spec, masks.MixtureMask):
        rows = []
        for w, s in spec.components:
            name = s.object if isinstance(s, masks.OccluderMask) else s.kind
            rows.append((f"{name}\nweight {w:g}", s))
        return rows
    if isinstance(spec, masks.OccluderMask) and spec.style == "any":
        return [(f"{spec.object}\n{st}", dataclasses.replace(spec, style=st))
                for st in masks.occluders.STYLES[spec.object]]
    return [(f"{spec.kind}\ndraw {k + 1}", spec) for k in range(draws)]


def _cell_sample(face, spec, draw: int, cfg: BuildConfig) -> dict:
    _, rgb, det, key = face
    return make_sample(rgb, det, f"preview:{key}#{draw}", dataclasses.replace(cfg, mask=spec))


def mask_grid(spec, faces, cfg: BuildConfig = BuildConfig(), draws: int = 1, title: str = "") -> np.ndarray:
    """One row per :func:`mask_rows` entry, one column per face: the occluded HR a build stores."""
    rows = mask_rows(spec, draws)
    cells, caps = [], []
    for r, (_, s) in enumerate(rows):
        row, cap = [], []
        for face in faces:
            smp = _cell_sample(face, s, r, cfg)
            row.append(smp["hr_occluded"])
            fb = " fallback" if json.loads(smp["meta"]["mask_params"]).get("fallback") else ""
            cap.append(f"hole {smp['meta']['hole_ratio']:.3f}{fb}")
        cells.append(row)
        caps.append(cap)
    return labelled_grid(cells, [lab for lab, _ in rows], [f[0] for f in faces], caps, title,
                         footer="Caption: hole ratio (mask = 1 where the occluder's alpha > 0.5, or the hole); "
                                "'fallback': the object's documented fallback was drawn.")


def mask_stats(spec, faces, cfg: BuildConfig = BuildConfig(), draws: int = 20) -> dict:
    """Hole ratios per :func:`mask_rows` label over ``faces`` x ``draws``: mean, min, percentiles, max."""
    out = {}
    for lab, s in mask_rows(spec, 1):
        ratios, fallbacks = [], 0
        for face in faces:
            for k in range(draws):
                smp = _cell_sample(face, s, k, cfg)
                ratios.append(smp["meta"]["hole_ratio"])
                fallbacks += bool(json.loads(smp["meta"]["mask_params"]).get("fallback"))
        r = np.array(ratios)
        p10, p50, p90 = np.percentile(r, [10, 50, 90])
        name = " ".join(part for part in lab.split("\n") if not part.startswith(("weight", "draw")))
        out[name] = {
            "n": len(r), "mean": float(r.mean()), "min": float(r.min()), "p10": float(p10), "p50": float(p50),
            "p90": float(p90), "max": float(r.max()), "fallbacks": int(fallbacks),
            "hist": np.histogram(r, bins=10, range=(0.0, 1.0))[0].tolist()}
    return out


def format_stats(st: dict) -> str:
    lines = [f"{'kind':28s} {'n':>5s} {'mean':>6s} {'min':>6s} {'p10':>6s} {'p50':>6s} {'p90':>6s} {'max':>6s}  fallbacks"]
    for k, v in st.items():
        lines.append(f"{k:28s} {v['n']:5d} {v['mean']:6.3f} {v['min']:6.3f} {v['p10']:6.3f} {v['p50']:6.3f} "
                     f"{v['p90']:6.3f} {v['max']:6.3f}  {v['fallbacks']}")
    lines += ["", "hole-ratio histogram (10 bins over [0, 1]):"]
    for k, v in st.items():
        lines.append(f"  {k:26s} " + " ".join(f"{c:4d}" for c in v["hist"]))
    return "\n".join(lines)


def _degrade_caption(params: dict) -> str:
    bits = []
    for p in params["steps"]:
        op = p["op"]
        if op == "blur":
            bits.append(f"b{max(p['sigma_x'], p['sigma_y']):.1f}")
        elif op == "motion_blur":
            bits.append(f"m{p['ksize']}")
        elif op == "resize" and not p.get("final"):
            bits.append(f"/{p['scale']:.1f}")
        elif op == "noise":
            bits.append(f"n{p['sigma']:.0f}")
        elif op == "jpeg":
            bits.append(f"q{p['quality']}")
        elif op == "color_jitter":
            bits.append("cj")
        elif op == "gray":
            bits.append("g")
    return " ".join(bits) or "bilinear"


def degrade_grid(specs: dict, faces, cfg: BuildConfig = BuildConfig(), draws: int = 1, title: str = "",
                 zoom: int = 8) -> np.ndarray:
    """Row 1: the clean HR; then per preset (and draw) the LR of each face, enlarged ``zoom`` x (nearest)."""
    cells, caps, labels = [], [], ["HR 128 px\n(clean)"]
    row, cap = [], []
    hrs = []
    for face in faces:
        hr = _cell_sample(face, cfg.mask, 0, cfg)["hr"]
        hrs.append(hr)
        row.append(hr)
        cap.append("")
    cells.append(row)
    caps.append(cap)
    for name, spec in specs.items():
        for k in range(1 if spec.is_none else draws):  # `none` draws nothing: one row says it all
            row, cap = [], []
            for face, hr in zip(faces, hrs):
                params, lr = degrade.degrade_for(spec, cfg.seed, f"preview:{face[3]}#{k}", hr, cfg.lr_size, cfg.resize_rule)
                big = cv2.resize(lr, (lr.shape[1] * zoom, lr.shape[0] * zoom), interpolation=cv2.INTER_NEAREST)
                row.append(big)
                cap.append(_degrade_caption(params))
            cells.append(row)
            caps.append(cap)
            labels.append(f"{name}\nLR {cfg.lr_size} px x{zoom}" + (f"\ndraw {k + 1}" if draws > 1 and not spec.is_none else ""))
    return labelled_grid(cells, labels, [f[0] for f in faces], caps, title,
                         footer="Captions: b blur sigma (HR px), /r shrink factor, n noise sigma (0-255), q JPEG quality, "
                                "m motion-blur length, cj colour jitter; 'bilinear': the plain downsample.")


def write_picture(path: str, rgb: np.ndarray, jpeg_quality: int = 88) -> None:
    """Write an RGB picture atomically: PNG (:func:`occface.pictures.write_png`) or, for ``.jpg`` /
    ``.jpeg``, JPEG at ``jpeg_quality`` (a tenth of the PNG's size for these photo grids)."""
    if not path.lower().endswith((".jpg", ".jpeg")):
        pictures.write_png(path, rgb)
        return
    from ..format.atomic import write_bytes_atomic

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise OSError(f"could not encode {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes_atomic(path, buf.tobytes())
