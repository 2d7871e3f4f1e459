"""What a run-level test can conclude: its power, an equivalence test, and a verdict word.

A non-significant omnibus test is not evidence of no difference. Each omnibus row
therefore carries the minimum detectable effect of its design at 80 % power (Cohen's f,
and in the metric's units as the standard deviation of the level means), the power to
detect a difference as large as the equivalence margin, and an equivalence test against
that margin (TOST; with more than two levels, the intersection-union test: every pair of
levels equivalent, so the largest pairwise p counts). The margin is the real-vs-real
spread of the metric at the study's set size (``python -m fetal_dcgan.baselines
--margins``). The verdict is ``differs``, ``equivalent`` or ``undetermined``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations

import numpy as np
from scipy.optimize import brentq

#: The study's significance level, and the power at which minimum detectable effects are given.
ALPHA, POWER = 0.05, 0.8
DIFFERS, EQUIVALENT, UNDETERMINED = "differs", "equivalent", "undetermined"


def power_f(f: float, df_num: float, df_denom: float, alpha: float) -> float:
    """Power of an F test to detect Cohen's f (noncentrality f^2 (df_num + df_denom + 1),
    statsmodels' ``FTestPowerF2``; equal to ``FTestAnovaPower`` for a one-way design)."""
    from statsmodels.stats.power import FTestPowerF2

    if not (math.isfinite(f) and df_denom > 0):
        return math.nan
    return float(FTestPowerF2().power(f * f, df_num, df_denom, alpha))


@lru_cache(maxsize=256)  # every metric of a design shares its degrees of freedom
def minimum_detectable_f(df_num: float, df_denom: float, alpha: float, power: float = POWER) -> float:
    """Cohen's f that the F test detects with ``power``."""
    if df_denom <= 0:
        return math.nan
    high = 1.0
    while power_f(math.sqrt(high), df_num, df_denom, alpha) < power:  # bracket before the noncentral F's tail fails
        high *= 2
        if high > 1e6:
            return math.inf
    f2 = brentq(lambda x: power_f(math.sqrt(x), df_num, df_denom, alpha) - power, 1e-12, high)
    return float(math.sqrt(f2))


def margin_f(margin: float, sigma: float, k: int) -> float:
    """Cohen's f of ``k`` level means of which two differ by ``margin`` and the rest sit
    midway (the least detectable pattern with that range), residual SD ``sigma``."""
    if not (sigma > 0 and math.isfinite(margin)):
        return math.nan
    return margin / (sigma * math.sqrt(2 * k))


def equivalence_p(groups: list[np.ndarray], margin: float) -> float:
    """TOST p (Welch; statsmodels' ``ttost_ind``) that the levels are equivalent within
    +-margin: the largest over every pair of levels (intersection-union test)."""
    from statsmodels.stats.weightstats import ttost_ind

    if not (math.isfinite(margin) and margin > 0) or len(groups) < 2 or min(map(len, groups)) < 2:
        return math.nan
    worst = 0.0
    for a, b in combinations(groups, 2):
        if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread: the difference is known exactly
            p = 0.0 if abs(a.mean() - b.mean()) < margin else 1.0
        else:
            p = float(ttost_ind(a, b, -margin, margin, usevar="unequal")[0])
        worst = max(worst, p)
    return worst


def verdict(p_adjusted: float, equivalence_adjusted: float, alpha: float) -> str:
    """differs (adjusted omnibus p < alpha), equivalent (adjusted TOST p < alpha), else undetermined."""
    if p_adjusted < alpha:
        return DIFFERS
    if equivalence_adjusted < alpha:
        return EQUIVALENT
    return UNDETERMINED
