"""The sweep's figures as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from fetal_dcgan.metrics import registry  # noqa: E402
from fetal_dcgan.metrics.lbp import NAMED_ELEMENTS  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0, 1, 0.96) if fig._suptitle is not None else None)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plottable(results: pd.DataFrame) -> list[str]:
    """The declared keys marked ``plotted`` that the results hold, not all NaN."""
    return [k.name for k in registry.keys() if k.plotted and k.name in results and results[k.name].notna().any()]


#: Axis labels of the time axes a snapshot can be placed on.
AXIS_LABELS = {"epoch": "epoch", "kimg": "kimg (thousand real images shown to D)", "step": "optimizer step"}


def metric_lines(results: pd.DataFrame, x: str, hue: str | list[str], path: Path) -> Path | None:
    """One panel per metric: mean (and SD over runs) against ``x``, one line per level (or
    combination of levels) of ``hue``; nothing when ``x`` takes a single value."""
    metrics = plottable(results)
    if not metrics or x not in results or results[x].nunique() < 2:
        return None
    hue = [h for h in ([hue] if isinstance(hue, str) else hue) if h in results]
    lines = list(results.groupby(hue)) if hue else [("all", results)]
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for levels, group in lines:
            summary = group.groupby(x)[metric].agg(["mean", "std"]).reset_index()
            label = ", ".join(f"{h}={v}" for h, v in zip(hue, np.atleast_1d(levels))) or "all"
            ax.errorbar(
                summary[x],
                summary["mean"],
                yerr=summary["std"].fillna(0),
                marker="o",
                ms=3,
                capsize=2,
                label=label,
            )
        declared = registry.key(metric)
        if declared.reference_key in results and results[declared.reference_key].notna().any():
            ax.axhline(results[declared.reference_key].mean(), color="k", ls="--", lw=0.8)
        ax.set_title(f"{metric} ({declared.unit})" if declared.unit else metric, fontsize=9)
        ax.set_xlabel(AXIS_LABELS.get(x, x), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(
        f"metrics against {x} ({'one line per ' + ', '.join(hue) if hue else 'all runs'}; error bars: SD over runs; "
        "dashed: the reference set's value)",
        fontsize=10,
    )
    return save_figure(fig, path)


def lbp_vectors(sets: list[tuple[str, np.ndarray, np.ndarray, int]], path: Path) -> Path | None:
    """sLBPv of each set against rLBPv as normalised fractions (log scale), the study's elements marked."""
    if not sets:
        return None

    def draw(ax, item) -> None:
        title, reference, synthetic, _ = item
        codes = np.arange(256)
        ax.semilogy(codes, np.maximum(reference, 1e-6), color="k", lw=0.8, label="rLBPv")
        ax.semilogy(codes, np.maximum(synthetic, 1e-6), color="tab:orange", lw=0.8, label="sLBPv")
        for code in NAMED_ELEMENTS:
            ax.axvline(code, color="tab:red", lw=0.6, alpha=0.6)
            ax.plot([code], [max(synthetic[code], 1e-6)], "o", color="tab:red", ms=3)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("fraction of codes", fontsize=7)
        ax.tick_params(labelsize=7)
        if item is sets[0]:
            ax.legend(fontsize=6)

    return panel_grid(
        sets,
        draw,
        path,
        title="LBP vectors as fractions of all codes: synthetic (orange) vs "
        "reference (black); red: V8, V20, V143, V240",
    )


def lbp_differences(sets: list[tuple[str, np.ndarray, np.ndarray, int]], path: Path) -> Path | None:
    """rLBPv - sLBPv in the paper's units: codes per image (fraction x pixels per image)."""
    if not sets:
        return None

    def draw(ax, item) -> None:
        title, reference, synthetic, pixels = item
        difference = (reference - synthetic) * pixels
        ax.bar(np.arange(256), difference, width=1.0, color="tab:gray")
        ax.bar(list(NAMED_ELEMENTS), difference[list(NAMED_ELEMENTS)], width=3.0, color="tab:red")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("codes per image", fontsize=7)
        ax.tick_params(labelsize=7)

    return panel_grid(
        sets, draw, path, title="rLBPv - sLBPv in codes per image (the paper's units); red: V8, V20, V143, V240"
    )


def loss_curves(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], path: Path) -> Path | None:
    """Discriminator and generator losses of every run against epoch."""
    if not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for run, series in curves.items():
        for ax, key in zip(axes, ("train/loss_d", "train/loss_g")):
            if key in series:
                ax.plot(*series[key], lw=0.9, label=f"run {run}")
    for ax, key in zip(axes, ("train/loss_d", "train/loss_g")):
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    axes[0].legend(fontsize=6, ncol=2)
    return save_figure(fig, path)


def sample_grid(files: list[Path], path: Path, scale: int = 4) -> Path | None:
    """The first 9 images of a set as a 3x3 grid, enlarged without smoothing."""
    files = files[:9]
    if not files:
        return None
    images = [np.asarray(Image.open(f).convert("L")) for f in files]
    h, w = images[0].shape
    grid = np.zeros((3 * h + 4, 3 * w + 4), np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, 3)
        grid[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST).save(path)
    return path


def cell_sheet(items: list[tuple[str, list[Path]]], path: Path, per_row: int = 8) -> Path | None:
    """One labelled row of ``per_row`` samples per cell, so cells compare side by side."""
    items = [(label, files[:per_row]) for label, files in items if files]
    if not items:
        return None
    fig, axes = plt.subplots(len(items), 1, figsize=(1.4 * per_row, 1.75 * len(items)), squeeze=False)
    for ax, (label, files) in zip(axes.flat, items):
        images = [np.asarray(Image.open(f).convert("L")) for f in files]
        gap = np.full((images[0].shape[0], 2), 255, np.uint8)
        ax.imshow(np.hstack([x for image in images for x in (image, gap)][:-1]), cmap="gray", vmin=0, vmax=255)
        ax.set_title(label, fontsize=8, loc="left")
        ax.axis("off")
    return save_figure(fig, path)


def panel_grid(items: list, draw, path: Path, cols: int = 4, title: str | None = None) -> Path:
    """One panel per item, ``cols`` a row; ``draw(ax, item)`` fills each."""
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(14, 3 * rows), squeeze=False)
    if title:
        fig.suptitle(title, fontsize=10)
    for ax, item in zip(axes.flat, items):
        draw(ax, item)
    for ax in axes.flat[len(items) :]:
        ax.axis("off")
    return save_figure(fig, path)
