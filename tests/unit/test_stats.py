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

from fetal_dcgan.report.margins import ANY_SIZE, Margin
from fetal_dcgan.report.stats import Question, cliffs_delta, cliffs_delta_ci, sweep_statistics

EPOCHS = (300, 500, 800)


def constructed(
    seeds: int, effect: float = 5.0, n_levels=(100, 999), images: int = 40, shared_seeds: bool = False
) -> tuple:
    """A sweep where n=999 truly lowers `fid` (by ``effect`` run-level SDs) and `psnr_mean` is noise;
    with ``shared_seeds`` every level runs the same seeds (a blocked design), else each run its own."""
    rng = np.random.default_rng(1)
    rows, per_image = [], []
    for i, (n, s) in enumerate((n, s) for n in n_levels for s in range(seeds)):
        seed = s if shared_seeds else i
        run_effect = rng.normal()  # each run has its own level: epochs of a run share it
        for epoch in EPOCHS:
            fid = 10 + run_effect - effect * (n == n_levels[-1]) + 0.3 * rng.normal()
            rows.append(
                {"run": str(i), "epoch": epoch, "n": n, "seed": seed, "fid": fid, "psnr_mean": 12 + rng.normal()}
            )
            per_image += [
                {
                    "run": str(i),
                    "epoch": epoch,
                    "n": n,
                    "image": f"{j:04d}.png",
                    "psnr_best": 12 + rng.normal() + 0.5 * (n == n_levels[-1]),
                }
                for j in range(images)
            ]
    return pd.DataFrame(rows), pd.DataFrame(per_image)


def run_stats(results, per_image, factors=("n",)):
    """(stats, pairwise) of the constructed sweep."""
    return sweep_statistics(results, per_image, ["fid", "psnr_mean"], ["psnr_best"], list(factors), resamples=50)[:2]


def explicit(**values: float) -> dict:
    """Margins declared for every image size."""
    return {ANY_SIZE: {key: Margin(value, "explicit") for key, value in values.items()}}


def test_run_level_test_finds_a_true_difference_and_matches_scipy():
    results, per_image = constructed(seeds=3)
    tests, _ = run_stats(results, per_image)
    assert set(tests.columns) >= {
        "metric",
        "factor",
        "epoch",
        "design",
        "unit",
        "test",
        "n_groups",
        "replicates_per_group",
        "statistic",
        "p_value",
        "p_adjusted",
        "effect_size",
        "effect_size_name",
        "note",
    }
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
    assert null.p_adjusted > 0.05 and null.verdict == "undetermined"  # no margin measured: never "no difference"
    assert "baselines --margins" in null.margin_about and null.margin_source == ""


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
    assert row.effect_size == pytest.approx(
        table.sum_sq["C(n)"] / (table.sum_sq["C(n)"] + table.sum_sq["C(n):C(subject)"])
    )


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
    assert "two-stage" in delta.note


def test_two_stage_bootstrap_resamples_runs_then_images():
    """Runs that disagree widen the interval: images of one run are not independent replicates."""
    rng = np.random.default_rng(0)
    a = {str(r): rng.normal(level, 0.1, 200) for r, level in enumerate((0.0, 1.0, 2.0))}
    b = {str(r): rng.normal(level, 0.1, 200) for r, level in enumerate((0.2, 1.2, 2.2))}
    low, high = cliffs_delta_ci(a, b, 300, seed=1)
    pooled_low, pooled_high = cliffs_delta_ci(
        {"": np.concatenate(list(a.values()))}, {"": np.concatenate(list(b.values()))}, 300, seed=1
    )
    assert high - low > 3 * (pooled_high - pooled_low)
    assert low < 0 < high  # three runs a level cannot tell a 0.2 shift beside a spread of 1 between runs


def test_primary_family_is_the_declared_question_and_each_factor_has_its_own():
    results, per_image = constructed(seeds=3, n_levels=(100, 300, 999))
    question = Question("n", ("fid", "psnr_mean"), 800)
    tests, pairs, sensitivity = sweep_statistics(
        results, per_image, ["fid", "psnr_mean"], ["psnr_best"], ["n", "epoch"], resamples=20, question=question
    )
    primary = tests[tests.family == "primary"]
    assert len(primary) == 2 and set(primary.metric) == {"fid", "psnr_mean"}
    assert (primary.design == "runs").all() and (primary.epoch == 800).all() and (primary.factor == "n").all()
    assert np.allclose(primary.p_adjusted, multipletests(primary.p_value, method="fdr_bh")[1], rtol=1e-12)
    secondary = tests[tests.family == "secondary: n"]
    assert set(secondary.design) == {"runs", "runs-blocked-by-epoch"} and len(secondary) == 2 * 3
    assert np.allclose(secondary.p_adjusted, multipletests(secondary.p_value, method="fdr_bh")[1], rtol=1e-12)
    paper = tests[tests.design == "paper-epochs-as-replicates"]
    assert paper.p_value.notna().all() and paper.p_adjusted.isna().all() and paper.family.str.contains("outside").all()
    friedman = tests[(tests.metric == "fid") & (tests.factor == "epoch") & (tests.unit == "run")].iloc[0]
    assert friedman.family == "secondary: epoch"
    wide = results.pivot(index="run", columns="epoch", values="fid")
    assert friedman.p_value == pytest.approx(stats.friedmanchisquare(*wide.to_numpy().T).pvalue, rel=1e-9)
    ranks = wide.rank(axis=1).to_numpy()
    m, k = ranks.shape
    s = ((ranks.sum(0) - m * (k + 1) / 2) ** 2).sum()
    assert friedman.effect_size == pytest.approx(12 * s / (m**2 * (k**3 - k)))  # Kendall's W
    assert list(sensitivity.metric) == ["fid", "psnr_mean"]


def test_an_endpoint_the_sweep_did_not_score_is_named_in_the_primary_family():
    results, per_image = constructed(seeds=3)
    question = Question("n", ("fid", "kid_mean"), 800)
    tests = sweep_statistics(results, per_image, ["fid", "psnr_mean"], [], ["n"], question=question)[0]
    primary = tests[tests.family == "primary"].set_index("metric")
    assert set(primary.index) == {"fid", "kid_mean"} and "did not score" in primary.loc["kid_mean"].note
    assert primary.loc["kid_mean"].verdict == "undetermined"


def test_post_hoc_only_after_a_significant_omnibus_holm_within_it():
    results, per_image = constructed(seeds=3, n_levels=(100, 300, 999))
    tests, pairs = run_stats(results, per_image)
    run_pairs = pairs[pairs.unit == "run"]
    assert set(run_pairs.metric) == {"fid"}  # psnr_mean is noise: its omnibus is not significant, so no pairs
    differs = tests[(tests.metric == "fid") & (tests.family == "primary")]
    assert (differs.verdict == "differs").all()
    welch = run_pairs[(run_pairs.design == "runs") & (run_pairs.epoch == 300)]
    at = results[results.epoch == 300]
    raw = []
    for row in welch.itertuples():
        x, y = (at[at.n == level]["fid"].to_numpy() for level in (row.a, row.b))
        assert row.p_value == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-9)
        pooled = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2))
        hedges = (x.mean() - y.mean()) / pooled * (1 - 3 / (4 * (len(x) + len(y)) - 9))
        assert row.effect_size == pytest.approx(hedges, rel=1e-9) and row.effect_size_name == "hedges_g"
        raw.append(row.p_value)
    assert np.allclose(welch.p_adjusted, multipletests(raw, method="holm")[1]) and welch.family.nunique() == 1
    assert not run_stats(*constructed(seeds=3))[1].unit.eq("run").any()  # 2 levels: the omnibus is the pair


def test_verdicts_differs_equivalent_undetermined():
    margins = explicit(fid=2.0, psnr_mean=10.0)
    results, per_image = constructed(seeds=3)
    tests = sweep_statistics(results, per_image, ["fid", "psnr_mean"], [], ["n"], margins=margins)[0]
    rows = tests[tests.unit == "run"].set_index(["metric", "epoch"])
    assert (rows.loc["fid"].verdict == "differs").all()  # a shift of 5 run SDs, 3 runs a level
    assert (rows.loc["psnr_mean"].verdict == "equivalent").all()  # noise SD 1 against a margin of 10
    for seeds in (1, 2):  # no true effect, margins about the SD: too few runs to settle either way
        few = sweep_statistics(
            *constructed(seeds=seeds, effect=0.0),
            ["fid", "psnr_mean"],
            [],
            ["n"],
            margins=explicit(fid=1.0, psnr_mean=0.5),
        )[0]
        assert (few[few.unit == "run"].verdict == "undetermined").all()


def test_power_equals_statsmodels_and_equivalence_the_pooled_model_written_out():
    from statsmodels.stats.power import FTestAnovaPower

    results, per_image = constructed(seeds=3, n_levels=(100, 300, 999))
    tests = sweep_statistics(results, per_image, ["psnr_mean"], [], ["n"], margins=explicit(psnr_mean=1.5))[0]
    row = tests[(tests.design == "runs") & (tests.epoch == 300)].iloc[0]
    at = results[results.epoch == 300]
    groups = [g["psnr_mean"].to_numpy() for _, g in at.groupby("n")]
    power = FTestAnovaPower()
    assert power.power(row.mde, nobs=9, alpha=0.05, k_groups=3) == pytest.approx(0.8, abs=1e-6)
    sigma = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / (9 - 3))
    assert row.mde_units == pytest.approx(row.mde * sigma)
    assert row.power_at_margin == pytest.approx(power.power(1.5 / (sigma * math.sqrt(6)), 9, 0.05, k_groups=3))
    # every pair's TOST on the pooled residual SD and its 6 degrees of freedom; the largest p
    expected = 0.0
    for a, b in ((0, 1), (0, 2), (1, 2)):
        d, se = groups[b].mean() - groups[a].mean(), sigma * math.sqrt(2 / 3)
        expected = max(expected, stats.t.sf((d + 1.5) / se, 6), stats.t.cdf((d - 1.5) / se, 6))
    assert row.equivalence_p == pytest.approx(expected, rel=1e-9) and row.margin_source == "explicit"
    assert power.power(0.4, 15, 0.05, k_groups=5) == pytest.approx(0.142, abs=1e-3)  # the 5 x 3 design's power


def test_a_second_factor_is_adjusted_for_and_its_interaction_tested():
    results, per_image = constructed(seeds=2)
    results = pd.concat([results, results.assign(run=results.run + "b", lr=5e-4, fid=results.fid + 1)])
    results["lr"] = results["lr"].fillna(2e-4)
    tests = sweep_statistics(results, per_image, ["fid"], [], ["n", "lr"])[0]
    at = results[results.epoch == 300].assign(n=lambda f: f.n.astype(str), lr=lambda f: f.lr.astype(str))
    table = anova_lm(smf.ols("fid ~ C(n) * C(lr)", at).fit(), typ=2)
    rows = tests[(tests.design == "runs") & (tests.epoch == 300)].set_index("factor")
    assert rows.loc["n"].statistic == pytest.approx(table.loc["C(n)"].F)
    assert rows.loc["n"].effect_size_name == "partial_eta_squared"
    assert rows.loc["n x lr"].p_value == pytest.approx(table.loc["C(n):C(lr)", "PR(>F)"])
    assert rows.loc["n x lr"].family == "secondary: n x lr" and (tests.factor == "n x lr").sum() == len(EPOCHS) + 1


def test_a_factor_confounded_with_the_reference_overlap_says_so():
    results, per_image = constructed(seeds=2)
    results["reference_in_training"] = results["n"].map({100: 89, 999: 800})
    tests, _ = run_stats(results, per_image)
    n_rows = tests[(tests.factor == "n") & (tests.unit != "image")]
    assert n_rows.note.str.contains("confounded").all() and "100: 89" in n_rows.note.iloc[0]
    results["reference_in_training"] = 0
    assert not run_stats(results, per_image)[0].note.str.contains("confounded|overlaps").any()
    results["reference_in_training"] = 300  # the same overlap at every level: not confounded, still biased
    notes = run_stats(results, per_image)[0].query("factor == 'n' and unit != 'image'").note
    assert notes.str.contains("reference overlaps training").all() and not notes.str.contains("confounded").any()


def test_equal_epochs_confound_n_with_steps_and_equal_kimg_does_not():
    results, per_image = constructed(seeds=2)
    equal_epochs = results.assign(step=results["epoch"] * np.ceil(results["n"] / 16))  # batches of 16
    notes = run_stats(equal_epochs, per_image)[0].query("factor == 'n' and unit != 'image'").note
    assert notes.str.contains(r"at epoch 800 the levels of n had 5600-50400 optimizer steps \(9.0x\)").all()
    equal_kimg = results.assign(step=results["epoch"] * 4)
    assert not run_stats(equal_kimg, per_image)[0].note.str.contains("confounded").any()


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


def test_rating_p_values_permute_whole_runs():
    """Exact where the runs' permutations are few: every way of giving each run another run's
    ratings, written out here; with one set a run it is the ordinary permutation test, which
    agrees with scipy's t-based p for a clear relation."""
    import itertools

    from fetal_dcgan.report.ratings import correlate

    rng = np.random.default_rng(4)
    runs = np.repeat(np.arange(5), 3)  # 5 runs of 3 sets: 120 permutations of runs
    run_level = rng.normal(0, 1, 5)[runs]
    rating = 3 + run_level + 0.3 * rng.normal(size=15)
    metric = run_level + 0.3 * rng.normal(size=15)
    out = correlate(metric, rating, log_fit=True, runs=runs.astype(str))
    observed = abs(stats.pearsonr(rating, metric).statistic)
    blocks = rating.reshape(5, 3)
    count = sum(
        abs(stats.pearsonr(blocks[list(order)].ravel(), metric).statistic) >= observed - 1e-12
        for order in itertools.permutations(range(5))
    )
    assert out["pearson_p"] == pytest.approx(count / 120) and "all 120 permutations" in out["note"]
    assert out["pearson_p"] > stats.pearsonr(rating, metric).pvalue  # sets of a run are not independent
    log = [
        abs(stats.pearsonr(np.log(blocks[list(o)].ravel()), metric).statistic) for o in itertools.permutations(range(5))
    ]
    assert out["log_p"] == pytest.approx(
        np.mean(np.array(log) >= abs(stats.pearsonr(np.log(rating), metric).statistic) - 1e-12)
    )
    x, noise = rng.normal(size=40), rng.normal(size=40)
    single = correlate(0.35 * x + noise, 3 + x, runs=np.arange(40).astype(str))
    expected = stats.pearsonr(3 + x, 0.35 * x + noise).pvalue
    assert "2000 random permutations" in single["note"] and 0.01 < expected < 0.2
    assert single["pearson_p"] == pytest.approx(expected, abs=0.015)  # Monte-Carlo SE about 0.005


def test_the_vectorised_two_stage_bootstrap_is_the_draws_it_makes():
    """Runs of one size: each resample's delta from ranks equals cliffs_delta of the same draw;
    runs of different sizes take the loop, which agrees in distribution."""
    from fetal_dcgan.report.stats import _two_stage_draws

    rng = np.random.default_rng(3)
    a = {str(r): rng.integers(0, 6, 20).astype(float) for r in range(3)}
    b = {str(r): rng.integers(1, 7, 20).astype(float) for r in range(2)}
    draws = np.random.default_rng(9)
    x, y = _two_stage_draws(a, 30, draws), _two_stage_draws(b, 30, draws)
    assert x.shape == (30, 60) and y.shape == (30, 40)
    ranks = stats.rankdata(np.concatenate([x, y], axis=1), axis=1)
    u = ranks[:, :60].sum(1) - 60 * 61 / 2
    assert np.allclose(2 * u / 2400 - 1, [cliffs_delta(p, q) for p, q in zip(x, y)])
    low, high = cliffs_delta_ci(a, b, 400, seed=1)
    uneven = {**b, "2": b["1"][:15]}
    low_u, high_u = cliffs_delta_ci(a, uneven, 400, seed=1)
    assert low < cliffs_delta(np.concatenate(list(a.values())), np.concatenate(list(b.values()))) < high
    assert abs(low - low_u) < 0.15 and abs(high - high_u) < 0.15
