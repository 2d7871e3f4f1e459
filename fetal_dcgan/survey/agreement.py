"""Inter-rater agreement: Cohen's kappa (two raters), weighted kappa and ICC(2,1) on the
quality scores, and Fleiss' kappa (any number).

Written out because they are a few lines each; tests check them against scikit-learn's
``cohen_kappa_score`` (weighted too), statsmodels' ``fleiss_kappa`` and the worked example of
Shrout and Fleiss (1979). Krippendorff's alpha for the 1-5
ratings comes from the ``krippendorff`` package. Kappa depends on how often each answer
is given, so each pair also gets PABAK (prevalence- and bias-adjusted kappa, 2 p_o - 1)
and the prevalence and bias indices of Byrt, Bishop and Carlin (1993); every value comes
with a percentile bootstrap CI over images (``bootstrap_over_images``).
"""

from __future__ import annotations

import numpy as np


def cohen_kappa(a: list, b: list) -> float:
    """Agreement of two raters' labels beyond chance: (p_o - p_e) / (1 - p_e)."""
    a, b = np.asarray(a), np.asarray(b)
    labels = np.union1d(a, b)
    p_o = float(np.mean(a == b))
    p_e = float(sum(np.mean(a == k) * np.mean(b == k) for k in labels))
    return float("nan") if p_e == 1 else (p_o - p_e) / (1 - p_e)


def weighted_kappa(a: list, b: list, weights: str = "linear") -> float:
    """Cohen's weighted kappa of two raters' ordinal scores: 1 - sum(w O) / sum(w E), with
    disagreement weights |i - j| (linear) or (i - j)^2 (quadratic) over the categories either
    rater used, O the observed and E the chance table of the two raters' marginals."""
    a, b = np.asarray(a), np.asarray(b)
    labels = np.union1d(a, b)
    index = {v: k for k, v in enumerate(labels)}
    observed = np.zeros((len(labels), len(labels)))
    np.add.at(observed, ([index[v] for v in a], [index[v] for v in b]), 1)
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    distance = np.abs(np.subtract.outer(np.arange(len(labels)), np.arange(len(labels))))
    w = distance if weights == "linear" else distance**2
    chance = (w * expected).sum()
    return float("nan") if chance == 0 else float(1 - (w * observed).sum() / chance)


def icc_2_1(scores: np.ndarray) -> float:
    """ICC(2,1) of Shrout and Fleiss (1979): two-way random effects, absolute agreement, one
    rater; ``scores`` is (targets, raters), complete rows only.
    (MS_rows - MS_error) / (MS_rows + (k - 1) MS_error + k (MS_cols - MS_error) / n)."""
    x = np.asarray(scores, float)
    x = x[np.isfinite(x).all(1)]
    n, k = x.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = x.mean()
    ms_rows = k * ((x.mean(1) - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((x.mean(0) - grand) ** 2).sum() / (k - 1)
    residual = x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + grand
    ms_error = (residual**2).sum() / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error + k * (ms_cols - ms_error) / n
    return float("nan") if denominator == 0 else float((ms_rows - ms_error) / denominator)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an (items, categories) table of how many raters chose each category."""
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(1)
    if len(counts) == 0 or not np.all(n == n[0]) or n[0] < 2:
        return float("nan")
    n = n[0]
    p_j = counts.sum(0) / counts.sum()
    p_i = ((counts * counts).sum(1) - n) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), (p_j * p_j).sum()
    return float("nan") if p_e == 1 else float((p_bar - p_e) / (1 - p_e))


def pair_indices(a: list, b: list, positive: str = "real") -> dict[str, float]:
    """PABAK, prevalence index |a - d| / N and bias index |b - c| / N of a 2 x 2 table of two
    raters' binary answers (a: both ``positive``, d: both not, b and c: the disagreements)."""
    a, b = np.asarray(a) == positive, np.asarray(b) == positive
    n = len(a)
    if n == 0:
        return {"pabak": float("nan"), "prevalence_index": float("nan"), "bias_index": float("nan")}
    both, neither = np.sum(a & b), np.sum(~a & ~b)
    only_a, only_b = np.sum(a & ~b), np.sum(~a & b)
    return {
        "pabak": float(2 * (both + neither) / n - 1),
        "prevalence_index": float(abs(both - neither) / n),
        "bias_index": float(abs(only_a - only_b) / n),
    }


def bootstrap_over_images(
    table: np.ndarray, statistic, resamples: int, seed: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of ``statistic(rows)`` with the rows (images) of ``table`` resampled."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(table[rng.integers(0, len(table), len(table))]) for _ in range(resamples)], float)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
