"""The planner's sample sizes against statsmodels and against simulations of the test itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.power import FTestAnovaPower
from statsmodels.stats.weightstats import ttost_ind
from test_verdicts import planted

from fetal_dcgan.report.plan import (
    df_residual,
    equivalence_power,
    replicates_to_be_equivalent,
    replicates_to_differ,
    run_spread,
)
from fetal_dcgan.report.verdicts import margin_f


def test_replicates_to_differ_is_statsmodels_anova_power():
    margin, sd, k, alpha = 1.0, 1.0, 5, 0.05
    r = replicates_to_differ(margin, sd, k, blocked=False, alpha=alpha, power=0.8, most=500)
    power = FTestAnovaPower()
    f = margin_f(margin, sd, k)
    assert power.power(f, nobs=k * r, alpha=alpha, k_groups=k) >= 0.8 > power.power(f, k * (r - 1), alpha, k_groups=k)
    exact = power.solve_power(f, nobs=None, alpha=alpha, power=0.8, k_groups=k) / k
    assert r == math.ceil(exact)
    assert replicates_to_differ(margin, sd, k, blocked=True, alpha=alpha, power=0.8, most=500) >= r  # fewer df
    assert replicates_to_differ(1.0, 100.0, 2, False, 0.05, 0.8, most=10) is None


def test_equivalence_power_is_the_tost_simulated_from_data():
    """Two equal levels of r runs: the share of simulated studies whose pooled TOST passes."""
    margin, sd, r, alpha = 1.0, 1.0, 6, 0.05
    rng = np.random.default_rng(1)
    passed = [
        ttost_ind(rng.normal(0, sd, r), rng.normal(0, sd, r), -margin, margin, usevar="pooled")[0] < alpha
        for _ in range(3000)
    ]
    assert equivalence_power(margin, sd, 2, r, blocked=False, alpha=alpha) == pytest.approx(np.mean(passed), abs=0.03)
    assert df_residual(2, r, False) == 10 and df_residual(2, r, True) == 5
    r_needed = replicates_to_be_equivalent(margin, sd, 3, False, alpha, 0.8, most=200)
    assert equivalence_power(margin, sd, 3, r_needed, False, alpha) >= 0.8
    assert equivalence_power(margin, sd, 3, r_needed - 1, False, alpha) < 0.8


def test_run_spread_takes_seed_blocks_and_its_gain():
    frame = planted(levels=(100, 999), replicates=6, seed_sd=3.0, run_sd=0.5)
    spread = run_spread(frame, "lbp_l1", ["n"])
    assert spread.blocked and spread.df == 5 and spread.low < spread.sd < spread.high
    assert spread.unblocked_sd > 2 * spread.sd  # the seeds' spread is not noise once blocked
    alone = run_spread(frame.assign(seed=range(len(frame))), "lbp_l1", ["n"])
    assert not alone.blocked and alone.sd == pytest.approx(spread.unblocked_sd)
