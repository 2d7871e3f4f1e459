"""Does a metric differ across training-set size, learning rate or resolution?

A set-level metric (FID, mean PSNR, LBP distance, ...) is one number per run and snapshot.
Its unit of replication is the training run (a seed; ``data.seed`` is a second replicate
axis): the epochs of one run are repeated measures of the same run, and the images of one
set are not replicates of anything at the set level. Every row of ``stats.csv`` names its
``design`` and ``unit``:

- ``runs`` (unit: run): at each snapshot epoch, one value per run; type-II ANOVA F of the
  factor in an OLS model with every varied factor (statsmodels), (partial) eta squared.
  For ``factor=epoch``: Friedman's test with runs as blocks, Kendall's W.
- ``runs-blocked-by-epoch`` (unit: run): every epoch at once. Each run's values are
  averaged over the epochs all runs share; the ANOVA of those run means is the between-run
  F test of the repeated-measures (split-plot) ANOVA with epoch as the within-run factor.
- ``paper-epochs-as-replicates`` (unit: snapshot): the paper's analysis, kept for
  comparison and labelled: every snapshot is a replicate although the epochs of one run are
  not independent, so its p-values are too small.
- ``descriptive-images`` (unit: image): per-image values describe a set: medians, IQRs,
  epsilon squared and pairwise Cliff's delta with bootstrap CIs over images; no p-value.

A design without two runs in every cell gives no run-level p-value and says so in
``note``. ``p_adjusted`` is Benjamini-Hochberg over the whole family of p-values of one
report: every metric, factor, epoch and design, omnibus and pairwise tests together.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

STATS_COLUMNS = ("metric", "factor", "epoch", "design", "unit", "test", "n_groups", "replicates_per_group",
                 "statistic", "p_value", "p_adjusted", "effect_size", "effect_size_name", "note")
PAIRWISE_COLUMNS = ("metric", "factor", "epoch", "design", "unit", "a", "b", "n_a", "n_b", "test", "statistic",
                    "p_value", "p_adjusted", "effect_size", "effect_size_name", "ci_low", "ci_high", "note")
#: What each design's replicate is, one sentence each (stats.md and report.html say it above each table).
DESIGNS = {
    "runs": "one value per training run (seed) at one snapshot epoch; runs are the replicates",
    "runs-blocked-by-epoch": "each run's mean over the snapshot epochs all runs share; runs are the replicates "
                             "and epochs are repeated measures within a run",
    "paper-epochs-as-replicates": "every snapshot (run x epoch) counted as a replicate, as the paper did; epochs "
                                  "of one run are not independent, so these p-values are too small and are shown "
                                  "for comparison only",
    "descriptive-images": "the images of the sets describe each group; they are not replicates of a set-level "
                          "result, so no p-value is given",
}
MIN_REPLICATES = 2
NO_REPLICATES = ("one run per cell{where}: no run-level p-value (a sweep needs 2+ runs per cell, e.g. "
                 "seed=0,1,2, for the run to be the replicate)")


def _row(**values) -> dict:
    return {column: values.get(column, np.nan if column in ("statistic", "p_value", "p_adjusted", "effect_size",
                                                             "ci_low", "ci_high") else "") for column in
            (*STATS_COLUMNS, *PAIRWISE_COLUMNS)}


def _counts(groups: dict) -> str:
    sizes = {level: len(values) for level, values in groups.items()}
    if len(set(sizes.values())) == 1:
        return str(next(iter(sizes.values())))
    return "; ".join(f"{level}: {size}" for level, size in sizes.items())


def _finite(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    values = pd.to_numeric(frame[column], errors="coerce")
    return frame.assign(**{column: values})[np.isfinite(values)]


def _groups(frame: pd.DataFrame, metric: str, factor: str) -> dict:
    return {level: group[metric].to_numpy(float) for level, group in frame.groupby(factor, sort=True)}


# -- effect sizes and tests -----------------------------------------------------------------
def eta_squared(groups: list[np.ndarray]) -> float:
    """Between-group share of the total sum of squares (one-way)."""
    values = np.concatenate(groups)
    total = ((values - values.mean()) ** 2).sum()
    between = sum(len(g) * (g.mean() - values.mean()) ** 2 for g in groups)
    return float(between / total) if total > 0 else math.nan


def epsilon_squared(h: float, n: int) -> float:
    """Kruskal-Wallis effect size H / (n - 1) (Tomczak & Tomczak 2014)."""
    return float(h / (n - 1)) if n > 1 else math.nan


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """P(a > b) - P(a < b) over all pairs, from one sort of ``b`` (O(n log n))."""
    b = np.sort(np.asarray(b, float))
    a = np.asarray(a, float)
    less = np.searchsorted(b, a, side="left")           # b values below each a
    greater = len(b) - np.searchsorted(b, a, side="right")
    return float((less.sum() - greater.sum()) / (len(a) * len(b)))


def cliffs_delta_ci(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap CI (95 %) of Cliff's delta, both groups resampled independently."""
    if resamples < 1 or min(len(a), len(b)) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = [cliffs_delta(rng.choice(a, len(a)), rng.choice(b, len(b))) for _ in range(resamples)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def ols_anova(frame: pd.DataFrame, metric: str, factor: str, others: list[str]) -> dict:
    """Type-II ANOVA F test of ``factor`` in ``metric ~ C(factor) + C(other) ...`` (statsmodels),
    with eta squared (one factor) or partial eta squared (several)."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    names = {column: f"f{i}" for i, column in enumerate([factor, *others])}
    data = frame[[metric, *names]].rename(columns={metric: "y", **names})
    for name in names.values():
        data[name] = data[name].astype(str)
    formula = "y ~ " + " + ".join(f"C({name})" for name in names.values())
    table = anova_lm(smf.ols(formula, data).fit(), typ=2)
    effect, residual = table.loc[f"C({names[factor]})"], table.loc["Residual"]
    return {"statistic": float(effect.F), "p_value": float(effect["PR(>F)"]),
            "effect_size": float(effect.sum_sq / (effect.sum_sq + residual.sum_sq)),
            "effect_size_name": "partial_eta_squared" if others else "eta_squared",
            "test": f"ANOVA F (OLS, type II{', adjusted for ' + ', '.join(others) if others else ''})"}


# -- designs ----------------------------------------------------------------------------------
def _run_level(frame: pd.DataFrame, metric: str, factor: str, others: list[str], base: dict) -> dict:
    """One row of a run-level design: the ANOVA when every cell has 2+ runs, else a note."""
    frame = _finite(frame, metric)
    groups = _groups(frame, metric, factor)
    row = _row(**base, n_groups=len(groups), replicates_per_group=_counts(groups))
    cells = frame.groupby([factor, *others]).size()
    if len(groups) < 2:
        return {**row, "note": "fewer than 2 levels with a finite value"}
    if cells.min() < MIN_REPLICATES:
        where = f" of {', '.join([factor, *others])}" if others else ""
        return {**row, "note": NO_REPLICATES.format(where=where)}
    if np.ptp(frame[metric].to_numpy(float)) == 0:
        return {**row, "note": "every value is identical"}
    return {**row, **ols_anova(frame, metric, factor, others)}


def _epoch_friedman(frame: pd.DataFrame, metric: str, base: dict) -> dict:
    """Does the metric change with epochs? Friedman's test with each run a block."""
    wide = frame.pivot_table(index="run", columns="epoch", values=metric, aggfunc="first").dropna()
    row = _row(**base, n_groups=wide.shape[1], replicates_per_group=str(len(wide)),
               test="Friedman chi-square (runs as blocks)")
    if wide.shape[1] < 3 or len(wide) < MIN_REPLICATES:
        return {**row, "note": "needs 3+ snapshot epochs shared by 2+ runs"}
    if np.ptp(wide.to_numpy()) == 0:
        return {**row, "note": "every value is identical"}
    result = stats.friedmanchisquare(*wide.to_numpy().T)
    w = result.statistic / (len(wide) * (wide.shape[1] - 1))  # Kendall's W
    return {**row, "statistic": float(result.statistic), "p_value": float(result.pvalue), "effect_size": float(w),
            "effect_size_name": "kendalls_w"}


def _shared_epoch_means(results: pd.DataFrame, metric: str, factors: list[str]) -> tuple[pd.DataFrame, str]:
    """Each run's mean of ``metric`` over the epochs at which every run has a finite value."""
    data = _finite(results[["run", "epoch", metric, *factors]], metric)
    per_run = data.groupby("run")["epoch"].apply(set)
    shared = sorted(set.intersection(*per_run)) if len(per_run) else []
    data = data[data["epoch"].isin(shared)]
    means = data.groupby("run", as_index=False).agg({metric: "mean", **{f: "first" for f in factors}})
    return means, ", ".join(map(str, shared))


def _pairwise_runs(frame: pd.DataFrame, metric: str, factor: str, base: dict, note: str) -> list[dict]:
    """Welch's t test and Hedges' g (statsmodels) for every pair of levels with 2+ runs each."""
    from statsmodels.stats.meta_analysis import effectsize_smd

    groups = {k: v for k, v in _groups(_finite(frame, metric), metric, factor).items() if len(v) >= MIN_REPLICATES}
    rows = []
    for a, b in combinations(groups, 2):
        x, y = groups[a], groups[b]
        if np.ptp(np.r_[x, y]) == 0:
            continue
        test = stats.ttest_ind(x, y, equal_var=False)
        g, variance = effectsize_smd(x.mean(), x.std(ddof=1), len(x), y.mean(), y.std(ddof=1), len(y))
        rows.append(_row(**base, a=a, b=b, n_a=len(x), n_b=len(y), test="Welch t", statistic=float(test.statistic),
                         p_value=float(test.pvalue), effect_size=float(g), effect_size_name="hedges_g",
                         ci_low=float(g - 1.96 * math.sqrt(variance)), ci_high=float(g + 1.96 * math.sqrt(variance)),
                         note=note))
    return rows


def _describe_images(frame: pd.DataFrame, metric: str, factor: str, base: dict, resamples: int,
                     seed: int) -> tuple[dict, list[dict]]:
    groups = _groups(_finite(frame, metric), metric, factor)
    summary = "; ".join(f"{level}: median {np.median(v):.4g}, IQR {np.percentile(v, 25):.4g}-"
                        f"{np.percentile(v, 75):.4g}" for level, v in groups.items())
    row = _row(**base, test="descriptive (median, IQR, epsilon squared)", n_groups=len(groups),
               replicates_per_group=_counts(groups), note=summary)
    if len(groups) < 2 or np.ptp(np.concatenate(list(groups.values()))) == 0:
        return row, []
    h = stats.kruskal(*groups.values()).statistic  # only for epsilon squared: images are not replicates
    row.update(effect_size=epsilon_squared(h, sum(map(len, groups.values()))), effect_size_name="epsilon_squared")
    pairs = []
    for a, b in combinations(groups, 2):
        low, high = cliffs_delta_ci(groups[a], groups[b], resamples, seed)
        pairs.append(_row(**base, a=a, b=b, n_a=len(groups[a]), n_b=len(groups[b]), test="Cliff's delta",
                          effect_size=cliffs_delta(groups[a], groups[b]), effect_size_name="cliffs_delta",
                          ci_low=low, ci_high=high, note="bootstrap CI over images"))
    return row, pairs


def sweep_statistics(results: pd.DataFrame, per_image: pd.DataFrame, metrics: list[str], image_metrics: list[str],
                     factors: list[str], resamples: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every design for every metric and factor; returns (stats, pairwise), BH-adjusted together.

    ``results``: one row per run and snapshot with ``run``, ``epoch``, the factors and the
    metrics; ``per_image``: one row per synthetic image with ``run``, ``epoch``, the factors.
    """
    tests, pairs = [], []
    epochs = sorted(results["epoch"].dropna().unique())
    between = [f for f in factors if f != "epoch"]  # epochs are within-run, never between runs
    for metric in metrics:
        if metric not in results:
            continue
        if not np.isfinite(pd.to_numeric(results[metric], errors="coerce")).any():
            tests += [_row(metric=metric, factor=f, design="runs", unit="run", n_groups=0,
                           note="no finite value in any run: see its status_ column in results.csv") for f in factors]
            continue
        for factor in factors:
            others = [f for f in between if f != factor]
            base = {"metric": metric, "factor": factor}
            if factor == "epoch":
                tests.append(_epoch_friedman(_finite(results, metric), metric,
                                             {**base, "design": "runs", "unit": "run"}))
            else:
                for epoch in epochs:
                    at = results[results["epoch"] == epoch]
                    cell = {**base, "epoch": int(epoch), "design": "runs", "unit": "run"}
                    tests.append(_run_level(at, metric, factor, others, cell))
                    if not others and not np.isnan(tests[-1]["p_value"]):
                        pairs += _pairwise_runs(at, metric, factor, cell, "")
                if len(epochs) > 1:
                    means, shared = _shared_epoch_means(results, metric, between)
                    cell = {**base, "design": "runs-blocked-by-epoch", "unit": "run"}
                    row = _run_level(means, metric, factor, others, cell)
                    row["note"] = "; ".join(filter(None, [f"mean over epochs {shared}", row["note"]]))
                    tests.append(row)
                    if not others and not np.isnan(row["p_value"]):
                        pairs += _pairwise_runs(means, metric, factor, cell, f"mean over epochs {shared}")
            tests.append(_paper_design(results, metric, factor, base))
    for metric in image_metrics:
        if metric not in per_image:
            continue
        for factor in (f for f in between if f in per_image):
            for epoch in sorted(per_image["epoch"].dropna().unique()):
                base = {"metric": metric, "factor": factor, "epoch": int(epoch), "design": "descriptive-images",
                        "unit": "image"}
                row, found = _describe_images(per_image[per_image["epoch"] == epoch], metric, factor, base,
                                              resamples, seed)
                tests.append(row)
                pairs += found
    tests = pd.DataFrame(tests, columns=list(STATS_COLUMNS))
    pairs = pd.DataFrame(pairs, columns=list(PAIRWISE_COLUMNS))
    adjust_family(tests, pairs)
    return tests, pairs


def _paper_design(results: pd.DataFrame, metric: str, factor: str, base: dict) -> dict:
    data = _finite(results, metric)
    groups = _groups(data, metric, factor)
    row = _row(**base, design="paper-epochs-as-replicates", unit="snapshot", test="one-way ANOVA F",
               n_groups=len(groups), replicates_per_group=_counts(groups),
               note="snapshots (epochs of the same runs) as replicates, as in the paper: not independent")
    if len(groups) < 2 or min(map(len, groups.values())) < MIN_REPLICATES:
        return {**row, "note": "fewer than 2 levels with 2+ snapshots"}
    if np.ptp(data[metric].to_numpy(float)) == 0:
        return {**row, "note": "every value is identical"}
    result = stats.f_oneway(*groups.values())
    return {**row, "statistic": float(result.statistic), "p_value": float(result.pvalue),
            "effect_size": eta_squared(list(groups.values())), "effect_size_name": "eta_squared"}


def adjust_family(*tables: pd.DataFrame) -> None:
    """Benjamini-Hochberg over every finite ``p_value`` of the tables, written to ``p_adjusted``."""
    found = [(table, index) for table in tables for index in table.index if np.isfinite(table.at[index, "p_value"])]
    if not found:
        return
    adjusted = np.atleast_1d(stats.false_discovery_control([t.at[i, "p_value"] for t, i in found], method="bh"))
    for (table, index), value in zip(found, adjusted):
        table.at[index, "p_adjusted"] = float(value)


def significant(tests: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Run-level rows whose adjusted p is below ``alpha``, strongest effect first."""
    run_level = tests[tests["unit"] == "run"]
    return run_level[run_level["p_adjusted"] < alpha].sort_values("effect_size", ascending=False)



def cell_summary(results: pd.DataFrame, factors: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and standard deviation over runs (the replicates) of each metric, one row per
    cell of the varied factors at each scored epoch; ``runs`` says how many there were."""
    cells = [f for f in factors if f != "epoch" and f in results] + ["epoch"]
    grouped = results.groupby(cells, sort=True)
    out = grouped["run"].nunique().rename("runs").to_frame()
    for metric in metrics:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_sd"] = grouped[metric].std(ddof=1)
    return out.reset_index()
