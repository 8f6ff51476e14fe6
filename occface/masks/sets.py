"""Versioned evaluation mask sets: a spec (kinds, counts, seed), the generated masks, their checksums.

A set lives in one folder (bundled ones under the top-level ``masks/``
folder, installed as the ``occface_masksets`` package):

* ``spec.json``  ``{"name", "format", "size", "seed", "stream", "description",
  "groups": [{"label", "count", "spec"}, ...]}`` where ``spec`` is a mask spec
  as written by :func:`occface.masks.spec_to_dict`;
* ``masks.npz``  ``bits`` (n, size*size/8) uint8 = ``np.packbits`` of each
  mask (row-major, 1 = missing), ``group`` (n,) int16 index into the groups,
  ``count`` (n,) int32 hole pixels; written with fixed zip metadata and no
  compression, so the file bytes are reproducible;
* ``checksums.json`` SHA-256 of both files and of each array's bytes.

Mask ``j`` of group ``label`` is ``render(sample_params(spec, rng_for(seed,
f"{label}/{j:05d}", stream)))``: regenerating a set from its spec gives the
same bytes (``occface masks make``), on any machine whose OpenCV draws the
same pixels (the stroke kinds use ``cv2`` drawing).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import specs, strokes
from .bundled import bundled_names, bundled_root  # noqa: F401  (bundled_names re-exported)

FORMAT = 1
FILES = ("spec.json", "masks.npz")
NPZ_ORDER = ("bits", "count", "group")
ARRAY_DTYPES = {"bits": "|u1", "count": "<i4", "group": "<i2"}


# ----------------------------------------------------------------------------- specs


def canonical_spec(spec: dict) -> dict:
    """Validated spec with a fixed key order (the exact content of ``spec.json``)."""
    for k in ("name", "size", "seed", "groups"):
        if k not in spec:
            raise ValueError(f"mask-set spec lacks {k!r}")
    if spec.get("format", FORMAT) != FORMAT:
        raise ValueError(f"mask-set format {spec.get('format')!r} is not supported (expected {FORMAT})")
    size = int(spec["size"])
    if size % 8 or size < 8:
        raise ValueError("mask-set size must be a positive multiple of 8")
    groups, labels = [], set()
    for g in spec["groups"]:
        label, count = str(g["label"]), int(g["count"])
        if label in labels or "/" in label or not label:
            raise ValueError(f"group labels must be unique, non-empty and free of '/': {label!r}")
        labels.add(label)
        if count < 1:
            raise ValueError(f"group {label!r}: count must be >= 1")
        s = specs.spec_from_dict(g["spec"])
        if _needs_face(s):
            raise ValueError(f"group {label!r}: {type(s).__name__} cannot form a fixed set (needs a face or a set)")
        groups.append({"label": label, "count": count, "spec": specs.spec_to_dict(s)})
    if not groups:
        raise ValueError("a mask set needs at least one group")
    return {
        "name": str(spec["name"]),
        "format": FORMAT,
        "size": size,
        "seed": int(spec["seed"]),
        "stream": str(spec.get("stream", "maskset")),
        "description": str(spec.get("description", "")),
        "groups": groups,
    }


def _needs_face(spec) -> bool:
    if isinstance(spec, specs.MixtureMask):
        return any(_needs_face(s) for _, s in spec.components)
    return isinstance(spec, (specs.PartMask, specs.BundledSet))


def spec_bytes(spec: dict) -> bytes:
    return (json.dumps(canonical_spec(spec), indent=2) + "\n").encode("utf-8")


# ----------------------------------------------------------------------------- locating


def is_build(src) -> bool:
    """True when ``src`` is an occface build folder (it holds a ``manifest.json``), not a mask set."""
    return Path(os.fspath(src)).joinpath("manifest.json").is_file()


def set_folder(src):
    """A bundled name or a folder path -> a Traversable / Path for the set's folder."""
    p = Path(os.fspath(src))
    if is_build(p):
        raise FileNotFoundError(f"{src} is an occface build (it holds manifest.json), not a mask set")
    if p.is_dir():
        return p
    if p.name == "spec.json" and p.is_file():
        return p.parent
    root = bundled_root()
    if "/" not in str(src) and root.joinpath(str(src), "spec.json").is_file():
        return root.joinpath(str(src))
    raise FileNotFoundError(f"no mask set {src!r}: not a bundled set ({bundled_names()}) nor a set folder")


def read_spec(src) -> dict:
    """Spec from a bundled set name, a set folder, or a ``spec.json`` path (validated, canonical)."""
    p = Path(os.fspath(src))
    if p.is_file():
        return canonical_spec(json.loads(p.read_text("utf-8")))
    return canonical_spec(json.loads(set_folder(src).joinpath("spec.json").read_text("utf-8")))


# ----------------------------------------------------------------------------- files


def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in NPZ_ORDER:
            arr = np.ascontiguousarray(arrays[name], dtype=ARRAY_DTYPES[name])
            data = io.BytesIO()
            np.lib.format.write_array(data, arr, version=(1, 0), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, data.getvalue())
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def checksums(spec_b: bytes, npz_b: bytes, arrays: dict) -> dict:
    return {
        "files": {"spec.json": _sha(spec_b), "masks.npz": _sha(npz_b)},
        "arrays": {k: _sha(np.ascontiguousarray(arrays[k], dtype=ARRAY_DTYPES[k]).tobytes()) for k in NPZ_ORDER},
        "n": int(len(arrays["bits"])),
    }


# ----------------------------------------------------------------------------- loading


class MaskSet:
    """A loaded set: ``spec``, ``name``, ``size``, ``labels``, ``bits``, ``count``, ``group``."""

    def __init__(self, spec: dict, arrays: dict):
        self.spec = spec
        self.name = spec["name"]
        self.size = spec["size"]
        self.labels = tuple(g["label"] for g in spec["groups"])
        self.bits = arrays["bits"]
        self.count = arrays["count"]
        self.group = arrays["group"]
        self._pools: dict = {}

    def __len__(self) -> int:
        return len(self.bits)

    @property
    def ratio(self) -> np.ndarray:
        return self.count / float(self.size * self.size)

    def mask(self, i: int, size: int | None = None) -> np.ndarray:
        """Mask ``i`` as a (size, size) uint8 array, 1 = missing."""
        if size is not None and size != self.size:
            raise ValueError(f"mask set {self.name!r} holds {self.size}px masks, not {size}px")
        if not 0 <= i < len(self.bits):
            raise IndexError(f"mask set {self.name!r} has {len(self.bits)} masks, no index {i}")
        return np.unpackbits(self.bits[i]).reshape(self.size, self.size)

    def indices(self, groups=()) -> np.ndarray:
        """Indices of the masks in ``groups`` (labels; empty = all)."""
        key = tuple(groups)
        if key not in self._pools:
            if key:
                unknown = set(key) - set(self.labels)
                if unknown:
                    raise ValueError(f"mask set {self.name!r} has no groups {sorted(unknown)}; groups: {self.labels}")
                want = [self.labels.index(g) for g in key]
                self._pools[key] = np.flatnonzero(np.isin(self.group, want))
            else:
                self._pools[key] = np.arange(len(self.bits))
        return self._pools[key]


def read_arrays(folder) -> dict:
    with np.load(io.BytesIO(folder.joinpath("masks.npz").read_bytes()), allow_pickle=False) as z:
        return {k: z[k] for k in NPZ_ORDER}


@functools.lru_cache(maxsize=8)
def load_set(src) -> MaskSet:
    """Load (and cache) a set by bundled name or folder path."""
    folder = set_folder(src)
    return MaskSet(read_spec(folder), read_arrays(folder))


def verify(src) -> list[str]:
    """Problems found in a set (empty list = fine).

    Checks the files and arrays against ``checksums.json`` and that each stored count
    matches its bits.  ``occface.masks.make.regenerate_problems`` also regenerates the
    set from its spec.
    """
    folder = set_folder(src)
    problems = []
    sums = json.loads(folder.joinpath("checksums.json").read_text("utf-8"))
    for f in FILES:
        got = _sha(folder.joinpath(f).read_bytes())
        if got != sums["files"].get(f):
            problems.append(f"{f}: sha256 {got} != recorded {sums['files'].get(f)}")
    spec = read_spec(folder)
    if folder.joinpath("spec.json").read_bytes() != spec_bytes(spec):
        problems.append("spec.json is not in canonical form")
    arrays = read_arrays(folder)
    for k in NPZ_ORDER:
        got = _sha(np.ascontiguousarray(arrays[k], dtype=ARRAY_DTYPES[k]).tobytes())
        if got != sums["arrays"].get(k):
            problems.append(f"array {k}: sha256 {got} != recorded {sums['arrays'].get(k)}")
    pop = np.unpackbits(arrays["bits"], axis=1).sum(1)
    if not np.array_equal(pop, arrays["count"]):
        problems.append("stored hole counts do not match the mask bits")
    expected = sum(g["count"] for g in spec["groups"])
    if len(arrays["bits"]) != expected or arrays["bits"].shape[1] != spec["size"] ** 2 // 8:
        problems.append(f"array shapes do not match the spec ({expected} masks of {spec['size']}px)")
    return problems


# ----------------------------------------------------------------------------- stats and pictures


def stats(ms: MaskSet) -> dict:
    r = ms.ratio
    n_pix = ms.size * ms.size
    buckets = np.array([strokes.bucket_of_count(int(c), n_pix) for c in ms.count.tolist()])
    groups = []
    for gi, label in enumerate(ms.labels):
        sel = ms.group == gi
        rg = r[sel]
        groups.append(
            {
                "label": label,
                "n": int(sel.sum()),
                "mean": float(rg.mean()),
                "min": float(rg.min()),
                "max": float(rg.max()),
                "buckets": np.bincount(buckets[sel], minlength=8).tolist(),
            }
        )
    hist, edges = np.histogram(r, bins=20, range=(0.0, 1.0))
    return {
        "name": ms.name,
        "n": len(ms),
        "size": ms.size,
        "seed": ms.spec["seed"],
        "groups": groups,
        "buckets": np.bincount(buckets, minlength=8).tolist(),
        "hist": hist.tolist(),
        "edges": edges.tolist(),
    }


BUCKET_LABELS = ("<=0.01", "(0.01,0.1]", "(0.1,0.2]", "(0.2,0.3]", "(0.3,0.4]", "(0.4,0.5]", "(0.5,0.6]", ">0.6")


def format_stats(st: dict) -> str:
    lines = [f"{st['name']}: {st['n']} masks, {st['size']}px, seed {st['seed']}", ""]
    lines.append(f"{'group':18s} {'n':>5s} {'ratio mean':>10s} {'min':>6s} {'max':>6s}  bucket")
    for g in st["groups"]:
        occupied = [BUCKET_LABELS[k] + (f" x{c}" if c != g["n"] else "") for k, c in enumerate(g["buckets"]) if c]
        row = f"{g['label']:18s} {g['n']:5d} {g['mean']:10.4f} {g['min']:6.4f} {g['max']:6.4f}"
        lines.append(f"{row}  {', '.join(occupied)}")
    lines += ["", "per PConv bucket (hole ratio):"]
    top = max(st["buckets"]) or 1
    for lab, c in zip(BUCKET_LABELS, st["buckets"]):
        lines.append(f"  {lab:11s} {c:6d}  {'#' * round(40 * c / top)}")
    lines += ["", "hole-ratio histogram:"]
    top = max(st["hist"]) or 1
    for (a, b), c in zip(zip(st["edges"][:-1], st["edges"][1:]), st["hist"]):
        lines.append(f"  [{a:.2f},{b:.2f}) {c:6d}  {'#' * round(40 * c / top)}")
    return "\n".join(lines)


def grid(ms: MaskSet, per_group: int = 8, gap: int = 3) -> np.ndarray:
    """A labelled (H, W, 3) uint8 RGB picture of the set: holes white, kept pixels black.

    Each group with at least ``per_group`` masks has a row of its first ``per_group`` masks,
    labelled with the group name, its mask count and its hole-ratio range; groups smaller
    than that share rows (each mask captioned with its group), so no row is mostly filler.
    Every mask is captioned with its hole ratio in percent.
    """
    from .. import pictures

    st = {g["label"]: g for g in stats(ms)["groups"]}
    cells, labels, caps = [], [], []
    small: list[tuple[str, int]] = []
    for label in ms.labels:
        idx = ms.indices((label,)).tolist()
        if len(idx) < per_group:
            small += [(label, i) for i in idx]
            continue
        g = st[label]
        idx = idx[:per_group]
        cells.append([ms.mask(i) * 255 for i in idx])
        caps.append([f"{100 * ms.ratio[i]:.1f}%" for i in idx])
        labels.append([label, f"{g['n']} masks", f"hole {100 * g['min']:.1f}-{100 * g['max']:.1f}%"])
    for r in range(0, len(small), per_group):
        chunk = small[r : r + per_group]
        cells.append([ms.mask(i) * 255 for _, i in chunk])
        caps.append([f"{label} {100 * ms.ratio[i]:.1f}%" for label, i in chunk])
        names = sorted({label for label, _ in chunk}, key=ms.labels.index)
        labels.append(["small groups", f"{len(names)} group{'s' if len(names) > 1 else ''}, "
                       f"{len(chunk)} mask{'s' if len(chunk) > 1 else ''}", "(named in captions)"])
    title = (f"mask set {ms.name}: {len(ms)} masks of {ms.size} px, seed {ms.spec['seed']}; "
             f"first {per_group} masks of each group")
    footer = "white = missing (mask 1), black = kept; captions: hole ratio = missing pixels / all pixels."
    return pictures.grid(cells, row_labels=labels, captions=caps, title=title, footer=footer, gap=gap,
                         label_width=130)
