"""What a run-level test can conclude: its power, an equivalence test, and a verdict.

A non-significant omnibus test is not evidence of no difference. Each run-level row
therefore carries the minimum detectable effect of its design at 80 % power (Cohen's f,
and in the metric's units as the standard deviation of the level means), the power to
detect a difference as large as the equivalence margin, and an equivalence test against
that margin from the fitted model: every pair of levels' contrast (adjusted for the
other factors and the seed blocks) tested with two one-sided t tests on the model's
residual degrees of freedom; with more than two levels, the intersection-union test (every
pair equivalent, so the largest pairwise p counts).

Every verdict starts with one of three words, so a reader can filter on it:
``differs`` (adjusted omnibus p < alpha), ``differs (within margin)`` (significant, but
equivalent within the margin too: real and too small to matter), ``equivalent`` (adjusted
equivalence p < alpha), ``undetermined``. A metric whose level means all sit within a
margin of a declared bound, or whose runs vary less than a tenth of real sets do (it no
longer responds to the images), is ``undetermined (at floor)`` / ``(at ceiling)`` /
``(saturated)``, never ``equivalent``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations

import numpy as np
from scipy import stats
from scipy.optimize import brentq

from fetal_dcgan.report.settings import StudySettings

#: The default significance level and the power at which minimum detectable effects are given.
ALPHA, POWER = StudySettings.alpha, StudySettings.power
DIFFERS, EQUIVALENT, UNDETERMINED = "differs", "equivalent", "undetermined"
WITHIN_MARGIN = f"{DIFFERS} (within margin)"
AT_FLOOR, AT_CEILING, SATURATED = "at floor", "at ceiling", "saturated"
#: Runs whose spread within levels is under this share of the real-vs-real SD are saturated.
SATURATION_SHARE = 0.1


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


def tost_p(contrasts: list[tuple[float, float]], df: float, margin: float) -> float:
    """Intersection-union TOST p of (difference, standard error) contrasts on ``df`` degrees
    of freedom: the largest over the contrasts of max(P(T > (d + m) / se), P(T < (d - m) / se)).
    NaN where it cannot be computed (no margin, no residual spread)."""
    if not (math.isfinite(margin) and margin > 0 and df > 0 and contrasts):
        return math.nan
    worst = 0.0
    for difference, se in contrasts:
        if not (se > 0 and math.isfinite(se)):
            return math.nan
        lower = stats.t.sf((difference + margin) / se, df)  # H0: difference <= -margin
        upper = stats.t.cdf((difference - margin) / se, df)  # H0: difference >= +margin
        worst = max(worst, lower, upper)
    return float(worst)


def model_contrasts(fit, term: str, levels: list[str]) -> list[tuple[float, float]]:
    """(difference, standard error) of every pair of ``levels`` of the treatment-coded
    ``term`` (e.g. ``C(f0)``) of an OLS ``fit``; the first level is the baseline."""
    names = list(fit.params.index)

    def vector(level: str) -> np.ndarray:
        out = np.zeros(len(names))
        if level != levels[0]:
            out[names.index(f"{term}[T.{level}]")] = 1.0
        return out

    covariance = fit.cov_params().to_numpy()
    params = fit.params.to_numpy()
    out = []
    for a, b in combinations(levels, 2):
        c = vector(b) - vector(a)
        out.append((float(c @ params), float(math.sqrt(max(c @ covariance @ c, 0.0)))))
    return out


def saturation(
    level_means: list[float],
    within_sd: float,
    bounds: tuple[float | None, float | None],
    real_sd: float,
    margin: float = math.nan,
) -> str:
    """``at floor``/``at ceiling`` when every level mean sits at a declared bound: within one
    margin of it (no room for a margin-sized difference on that side, so the equivalence
    test would pass because of the bound), or within a tenth of the real-vs-real SD;
    ``saturated`` when the runs' spread within levels is under a tenth of the real-vs-real
    SD; else ''."""
    tolerance = max(margin if margin > 0 else 0.0, SATURATION_SHARE * real_sd if real_sd > 0 else 0.0, 1e-9)
    means = np.asarray(level_means, float)
    for bound, word in zip(bounds, (AT_FLOOR, AT_CEILING)):
        if bound is not None and len(means) and np.all(np.abs(means - bound) <= tolerance):
            return word
    if real_sd > 0 and math.isfinite(within_sd) and within_sd < SATURATION_SHARE * real_sd:
        return SATURATED
    return ""


def verdict(p_adjusted: float, equivalence_adjusted: float, alpha: float, saturated: str = "") -> str:
    """The verdict of a row from its adjusted p-values (see the module's text)."""
    differs, equivalent = p_adjusted < alpha, equivalence_adjusted < alpha
    if differs:
        return WITHIN_MARGIN if equivalent else DIFFERS
    if saturated:
        return f"{UNDETERMINED} ({saturated})"
    return EQUIVALENT if equivalent else UNDETERMINED
