"""Anatomical plausibility: does a synthetic set show heads like real ones, of real sizes?

The head-measurement model (``fetal_dcgan.anatomy``, a U-Net trained on annotated scans)
segments the head in every image and fits its ellipse. An image shows a head when the fit
is one plausible ellipse: area, axis ratio b/a and centre inside what the annotated heads
span, and a segmentation that is an ellipse. ``skull_found_rate`` is the share of such
images; the head measurements of the synthetic set's heads are compared with the
reference set's by the 1-Wasserstein distance divided by the real values' standard
deviation (0: the same distribution; 1: shifted by a real spread). The head's angle is
axial (a head at 89 degrees and one at -89 degrees lie 2 degrees apart), so its W1 is
taken on the circle of period 180 degrees and divided by the real circular SD. HC is a
share of the image width, as synthetic images have no pixel size. Reference images that
the measurement model trained on are left out, so real and synthetic heads are both
measured out of sample. The measurement is only as good as the model's own held-out
accuracy, which the status names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import torch
from scipy.stats import circstd, wasserstein_distance

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import MetricUnavailable
from fetal_dcgan.metrics.registry import NONNEGATIVE, SHARE, Key, register_figure, register_metric
from fetal_dcgan.rules import int_at_least, setting

#: Per-image measurements: the key in per_image.csv and the ellipse field it comes from.
PER_IMAGE = {
    "head_cx": "cx",
    "head_cy": "cy",
    "head_semi_major": "a",
    "head_semi_minor": "b",
    "head_fit_iou": "fit_iou",
}


def distributions(e: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HC (share of width), axis ratio and angle (degrees) of the plausible heads of a set."""
    ok = e["plausible"]
    return {"hc": e["hc_per_width"][ok], "axis_ratio": (e["b"] / e["a"])[ok], "angle": np.degrees(e["angle"][ok])}


def scaled_w1(fake: np.ndarray, real: np.ndarray, minimum: int) -> float:
    """W1(fake, real) / SD(real); NaN with fewer than ``minimum`` values on either side."""
    if min(len(fake), len(real)) < minimum:
        return math.nan
    spread = float(np.std(real, ddof=1))
    return float(wasserstein_distance(fake, real)) / spread if spread > 0 else math.nan


def circular_w1(u: np.ndarray, v: np.ndarray, period: float) -> float:
    """1-Wasserstein distance between two samples on a circle of circumference ``period``:
    min over c of the integral of |F - G - c|, whose minimiser is the length-weighted median
    of F - G over the arcs between consecutive sample points (Rabin, Delon & Gousseau 2011)."""
    u, v = np.mod(u, period), np.mod(v, period)
    points = np.sort(np.concatenate([u, v]))
    lengths = np.diff(np.append(points, points[0] + period))
    gap = np.searchsorted(np.sort(u), points, side="right") / len(u) - np.searchsorted(
        np.sort(v), points, side="right"
    ) / len(v)
    order = np.argsort(gap)
    cumulative = np.cumsum(lengths[order])
    shift = gap[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
    return float(np.sum(lengths * np.abs(gap - shift)))


def scaled_axial_w1(fake: np.ndarray, real: np.ndarray, minimum: int, period: float = 180.0) -> float:
    """Circular W1 of axial angles (degrees) over the real angles' circular SD; NaN with too few."""
    if min(len(fake), len(real)) < minimum:
        return math.nan
    spread = float(circstd(real, high=period / 2, low=-period / 2))
    return circular_w1(fake, real, period) / spread if spread > 0 else math.nan


def compare(fake: dict[str, np.ndarray], real: dict[str, np.ndarray], min_heads: int) -> dict[str, float]:
    """The set-level keys from two measured sets."""
    f, r = distributions(fake), distributions(real)
    return {
        "skull_found_rate": float(fake["plausible"].mean()),
        "skull_found_rate_real": float(real["plausible"].mean()),
        "hc_w1": scaled_w1(f["hc"], r["hc"], min_heads),
        "axis_ratio_w1": scaled_w1(f["axis_ratio"], r["axis_ratio"], min_heads),
        "angle_w1": scaled_axial_w1(f["angle"], r["angle"], min_heads),
    }


@lru_cache(maxsize=4)
def _load(path: str):
    """A bundle read once per process: bundles never change (their folder is their hash)."""
    from fetal_dcgan.anatomy.model import load_model

    return load_model(path)


def measurement_model(options: "AnatomyOptions", image_size: int):
    """The model named by ``model_path``, else the newest in ``models_dir`` for the size and fit."""
    from fetal_dcgan.anatomy.model import find_model, models_dir

    folder = models_dir(options.models_dir)
    path = options.model_path or find_model(folder, image_size, options.fit, options.source)
    if path is None:
        raise MetricUnavailable(
            f"no head-measurement model for {image_size} px (fit={options.fit}) in {folder}: "
            f"train one with python -m fetal_dcgan.anatomy train data.image_size={image_size} (add the run's data "
            "settings), or set metrics.anatomy.model_path (evaluate: --anatomy-model PATH)"
        )
    return _load(str(path))


@dataclass
class AnatomyOptions:
    model_path: Optional[str] = setting(
        None, help="a model folder; null: the newest in models_dir for the set's size, fit and data source"
    )
    models_dir: Optional[str] = setting(None, help="where trained models are found; null: the anatomy cache")
    fit: str = setting("pad", help="the fit of the set's images (data.fit)")
    source: Optional[str] = setting(None, help="the data source a model is preferred from (data.source)")
    min_heads: int = setting(10, int_at_least(1), "10", "fewer plausible heads in either set: the W1 distances are NaN")
    batch_size: int = setting(64, int_at_least(1), "64", "images a forward pass (anatomy.inference_batch_size)")


@register_metric(
    "anatomy",
    "anatomical plausibility: heads found and measured by a segmentation model",
    (
        Key(
            "skull_found_rate",
            "share of synthetic images with one plausible head ellipse",
            better="higher",
            plotted=True,
            reference_key="skull_found_rate_real",
            bounds=SHARE,
        ),
        Key("skull_found_rate_real", "the same in the reference set", role="reference"),
        Key(
            "hc_w1",
            "W1 distance of head circumference (share of width) between S's and R's heads, over R's SD",
            better="lower",
            plotted=True,
            bounds=NONNEGATIVE,
        ),
        Key("axis_ratio_w1", "the same for the axis ratio b/a", better="lower", bounds=NONNEGATIVE),
        Key(
            "angle_w1",
            "circular W1 of the major axis's angle (period 180 degrees) over R's circular SD",
            better="lower",
            bounds=NONNEGATIVE,
        ),
        Key("skull_found", "1 when the image shows one plausible head", level="image", role="diagnostic"),
        Key("hc_fraction", "head circumference as a share of the image width", level="image", role="diagnostic"),
        Key("head_semi_major", "the fitted ellipse's semi-major axis", level="image", role="diagnostic", unit="px"),
        Key("head_semi_minor", "its semi-minor axis", level="image", role="diagnostic", unit="px"),
        Key(
            "head_angle_deg",
            "its major axis's angle from horizontal (y down)",
            level="image",
            role="diagnostic",
            unit="degrees",
        ),
        Key("head_cx", "its centre's x", level="image", role="diagnostic", unit="px"),
        Key("head_cy", "its centre's y", level="image", role="diagnostic", unit="px"),
        Key("head_fit_iou", "IoU of the segmentation with its fitted ellipse", level="image", role="diagnostic"),
        Key("hc_fraction_real", "HC (share of width) of each plausible head of R", level="vector", role="reference"),
    ),
    options=AnatomyOptions,
)
def _anatomy(ctx: ScoringContext) -> dict:
    o = ctx.options
    model = measurement_model(o, int(ctx.fake.shape[-1]))
    unseen = model.unseen(ctx.real)
    if not unseen.any():
        raise MetricUnavailable(
            f"the measurement model {model.path} trained on every reference image, so real heads "
            "would be measured in sample: train it on this data config (python -m "
            "fetal_dcgan.anatomy train with the run's data settings), which leaves them out"
        )
    batch = o.batch_size
    real = ctx.reference("anatomy", lambda: model.measure(ctx.real[unseen], ctx.device, batch), model.meta["key"])
    fake = model.measure(ctx.fake, ctx.device, batch)
    per_image = {k: fake[field] for k, field in PER_IMAGE.items()}
    per_image.update(
        skull_found=fake["plausible"].astype(float),
        hc_fraction=fake["hc_per_width"],
        head_angle_deg=np.degrees(fake["angle"]),
    )
    scalars = compare(fake, real, o.min_heads)
    few = "" if math.isfinite(scalars["hc_w1"]) else f"; fewer than {o.min_heads} heads in a set: no distances"
    return {
        "scalars": scalars,
        "per_image": per_image,
        "vectors": {"hc_fraction_real": distributions(real)["hc"]},
        "status": f"ok: {model.describe()}; measurements are as accurate as that; {int(unseen.sum())} of "
        f"{len(unseen)} reference images measured (those the model trained on left out){few}",
    }


@register_figure("anatomy", "heads")
def heads_figure(fake: torch.Tensor, train, result, path, shown: int = 16):
    """Real and synthetic HC histograms beside the first synthetic images with their fitted
    ellipses (green: a plausible head; red: measured but implausible); None when the
    metric did not run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Ellipse

    p, real = result.per_image, result.vectors.get("hc_fraction_real")
    if "skull_found" not in p or real is None:
        return None
    fig = plt.figure(figsize=(11, 5), constrained_layout=True)
    grid = fig.add_gridspec(4, 8)
    ax = fig.add_subplot(grid[:, :4])
    found = p["skull_found"] > 0
    bins = np.histogram_bin_edges(np.concatenate([real, p["hc_fraction"][found]]), 20)
    ax.hist(real, bins, density=True, alpha=0.5, label=f"real ({len(real)} heads)")
    if found.any():
        ax.hist(p["hc_fraction"][found], bins, density=True, alpha=0.5, label=f"synthetic ({found.sum()} heads)")
    ax.set_xlabel("head circumference / image width")
    ax.set_ylabel("probability density")
    scalars = result.scalars
    ax.set_title(
        f"skull_found_rate {scalars.get('skull_found_rate', math.nan):.2f} (real "
        f"{scalars.get('skull_found_rate_real', math.nan):.2f}), hc_w1 {scalars.get('hc_w1', math.nan):.2f}"
    )
    ax.legend()
    for i in range(min(shown, len(fake))):
        sub = fig.add_subplot(grid[i // 4, 4 + i % 4])
        sub.imshow(fake[i, 0].numpy(), cmap="gray", vmin=0, vmax=255)
        if np.isfinite(p["head_cx"][i]):
            sub.add_patch(
                Ellipse(
                    (p["head_cx"][i], p["head_cy"][i]),
                    2 * p["head_semi_major"][i],
                    2 * p["head_semi_minor"][i],
                    angle=p["head_angle_deg"][i],
                    fill=False,
                    lw=1,
                    color="lime" if found[i] else "red",
                )
            )
        sub.set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
