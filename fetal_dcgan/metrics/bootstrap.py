"""Bootstrap intervals over the images of a synthetic set.

Resampling a set with replacement duplicates images, which inflates distances such as FD,
so the intervals are percentile intervals shifted by the bootstrap estimate of bias. A
statistic sees only row indices: metrics precompute what they can (kernels, distances,
factored covariances) once, and each resample gathers from it.
"""

from __future__ import annotations

import numpy as np


def bootstrap_values(statistic, n: int, resamples: int = 200, seed: int = 0) -> np.ndarray:
    """``statistic(indices)`` for ``resamples`` resamples of n items with replacement; a
    statistic returning several values gives one column each, from the same resamples."""
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], dtype=float)


def shifted_percentile_interval(
    values: np.ndarray, estimate: float | None = None, level: float = 0.95
) -> tuple[float, float]:
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


def bootstrap_ci(
    statistic, n: int, resamples: int = 200, seed: int = 0, level: float = 0.95, estimate: float | None = None
) -> tuple[float, float]:
    """Bias-shifted percentile interval of ``statistic(indices)`` over ``resamples`` resamples of n items."""
    return shifted_percentile_interval(bootstrap_values(statistic, n, resamples, seed), estimate, level)
