"""Inter-rater agreement: Cohen's kappa (two raters) and Fleiss' kappa (any number).

Written out because they are a few lines each; tests check them against scikit-learn's
``cohen_kappa_score`` and statsmodels' ``fleiss_kappa``. Krippendorff's alpha for the 1-5
ratings comes from the ``krippendorff`` package.
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
