"""Precision, recall, density and coverage of a synthetic set in a feature space.

Transcribed from Kynkäänniemi et al. 2019 (precision, recall with k-NN balls) and
Naeem et al. 2020 (density, coverage), k = 5 nearest neighbours (Naeem et al.'s
default), Euclidean distances; tests compare with the authors' ``prdc`` package.
"""

from __future__ import annotations

import numpy as np
import torch

K_NEAREST = 5


class NeighbourBalls:
    """The distances precision, recall, density and coverage need, computed once: a
    bootstrap resample of the synthetic set then only gathers rows and columns of them."""

    def __init__(self, fake_features: torch.Tensor, real_features: torch.Tensor, k: int = K_NEAREST):
        real, fake = real_features.double(), fake_features.double()
        if min(len(real), len(fake)) <= k:
            from fetal_dcgan.metrics.features import MetricUnavailable

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
        return {"precision": float(precision), "recall": float(recall), "density": float(density),
                "coverage": float(coverage)}


def _kth_neighbour_radius(distances: torch.Tensor, k: int) -> torch.Tensor:
    return distances.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


def prdc(fake_features: torch.Tensor, real_features: torch.Tensor, k: int = K_NEAREST) -> dict[str, float]:
    return NeighbourBalls(fake_features, real_features, k).scores()


def bootstrap_values(statistic, n: int, resamples: int = 200, seed: int = 0) -> np.ndarray:
    """``statistic(indices)`` for ``resamples`` resamples of n items with replacement; a
    statistic returning several values gives one column each, from the same resamples."""
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], dtype=float)


def shifted_percentile_interval(values: np.ndarray, estimate: float | None = None,
                                level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``values``, shifted by the bootstrap estimate of bias
    (their mean minus ``estimate``, the full-sample value): resampling with replacement
    duplicates images, which inflates distances such as FD, so the plain percentile
    interval would sit above the estimate it is meant to bracket."""
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    shift = values.mean() - estimate if estimate is not None and np.isfinite(estimate) else 0.0
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail) - shift), float(np.percentile(values, 100 - tail) - shift)


def bootstrap_ci(statistic, n: int, resamples: int = 200, seed: int = 0, level: float = 0.95,
                 estimate: float | None = None) -> tuple[float, float]:
    """Bias-shifted percentile interval of ``statistic(indices)`` over ``resamples`` resamples of n items."""
    return shifted_percentile_interval(bootstrap_values(statistic, n, resamples, seed), estimate, level)
