"""Precision, recall, density and coverage of a synthetic set in a feature space.

Transcribed from Kynkäänniemi et al. 2019 (precision, recall with k-NN balls) and
Naeem et al. 2020 (density, coverage), k nearest neighbours (``prdc.k`` in
``conf/metrics``: 5, Naeem et al.'s default), Euclidean distances, in the best feature space
available; tests compare with the authors' ``prdc`` package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fetal_dcgan.metrics.bootstrap import bootstrap_values, shifted_percentile_interval
from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import MetricUnavailable, SpaceOptions
from fetal_dcgan.metrics.registry import NONNEGATIVE, SHARE, Key, ci_share, interval, register_metric
from fetal_dcgan.rules import int_at_least, setting


class NeighbourBalls:
    """The distances precision, recall, density and coverage need, computed once: a
    bootstrap resample of the synthetic set then only gathers rows and columns of them."""

    def __init__(self, fake_features: torch.Tensor, real_features: torch.Tensor, k: int):
        real, fake = real_features.double(), fake_features.double()
        if min(len(real), len(fake)) <= k:
            raise MetricUnavailable(f"precision/recall need more than k={k} images in each set.")
        self.k = k
        self.real_radius = _kth_neighbour_radius(torch.cdist(real, real), k)
        self.fake_fake = torch.cdist(fake, fake)
        self.cross = torch.cdist(real, fake)  # (real, fake)

    def scores(self, index: torch.Tensor | None = None) -> dict[str, float]:
        """The four scores of the synthetic set, or of its resample ``index`` (with repeats)."""
        fake_fake = self.fake_fake if index is None else self.fake_fake[index][:, index]
        cross = self.cross if index is None else self.cross[:, index]
        fake_radius = _kth_neighbour_radius(fake_fake, self.k)
        inside_real = cross < self.real_radius[:, None]
        precision = inside_real.any(0).double().mean()
        recall = (cross < fake_radius[None, :]).any(1).double().mean()
        density = inside_real.sum(0).double().mean() / self.k
        coverage = (cross.min(1).values < self.real_radius).double().mean()
        return {
            "precision": float(precision),
            "recall": float(recall),
            "density": float(density),
            "coverage": float(coverage),
        }


def _kth_neighbour_radius(distances: torch.Tensor, k: int) -> torch.Tensor:
    return distances.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


def prdc(fake_features: torch.Tensor, real_features: torch.Tensor, k: int) -> dict[str, float]:
    return NeighbourBalls(fake_features, real_features, k).scores()


@dataclass
class PrdcOptions(SpaceOptions):
    k: int = setting(5, int_at_least(1), "5", "nearest neighbours (Naeem et al.'s default)")
    ci_share: float = ci_share(0.25)


@register_metric(
    "prdc",
    "precision, recall, density and coverage with k-NN balls in feature space",
    (
        Key(
            "precision",
            "share of synthetic images inside a real image's k-NN ball (fidelity)",
            better="higher",
            plotted=True,
            bounds=SHARE,
        ),
        Key(
            "recall",
            "share of real images inside a synthetic image's k-NN ball (diversity)",
            better="higher",
            plotted=True,
            bounds=SHARE,
        ),
        Key(
            "density",
            "mean count of real balls holding each synthetic image, over k",
            better="higher",
            bounds=NONNEGATIVE,
        ),
        Key("coverage", "share of real images whose ball holds a synthetic image", better="higher", bounds=SHARE),
        *interval("precision"),
        *interval("recall"),
    ),
    options=PrdcOptions,
)
def _prdc(ctx: ScoringContext) -> dict:
    space, k = ctx.space(), ctx.options.k
    balls = NeighbourBalls(ctx.features(space).to(ctx.device), ctx.features(space, ctx.real).to(ctx.device), k)
    scalars = balls.scores()
    names = ("precision", "recall")

    def resampled(i: np.ndarray) -> list[float]:  # both from one pass over each resample
        scores = balls.scores(torch.from_numpy(i).to(ctx.device))
        return [scores[name] for name in names]

    values = bootstrap_values(resampled, len(balls.fake_fake), ctx.resamples(), ctx.seed).reshape(-1, len(names))
    for column, name in enumerate(names):
        scalars[f"{name}_ci_low"], scalars[f"{name}_ci_high"] = shifted_percentile_interval(
            values[:, column], scalars[name]
        )
    return {"scalars": scalars, "status": f"ok: {ctx.label(space)} features, k={k}"}
