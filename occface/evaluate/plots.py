"""Plots of a validation report: PSNR by mask size (the shape of Pro-UIGAN's Fig. 7)."""

from __future__ import annotations

from .. import pictures
from .report import MODEL

#: (breakdown, x-axis title), in panel order.
PANELS = (("square side", "square side (px at 128)"),
          ("hole ratio (PConv bucket)", "hole ratio (PConv bucket, % of pixels missing)"))


def psnr_by_mask(report: dict, path: str) -> None:
    """Write ``path``: mean PSNR (dB) per square size and per hole-ratio bucket, one line per
    method (the model and each baseline), the number of images under each tick."""
    panels = [(name, xlabel) for name, xlabel in PANELS if report["breakdowns"].get(name)]
    if not panels:
        panels = [("mask kind", "mask kind")] if report["breakdowns"].get("mask kind") else []
    if not panels:
        return
    fig, axes = pictures.new_figure(5.0 * len(panels) + 0.8, 3.8, ncols=len(panels))
    axes = axes if isinstance(axes, list) else [axes]
    ck = report.get("checkpoint")
    for ax, (name, xlabel) in zip(axes, panels):
        table = report["breakdowns"][name]
        labels = sorted(table)
        x = list(range(len(labels)))
        for m in report["methods"]:
            y = [table[lab][m]["psnr"] for lab in labels]
            y = [float("nan") if v is None or v == float("inf") else v for v in y]
            legend = f"Pro-UIGAN (step {ck['step']})" if m == MODEL and ck else m
            ax.plot(x, y, marker="o", linewidth=2.2 if m == MODEL else 1.2, label=legend)
        ax.set_xticks(x, [f"{lab}\nn={table[lab][report['methods'][0]]['n']}" for lab in labels], fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("PSNR (dB, RGB 0-255)")
        ax.set_title(f"PSNR by {name}", fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    d = report["data"]
    fig.suptitle(f"split {d['split']} of {d['path'].rstrip('/').split('/')[-1]}, {d['images']} images", fontsize=9)
    pictures.save_figure(fig, path)
