"""The card's plots (matplotlib, PNG bytes): hole ratios per mask kind, mask-kind shares, detector
scores, and yaw / expression where the database records them."""

from __future__ import annotations

import json

import numpy as np

from .. import pictures


def _done(fig) -> bytes:
    return pictures.figure_png(fig)


def hole_ratio_by_kind(a: dict) -> bytes:
    fig, ax = pictures.new_figure(6.4, 3.4)
    r, kinds = a["hole_ratio"] * 100.0, a["mask_kind"]
    bins = np.linspace(0, max(1.0, float(np.ceil(r.max() / 5) * 5)), 41)
    for k in sorted(set(kinds.tolist())):
        sel = kinds == k
        ax.hist(r[sel], bins=bins, histtype="step", linewidth=1.6, label=f"{k} (n={int(sel.sum())})")
    ax.set_xlabel("hole ratio (% of the 128x128 HR pixels missing)")
    ax.set_ylabel("samples")
    ax.set_title("Hole-ratio histogram per mask kind", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return _done(fig)


def mask_shares(a: dict) -> bytes:
    kinds = a["mask_kind"].tolist()
    labels = kinds
    if "bundled" in kinds and "mask_params" in a:  # bundled sets: one bar per set/group
        labels = []
        for k, p in zip(kinds, a["mask_params"].tolist()):
            if k == "bundled":
                q = json.loads(p)
                labels.append(f"{q.get('set')}/{q.get('group')}")
            else:
                labels.append(k)
    names, counts = np.unique(np.array(labels, dtype=object), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    names, counts = names[order], counts[order]
    fig, ax = pictures.new_figure(6.4, 0.6 + 0.28 * len(names))
    y = np.arange(len(names))
    ax.barh(y, counts / counts.sum() * 100.0, color="#4c72b0")
    ax.set_yticks(y, [str(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    for yi, c in zip(y, counts):
        ax.text(c / counts.sum() * 100.0, yi, f" {c}", va="center", fontsize=7)
    ax.set_xlabel("share of samples (%)")
    ax.set_title("Mask kinds" + (" (bundled sets by group)" if "bundled" in kinds else ""), fontsize=10)
    return _done(fig)


def detector_scores(a: dict) -> bytes:
    fig, ax = pictures.new_figure(6.4, 3.2)
    for d in sorted(set(a["detector"].tolist())):
        sel = a["detector"] == d
        ax.hist(a["det_score"][sel], bins=30, histtype="step", linewidth=1.6, label=f"{d} (n={int(sel.sum())})")
    ax.set_xlabel("dlib detector score (HOG: SVM margin; CNN: confidence)")
    ax.set_ylabel("samples")
    ax.set_title("Detector score distribution of the accepted faces", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return _done(fig)


def yaw_histogram(a: dict) -> bytes:
    fig, ax = pictures.new_figure(6.4, 3.2)
    yaw = a["yaw"][np.isfinite(a["yaw"])]
    values, counts = np.unique(np.round(yaw).astype(int), return_counts=True)
    ax.bar(values, counts, width=8, color="#55a868")
    ax.set_xlabel("camera yaw (degrees; 0 = frontal)")
    ax.set_ylabel("samples")
    ax.set_title(f"Yaw ({int((~np.isfinite(a['yaw'])).sum())} samples from elevated cameras not shown)", fontsize=10)
    return _done(fig)


def expression_counts(a: dict) -> bytes:
    names, counts = np.unique(a["expression"].astype(str), return_counts=True)
    fig, ax = pictures.new_figure(6.4, 0.6 + 0.3 * len(names))
    y = np.arange(len(names))
    ax.barh(y, counts, color="#c44e52")
    ax.set_yticks(y, names.tolist(), fontsize=8)
    ax.set_xlabel("samples")
    ax.set_title("Expressions", fontsize=10)
    return _done(fig)


def all_plots(a: dict) -> list[tuple[str, str, bytes]]:
    """(file name, caption, PNG bytes) of every plot this build's fields allow."""
    out = []
    if "hole_ratio" in a and len(a["hole_ratio"]):
        out.append(("hole_ratio.png", "Hole ratio per mask kind", hole_ratio_by_kind(a)))
        out.append(("mask_kinds.png", "Mask-kind shares", mask_shares(a)))
        out.append(("detector_scores.png", "Detector scores", detector_scores(a)))
    if "yaw" in a and np.isfinite(a["yaw"]).any():
        out.append(("yaw.png", "Yaw", yaw_histogram(a)))
    if "expression" in a and len(a["expression"]):
        out.append(("expressions.png", "Expressions", expression_counts(a)))
    return out
