"""Run-level statistics of a constructed sweep, every number against scipy/statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from fetal_dcgan.report.stats import cliffs_delta, sweep_statistics

EPOCHS = (300, 500, 800)


def constructed(seeds: int, effect: float = 5.0, n_levels=(100, 999), images: int = 40) -> tuple:
    """A sweep where n=999 truly lowers `fid` (by ``effect`` run-level SDs) and `psnr_mean` is noise."""
    rng = np.random.default_rng(1)
    rows, per_image = [], []
    for i, (n, seed) in enumerate((n, s) for n in n_levels for s in range(seeds)):
        run_effect = rng.normal()  # each run has its own level: epochs of a run share it
        for epoch in EPOCHS:
            fid = 10 + run_effect - effect * (n == n_levels[-1]) + 0.3 * rng.normal()
            rows.append({"run": str(i), "epoch": epoch, "n": n, "seed": seed, "fid": fid,
                         "psnr_mean": 12 + rng.normal()})
            per_image += [{"run": str(i), "epoch": epoch, "n": n, "image": f"{j:04d}.png",
                           "psnr_best": 12 + rng.normal() + 0.5 * (n == n_levels[-1])} for j in range(images)]
    return pd.DataFrame(rows), pd.DataFrame(per_image)


def run_stats(results, per_image, factors=("n",)):
    return sweep_statistics(results, per_image, ["fid", "psnr_mean"], ["psnr_best"], list(factors), resamples=50)


def test_run_level_test_finds_a_true_difference_and_matches_scipy():
    results, per_image = constructed(seeds=3)
    tests, _ = run_stats(results, per_image)
    assert set(tests.columns) >= {"metric", "factor", "epoch", "design", "unit", "test", "n_groups",
                                  "replicates_per_group", "statistic", "p_value", "p_adjusted", "effect_size",
                                  "effect_size_name", "note"}
    for epoch in EPOCHS:
        row = tests[(tests.metric == "fid") & (tests.design == "runs") & (tests.epoch == epoch)].iloc[0]
        groups = [g["fid"].to_numpy() for _, g in results[results.epoch == epoch].groupby("n")]
        expected = stats.f_oneway(*groups)
        assert row.unit == "run" and row.replicates_per_group == "3" and row.n_groups == 2
        assert row.statistic == pytest.approx(expected.statistic, rel=1e-9)
        assert row.p_value == pytest.approx(expected.pvalue, rel=1e-9)
        grand = np.concatenate(groups)
        eta = sum(len(g) * (g.mean() - grand.mean()) ** 2 for g in groups) / ((grand - grand.mean()) ** 2).sum()
        assert row.effect_size == pytest.approx(eta) and row.effect_size_name == "eta_squared"
    blocked = tests[(tests.metric == "fid") & (tests.design == "runs-blocked-by-epoch")].iloc[0]
    assert blocked.p_adjusted < 0.05 and blocked.unit == "run"
    null = tests[(tests.metric == "psnr_mean") & (tests.design == "runs-blocked-by-epoch")].iloc[0]
    assert null.p_adjusted > 0.05


def test_blocked_design_is_the_split_plot_between_run_test():
    """F of run means = MS(n) / MS(run within n) of the repeated-measures ANOVA (statsmodels)."""
    results, per_image = constructed(seeds=3, effect=1.0)
    tests, _ = run_stats(results, per_image)
    row = tests[(tests.metric == "fid") & (tests.design == "runs-blocked-by-epoch")].iloc[0]
    results["subject"] = results.groupby("n")["run"].transform(lambda r: pd.factorize(r)[0])  # run within n
    table = anova_lm(smf.ols("fid ~ C(n) + C(epoch) + C(n):C(subject)", results).fit(), typ=1)
    ms = table.sum_sq / table.df
    f = ms["C(n)"] / ms["C(n):C(subject)"]
    assert row.statistic == pytest.approx(f, rel=1e-9)
    assert row.p_value == pytest.approx(stats.f.sf(f, table.df["C(n)"], table.df["C(n):C(subject)"]), rel=1e-9)
    assert row.effect_size == pytest.approx(table.sum_sq["C(n)"] / (table.sum_sq["C(n)"] + table.sum_sq["C(n):C(subject)"]))


def test_one_run_per_cell_gives_no_run_level_p_value_but_the_labelled_paper_analysis():
    results, per_image = constructed(seeds=1)
    tests, pairs = run_stats(results, per_image)
    run_level = tests[tests.unit == "run"]
    assert len(run_level) and run_level.p_value.isna().all()
    assert run_level.note.str.contains("one run per cell").all()
    paper = tests[(tests.metric == "fid") & (tests.design == "paper-epochs-as-replicates")].iloc[0]
    assert paper.unit == "snapshot" and "not independent" in paper.note
    expected = stats.f_oneway(*[g["fid"].to_numpy() for _, g in results.groupby("n")])
    assert paper.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert not (pairs.unit == "run").any()


def test_per_image_values_are_descriptive_only():
    results, per_image = constructed(seeds=2)
    tests, pairs = run_stats(results, per_image)
    images = tests[tests.design == "descriptive-images"]
    assert len(images) == len(EPOCHS) and images.p_value.isna().all() and (images.unit == "image").all()
    at = per_image[per_image.epoch == EPOCHS[0]]
    groups = [g["psnr_best"].to_numpy() for _, g in at.groupby("n")]
    h = stats.kruskal(*groups).statistic
    row = images[images.epoch == EPOCHS[0]].iloc[0]
    assert row.effect_size == pytest.approx(h / (len(at) - 1)) and row.effect_size_name == "epsilon_squared"
    assert "median" in row.note and "IQR" in row.note
    delta = pairs[(pairs.design == "descriptive-images") & (pairs.epoch == EPOCHS[0])].iloc[0]
    a, b = groups
    assert delta.effect_size == pytest.approx(np.sign(a[:, None] - b[None, :]).mean())
    assert np.isnan(delta.p_value) and delta.ci_low <= delta.effect_size <= delta.ci_high


def test_p_adjusted_is_benjamini_hochberg_over_the_whole_family():
    results, per_image = constructed(seeds=3, n_levels=(100, 300, 999))
    tests, pairs = run_stats(results, per_image, factors=("n", "epoch"))
    p = np.r_[tests.p_value.dropna(), pairs.p_value.dropna()]
    adjusted = np.r_[tests.p_adjusted.dropna(), pairs.p_adjusted.dropna()]
    assert len(p) > 10 and np.allclose(adjusted, multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    assert tests.p_adjusted.isna().equals(tests.p_value.isna())
    welch = pairs[(pairs.metric == "fid") & (pairs.design == "runs") & (pairs.epoch == 300)].iloc[0]
    at = results[results.epoch == 300]
    x, y = (at[at.n == level]["fid"].to_numpy() for level in (welch.a, welch.b))
    assert welch.p_value == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-9)
    pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
    hedges = (x.mean() - y.mean()) / pooled * (1 - 3 / (4 * (len(x) + len(y)) - 9))
    assert welch.effect_size == pytest.approx(hedges, rel=1e-9) and welch.effect_size_name == "hedges_g"
    friedman = tests[(tests.metric == "fid") & (tests.factor == "epoch")].iloc[0]
    wide = results.pivot(index="run", columns="epoch", values="fid")
    assert friedman.p_value == pytest.approx(stats.friedmanchisquare(*wide.to_numpy().T).pvalue, rel=1e-9)
    ranks = wide.rank(axis=1).to_numpy()
    m, k = ranks.shape
    s = ((ranks.sum(0) - m * (k + 1) / 2) ** 2).sum()
    assert friedman.effect_size == pytest.approx(12 * s / (m ** 2 * (k ** 3 - k)))  # Kendall's W


def test_a_second_factor_is_adjusted_for_not_pooled():
    results, per_image = constructed(seeds=2)
    results = pd.concat([results, results.assign(run=results.run + "b", lr=5e-4, fid=results.fid + 1)])
    results["lr"] = results["lr"].fillna(2e-4)
    tests, _ = sweep_statistics(results, per_image, ["fid"], [], ["n", "lr"])
    row = tests[(tests.factor == "n") & (tests.design == "runs") & (tests.epoch == 300)].iloc[0]
    at = results[results.epoch == 300].assign(n=lambda f: f.n.astype(str), lr=lambda f: f.lr.astype(str))
    expected = anova_lm(smf.ols("fid ~ C(n) + C(lr)", at).fit(), typ=2).loc["C(n)"]
    assert row.statistic == pytest.approx(expected.F) and row.effect_size_name == "partial_eta_squared"


def test_cliffs_delta_with_ties_matches_mann_whitney():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 57).astype(float), rng.integers(1, 6, 43).astype(float)
    u = stats.mannwhitneyu(a, b).statistic
    assert cliffs_delta(a, b) == pytest.approx(2 * u / (len(a) * len(b)) - 1)


def test_spearman_bootstrap_rows_are_scipy_spearman():
    from fetal_dcgan.report.ratings import spearman_ci

    rng = np.random.default_rng(3)
    x, y = rng.random(12), rng.random(12)
    index = np.random.default_rng(7).integers(0, 12, (400, 12))
    expected = [stats.spearmanr(x[i], y[i]).statistic for i in index]
    low, high = spearman_ci(x, y, 400, seed=7)
    assert (low, high) == pytest.approx(tuple(np.nanpercentile(expected, [2.5, 97.5])))
