"""Reader statistics of the rating study, each against an independent implementation,
and the rater-level models on simulated studies with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from fetal_dcgan.report.ratings import clustered_ci
from fetal_dcgan.survey.agreement import bootstrap_over_images, cohen_kappa, pair_indices
from fetal_dcgan.survey.readers import auc, d_prime, mixed_effect, per_rater, per_role, wilson

from helpers import simulate_ratings


def test_auc_d_prime_and_wilson_against_their_definitions():
    rng = np.random.default_rng(0)
    real, synthetic = rng.integers(1, 6, 30).astype(float), rng.integers(1, 6, 40).astype(float)
    truth = np.r_[np.ones(30), np.zeros(40)]
    assert auc(real, synthetic) == pytest.approx(roc_auc_score(truth, np.r_[real, synthetic]))
    assert d_prime(20, 30, 10, 40) == pytest.approx(stats.norm.ppf(20.5 / 31) - stats.norm.ppf(10.5 / 41))
    assert math.isfinite(d_prime(30, 30, 0, 40))  # perfect rates stay finite (log-linear correction)
    z, k, n = stats.norm.ppf(0.975), 32, 57
    p = k / n
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)),
    )
    assert wilson(k, n) == pytest.approx((centre - half, centre + half))
    assert wilson(32, 57)[0] < 0.5 < wilson(32, 57)[1]  # 56 % of 57: not distinguishable from chance


def test_pair_indices_from_a_two_by_two_table():
    a = ["real"] * 10 + ["real"] * 5 + ["synthetic"] * 2 + ["synthetic"] * 3
    b = ["real"] * 10 + ["synthetic"] * 5 + ["real"] * 2 + ["synthetic"] * 3
    found = pair_indices(a, b)  # both real 10, a only 5, b only 2, both synthetic 3 of 20
    assert found == pytest.approx({"pabak": 2 * 13 / 20 - 1, "prevalence_index": 7 / 20, "bias_index": 3 / 20})
    table = np.array([a, b]).T
    low, high = bootstrap_over_images(table, lambda t: cohen_kappa(t[:, 0], t[:, 1]), 300, 0)
    assert low < cohen_kappa(a, b) < high


def test_per_rater_ci_resamples_synthetic_sets_whole():
    """Sets that differ a lot make a set-clustered CI wider than one that treats images as independent."""
    answers = simulate_ratings(1, raters=1, set_sd=1.5)
    clustered = per_rater(answers, resamples=400).iloc[0]
    independent = per_rater(answers.assign(run=answers["image_id"]), resamples=400).iloc[0]
    assert clustered.auc == independent.auc
    width = clustered.auc_ci_high - clustered.auc_ci_low
    assert width > 1.2 * (independent.auc_ci_high - independent.auc_ci_low)
    assert clustered.synthetic_sets == 12 and clustered.answers == 70


def test_the_call_rate_interval_resamples_sets_whole():
    """Six sets of six synthetic images, each set called real throughout or not at all: the
    rate is 1/2 either way, but only 6 sets, not 36 images, are behind it."""
    answers = simulate_ratings(2, raters=1, n_sets=6, per_set=6)
    synthetic = answers.truth == "synthetic"
    answers.loc[synthetic, "choice"] = np.where(answers.loc[synthetic, "run"].astype(int) % 2 == 0, "real", "synthetic")
    clustered = per_rater(answers, resamples=400).iloc[0]
    independent = per_rater(answers.assign(run=answers["image_id"]), resamples=400).iloc[0]
    assert clustered.synthetic_called_real == 0.5
    width = clustered.synthetic_called_real_set_ci_high - clustered.synthetic_called_real_set_ci_low
    assert width > 1.5 * (independent.synthetic_called_real_set_ci_high - independent.synthetic_called_real_set_ci_low)
    assert width > 1.5 * (clustered.synthetic_called_real_ci_high - clustered.synthetic_called_real_ci_low)  # Wilson


def test_a_known_effect_is_recovered_across_raters():
    answers = simulate_ratings(3, raters=4, effect=1.0)
    rows = per_role(answers).set_index("role")
    row = rows.loc["all"]
    assert row.raters == 4 and row.rating_difference_p < 1e-3 and 0.6 < row.rating_difference < 1.2
    assert row.rating_difference_ci_low < row.rating_difference < row.rating_difference_ci_high
    assert row.called_real_difference_p < 1e-3 and 0.1 < row.called_real_difference < 0.6
    two = per_role(answers[answers.rater.isin(["rater0", "rater1"])]).set_index("role")
    assert "no role-level inference" in two.loc["engineer", "note"] and "rating_difference" not in two


@pytest.mark.slow
def test_rater_level_models_keep_their_error_rate_under_the_null():
    """300 studies with no real/synthetic difference: each model rejects about 5 % at 0.05
    (Monte-Carlo SE 1.3 %)."""
    p = np.array(
        [
            [
                mixed_effect(simulate_ratings(1000 + s, raters=3, effect=0.0), outcome)["p"]
                for outcome in ("rating", "called_real")
            ]
            for s in range(300)
        ]
    )
    rates = (p < 0.05).mean(0)
    assert ((0.02 < rates) & (rates < 0.09)).all(), rates


@pytest.mark.parametrize("dropped", [None, 5])  # equal runs (one matrix), and one run a set short (a loop)
def test_correlation_cis_resample_runs(dropped):
    rng = np.random.default_rng(2)
    runs = np.repeat(np.arange(6), 4)
    x = rng.normal(size=24) + np.repeat(rng.normal(size=6), 4)
    y = x + rng.normal(size=24)
    if dropped is not None:
        keep = np.arange(24) != dropped
        runs, x, y = runs[keep], x[keep], y[keep]
    found = clustered_ci(x, y, runs, resamples=300, seed=5)
    draws = np.random.default_rng(5).integers(0, 6, (300, 6))
    expected = []
    for row in draws:  # the same resamples, by hand
        index = np.concatenate([np.flatnonzero(runs == r) for r in row])
        expected.append((stats.pearsonr(x[index], y[index]).statistic, stats.spearmanr(x[index], y[index]).statistic))
    expected = np.array(expected)
    assert found["pearson"] == pytest.approx(tuple(np.percentile(expected[:, 0], [2.5, 97.5])))
    assert found["spearman"] == pytest.approx(tuple(np.percentile(expected[:, 1], [2.5, 97.5])))
