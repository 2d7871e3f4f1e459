"""Verdicts on constructed sweeps with known answers, the model-based equivalence test against
statsmodels and formulas written out, and the seed-blocked design's error rates by simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from fetal_dcgan.report.margins import ANY_SIZE, Margin
from fetal_dcgan.report.stats import Question, anova, equivalence_contrasts, seed_blocks, sweep_statistics
from fetal_dcgan.report.verdicts import tost_p, verdict

EPOCH = 50


def planted(
    shift: float = 0.0,
    levels=(100, 999),
    replicates: int = 10,
    run_sd: float = 1.0,
    seed_sd: float = 0.0,
    value: float = 10.0,
    metric: str = "lbp_l1",
    rng_seed: int = 0,
) -> pd.DataFrame:
    """One snapshot of a sweep: every level runs the same seeds; each seed adds ``seed_sd``
    noise shared by its runs, each run ``run_sd`` of its own; the last level is shifted."""
    rng = np.random.default_rng(rng_seed)
    seed_effect = rng.normal(0, seed_sd, replicates)
    rows = []
    for n in levels:
        for s in range(replicates):
            y = value + seed_effect[s] + rng.normal(0, run_sd) + shift * (n == levels[-1])
            rows.append({"run": f"{n}-{s}", "epoch": EPOCH, "n": n, "seed": s, "image_size": 64, metric: y})
    return pd.DataFrame(rows)


def primary(results: pd.DataFrame, metric: str, margin: float | None, real_sd: float = math.nan) -> pd.Series:
    margins = {ANY_SIZE: {metric: Margin(margin, "explicit", real_sd=real_sd)}} if margin else {}
    tests, _, sensitivity = sweep_statistics(
        results, pd.DataFrame(), [metric], [], ["n"], margins=margins, question=Question("n", (metric,), EPOCH)
    )
    row = tests[tests.family == "primary"]
    assert len(row) == 1
    return row.iloc[0]


def test_a_planted_shift_of_two_run_sds_with_ten_replicates_differs():
    row = primary(planted(shift=2.0, replicates=10), "lbp_l1", margin=0.5)
    assert row.verdict == "differs" and row.p_adjusted < 0.05
    assert row.effect_size > 0.3 and row.effect_size_name == "partial_eta_squared"  # seed blocks held
    assert "seed blocks" in row.test


def test_a_planted_null_well_inside_the_margin_is_equivalent():
    row = primary(planted(shift=0.0, run_sd=0.1, replicates=5), "lbp_l1", margin=1.0)
    assert row.verdict == "equivalent" and row.equivalence_p_adjusted < 0.05 and row.margin_source == "explicit"


def test_a_metric_pinned_at_its_floor_is_never_equivalent():
    pinned = planted(value=0.0, run_sd=0.0, metric="coverage")
    row = primary(pinned, "coverage", margin=0.2)
    assert row.verdict == "undetermined (at floor)" and row.saturation == "at floor"
    near = planted(value=0.001, run_sd=1e-4, metric="coverage")  # TOST alone would call this equivalent
    row = primary(near, "coverage", margin=0.2, real_sd=0.02)
    assert row.equivalence_p < 1e-6 and row.verdict == "undetermined (at floor)"
    near_zero = planted(value=0.01, run_sd=0.02, metric="precision")  # runs near 0 with a spread, none a margin up
    row = primary(near_zero.assign(precision=near_zero.precision.clip(0, 1)), "precision", margin=0.2, real_sd=0.01)
    assert row.equivalence_p < 0.05 and row.verdict == "undetermined (at floor)"
    room = planted(value=0.5, run_sd=0.02, metric="precision")  # a margin's room on both sides: a real answer
    assert primary(room, "precision", margin=0.2, real_sd=0.01).verdict == "equivalent"


def test_runs_that_vary_far_less_than_real_sets_are_saturated():
    flat = planted(value=0.5, run_sd=1e-4, metric="lbp_l1")
    row = primary(flat, "lbp_l1", margin=0.2, real_sd=0.05)
    assert row.verdict == "undetermined (saturated)"
    assert primary(flat, "lbp_l1", margin=0.2).verdict == "equivalent"  # without a real-vs-real SD: no guard


def test_a_significant_difference_inside_the_margin_is_differs_within_margin():
    row = primary(planted(shift=0.5, run_sd=0.1, replicates=10), "lbp_l1", margin=2.0)
    assert row.verdict == "differs (within margin)"
    assert row.verdict.split()[0] == "differs"


def test_verdict_words():
    assert verdict(0.01, 0.5, 0.05) == "differs"
    assert verdict(0.01, 0.01, 0.05) == "differs (within margin)"
    assert verdict(0.5, 0.01, 0.05) == "equivalent"
    assert verdict(0.5, 0.01, 0.05, "at floor") == "undetermined (at floor)"
    assert verdict(0.5, 0.5, 0.05) == "undetermined"
    assert verdict(math.nan, math.nan, 0.05) == "undetermined"


def test_no_spread_gives_no_equivalence_p_instead_of_zero():
    assert math.isnan(tost_p([(0.0, 0.0)], 4, 1.0))
    assert math.isnan(tost_p([(0.0, 0.1)], 0, 1.0)) and math.isnan(tost_p([(0.0, 0.1)], 4, math.nan))


def _contrast_p(frame: pd.DataFrame, block: str | None, margin: float) -> float:
    contrasts, df = equivalence_contrasts(frame, "lbp_l1", ["n"], block)
    return tost_p(contrasts, df, margin)


def test_model_equivalence_equals_statsmodels_pooled_and_paired_tost():
    frame = planted(shift=0.3, replicates=6, seed_sd=1.0)
    a, b = (frame[frame.n == n].sort_values("seed")["lbp_l1"].to_numpy() for n in (100, 999))
    assert _contrast_p(frame, None, 1.5) == pytest.approx(ttost_ind(b, a, -1.5, 1.5, usevar="pooled")[0], rel=1e-9)
    assert seed_blocks(frame, ["n"]) == "seed"
    assert _contrast_p(frame, "seed", 1.5) == pytest.approx(ttost_paired(b, a, -1.5, 1.5)[0], rel=1e-9)


def test_three_level_blocked_equivalence_written_out():
    """The additive model n + seed, balanced: each pair's contrast is a difference of level means with
    SE = s sqrt(2 / r), s the residual SD of the two-way layout on (k - 1)(r - 1) df."""
    frame = planted(levels=(100, 300, 999), replicates=4, seed_sd=2.0, shift=0.4)
    wide = frame.pivot(index="seed", columns="n", values="lbp_l1").to_numpy()
    r, k = wide.shape
    residual = wide - wide.mean(0) - wide.mean(1, keepdims=True) + wide.mean()
    df = (k - 1) * (r - 1)
    s = math.sqrt((residual**2).sum() / df)
    expected = 0.0
    for i, j in ((0, 1), (0, 2), (1, 2)):
        d, se = wide[:, j].mean() - wide[:, i].mean(), s * math.sqrt(2 / r)
        expected = max(expected, stats.t.sf((d + 1.0) / se, df), stats.t.cdf((d - 1.0) / se, df))
    assert _contrast_p(frame, "seed", 1.0) == pytest.approx(expected, rel=1e-9)


def _rejection_rate(sweeps: int, shift: float, seed_sd: float, blocked: bool, replicates: int = 3) -> float:
    rejected = 0
    for i in range(sweeps):
        frame = planted(shift=shift, levels=(100, 300, 999), replicates=replicates, seed_sd=seed_sd, rng_seed=i)
        table, _ = anova(frame, "lbp_l1", ["n"], "seed" if blocked else None)
        rejected += table.loc["C(f0)", "PR(>F)"] < 0.05
    return rejected / sweeps


def test_seed_blocks_keep_the_type_one_error_and_gain_power_when_seeds_matter():
    """300 simulated null sweeps (3 levels x 3 shared seeds, seed SD 3x the run SD): the blocked
    test rejects within the Monte-Carlo band around 5 %; with a shift of 1.5 run SDs, blocking
    finds it far more often than the unblocked test, which counts the seeds' spread as noise."""
    null = _rejection_rate(300, 0.0, seed_sd=3.0, blocked=True)
    assert 0.025 <= null <= 0.075
    blocked = _rejection_rate(100, 1.5, seed_sd=3.0, blocked=True)
    unblocked = _rejection_rate(100, 1.5, seed_sd=3.0, blocked=False)
    assert blocked > unblocked + 0.2
