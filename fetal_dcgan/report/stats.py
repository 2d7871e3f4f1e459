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
``note``. Where every seed appears at every level (seeds shared across levels share
initial weights, latents and the nested prefix of their subsets), the seed is a block: an
additive term of the model, so the test compares levels within seeds. Families
(``family``): the study's declared question (``study.*``: its factor, endpoints and
snapshot) is the one ``primary`` family, Benjamini-Hochberg (``p_adjusted``) over exactly
those rows; every other run-level row is secondary, adjusted within its factor's own
family (``secondary: <factor>``). The paper's design is reported beside, outside every
family (no ``p_adjusted``). Pairwise post-hoc tests run only after a row that differs, for
a factor with 3+ levels, Holm-adjusted within that test. Each run-level row carries its
design's power, an equivalence test from the fitted model and a ``verdict``
(``report.verdicts``); ``sensitivity`` gives each primary endpoint's verdict at half and
twice its margin. A factor whose levels differ in how many reference images are training
images (``reference_in_training``) is labelled confounded in ``note``; any overlap at all
is noted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from fetal_dcgan.metrics import registry
from fetal_dcgan.report.margins import Margin, Margins, margin_at
from fetal_dcgan.report.verdicts import (
    ALPHA,
    DIFFERS,
    margin_f,
    minimum_detectable_f,
    model_contrasts,
    power_f,
    saturation,
    tost_p,
    verdict,
)

#: What names a row of stats.csv and of pairwise.csv alike.
ROW_KEYS = ("metric", "factor", "epoch", "design", "unit", "family")
STATS_COLUMNS = (
    *ROW_KEYS,
    "test",
    "n_groups",
    "replicates_per_group",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "effect_size_name",
    "mde",
    "mde_units",
    "margin",
    "margin_source",
    "margin_ci_low",
    "margin_ci_high",
    "power_at_margin",
    "equivalence_p",
    "equivalence_p_adjusted",
    "saturation",
    "verdict",
    "margin_about",
    "note",
)
PAIRWISE_COLUMNS = (
    *ROW_KEYS,
    "a",
    "b",
    "n_a",
    "n_b",
    "test",
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "effect_size_name",
    "ci_low",
    "ci_high",
    "note",
)
NUMERIC = (
    "statistic",
    "p_value",
    "p_adjusted",
    "effect_size",
    "ci_low",
    "ci_high",
    "mde",
    "mde_units",
    "margin",
    "margin_ci_low",
    "margin_ci_high",
    "power_at_margin",
    "equivalence_p",
    "equivalence_p_adjusted",
)
PRIMARY = "primary"
SECONDARY = "secondary: {factor}"
#: The margin multiples of the sensitivity table.
SENSITIVITY = (0.5, 1.0, 2.0)
OUTSIDE = "none (the paper's analysis: outside every family)"
DESCRIPTIVE = "none (descriptive)"
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
#: What a replicate of the run-level designs samples.
REPLICATE_SOURCES = (
    "each run draws its own nested training subsets (data.seed follows seed) and its own training "
    "noise, so run-level tests generalise over both; with data.seed pinned, over the noise only"
)
NO_REPLICATES = (
    "one run per cell{where}: no run-level p-value (a sweep needs 2+ runs per cell, e.g. "
    "seed=0,1,2, for the run to be the replicate)"
)


def _row(**values) -> dict:
    return {
        column: values.get(column, np.nan if column in NUMERIC else "")
        for column in dict.fromkeys((*STATS_COLUMNS, *PAIRWISE_COLUMNS))
    }


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


MISSING_MARGIN = (
    "no margin for this metric (python -m fetal_dcgan.baselines --margins SWEEP measures and declares "
    "them; report --margins FILE gives them), so no equivalence test"
)


@dataclass(frozen=True)
class Question:
    """The study's declared primary question, resolved against a sweep's columns."""

    factor: str
    endpoints: tuple[str, ...]
    epoch: int | None  # None: no snapshot (nothing scored)
    alpha: float = ALPHA
    given: tuple[str, ...] = ()  # the parts given for this report instead of declared by the runs

    def is_primary(self, row: dict) -> bool:
        return (
            row["design"] == "runs"
            and row["factor"] == self.factor
            and row["metric"] in self.endpoints
            and row["epoch"] != ""
            and int(row["epoch"]) == self.epoch
        )


def _margin_columns(margin: Margin | None, note: str) -> dict:
    if margin is None:
        return {"margin": math.nan, "margin_source": "", "margin_about": MISSING_MARGIN}
    about = "; ".join(filter(None, [margin.about, note]))
    return {
        "margin": margin.value,
        "margin_source": margin.source,
        "margin_ci_low": margin.low,
        "margin_ci_high": margin.high,
        "margin_about": about,
    }


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
    less = np.searchsorted(b, a, side="left")  # b values below each a
    greater = len(b) - np.searchsorted(b, a, side="right")
    return float((less.sum() - greater.sum()) / (len(a) * len(b)))


def _two_stage_draws(runs: dict[str, np.ndarray], resamples: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``resamples`` two-stage draws (runs with replacement, then each drawn run's images):
    one (resamples, images) array when the runs are of one size, else a list of arrays."""
    values = list(runs.values())
    if len({len(v) for v in values}) == 1:
        stacked = np.stack(values)  # runs x images
        chosen = rng.integers(0, len(values), (resamples, len(values)))
        images = rng.integers(0, stacked.shape[1], (resamples, *stacked.shape))
        return stacked[chosen[:, :, None], images].reshape(resamples, -1)
    return [
        np.concatenate([rng.choice(values[i], len(values[i])) for i in rng.integers(0, len(values), len(values))])
        for _ in range(resamples)
    ]


def cliffs_delta_ci(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap CI (95 %) of Cliff's delta between two levels given as {run: per-image
    values}, in two stages as the data arose: runs resampled within each level, then the images
    of each drawn run (with one run a level, the images alone). Runs of one size are drawn as
    one array and ranked at once: delta = 2 U / (n_a n_b) - 1, U from the rank sum."""
    if resamples < 1 or min(sum(map(len, a.values())), sum(map(len, b.values()))) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    x, y = _two_stage_draws(a, resamples, rng), _two_stage_draws(b, resamples, rng)
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        ranks = stats.rankdata(np.concatenate([x, y], axis=1), axis=1)
        n_a, n_b = x.shape[1], y.shape[1]
        u = ranks[:, :n_a].sum(1) - n_a * (n_a + 1) / 2
        deltas = 2 * u / (n_a * n_b) - 1
    else:
        deltas = [cliffs_delta(p, q) for p, q in zip(x, y)]
    low, high = np.percentile(deltas, [2.5, 97.5])
    return float(low), float(high)


def _crossed(frame: pd.DataFrame, factors: list[str]) -> bool:
    """Every combination of the factors' levels was run (so their interaction is estimable)."""
    return len(factors) > 1 and len(frame.groupby(factors).size()) == math.prod(frame[f].nunique() for f in factors)


#: The column whose values block a design when every value appears at every level.
BLOCK = "seed"


def seed_blocks(frame: pd.DataFrame, factors: list[str], column: str = BLOCK) -> str | None:
    """``column`` when each of its 2+ values appears once in every cell of the factors (the
    design is blocked by seed); else None."""
    if column not in frame or frame[column].nunique() < 2:
        return None
    seeds = sorted(frame[column].unique())
    cells = frame.groupby(factors)[column].agg(lambda v: sorted(v))
    return column if all(list(c) == seeds for c in cells) else None


def _model_data(frame: pd.DataFrame, metric: str, factors: list[str], block: str | None) -> pd.DataFrame:
    names = {column: f"f{i}" for i, column in enumerate(factors)}
    if block:
        names[block] = "b"
    data = frame[[metric, *names]].rename(columns={metric: "y", **names})
    for name in names.values():
        data[name] = data[name].astype(str)
    return data


def anova(
    frame: pd.DataFrame, metric: str, factors: list[str], block: str | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Type-II ANOVA (statsmodels) of ``metric`` on the factors, with their interactions when
    the factors are crossed and an additive ``block`` term; and each term's label ("n", "n x lr")."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    data = _model_data(frame, metric, factors, block)
    terms = [f"C(f{i})" for i in range(len(factors))]
    formula = "y ~ " + (" * " if _crossed(frame, factors) else " + ").join(terms) + (" + C(b)" if block else "")
    table = anova_lm(smf.ols(formula, data).fit(), typ=2)
    labels = {
        term: " x ".join(factors[int(t[3:-1])] for t in term.split(":"))
        for term in table.index
        if term not in ("Residual", "C(b)")
    }
    return table, labels


def equivalence_contrasts(
    frame: pd.DataFrame, metric: str, factors: list[str], block: str | None
) -> tuple[list[tuple[float, float]], float]:
    """Every pair of the first factor's levels as (difference, SE) from the additive model
    (the other factors and the blocks held), and its residual degrees of freedom."""
    import statsmodels.formula.api as smf

    data = _model_data(frame, metric, factors, block)
    terms = [f"C(f{i})" for i in range(len(factors))] + (["C(b)"] if block else [])
    fit = smf.ols("y ~ " + " + ".join(terms), data).fit()
    levels = sorted(data["f0"].unique())
    return model_contrasts(fit, "C(f0)", levels), float(fit.df_resid)


def _power(df_num: float, df_denom: float, sigma: float, k: int, margin: float, alpha: float) -> dict:
    """The design's minimum detectable effect (Cohen's f; times the residual SD: the SD of
    the level means) and its power against a margin-sized difference."""
    f = minimum_detectable_f(df_num, df_denom, alpha)
    return {
        "mde": f,
        "mde_units": f * sigma,
        "power_at_margin": power_f(margin_f(margin, sigma, k), df_num, df_denom, alpha),
    }


def _saturation(groups: dict, metric: str, margin: Margin | None) -> str:
    values = list(groups.values())
    dof = sum(map(len, values)) - len(values)
    within = math.sqrt(sum(((g - g.mean()) ** 2).sum() for g in values) / dof) if dof > 0 else math.nan
    key = registry.key(metric)
    bounds = key.bounds if key is not None else (None, None)
    real_sd, value = (margin.real_sd, margin.value) if margin else (math.nan, math.nan)
    return saturation([g.mean() for g in values], within, bounds, real_sd, value)


# -- designs ----------------------------------------------------------------------------------
def _run_level(
    frame: pd.DataFrame, metric: str, factor: str, others: list[str], base: dict, alpha: float, margin: Margin | None
) -> list[dict]:
    """A run-level design's row for ``factor`` (and its interaction rows when it is the first
    of crossed factors): the type-II F test, its power, and the equivalence test."""
    frame = _finite(frame, metric)
    groups = _groups(frame, metric, factor)
    first = base.pop("first", False)
    row = _row(**base, n_groups=len(groups), replicates_per_group=_counts(groups))
    cells = frame.groupby([factor, *others]).size()
    if len(groups) < 2:
        return [{**row, "note": "fewer than 2 levels with a finite value"}]
    row["saturation"] = _saturation(groups, metric, margin)
    if cells.min() < MIN_REPLICATES:
        where = f" of {', '.join([factor, *others])}" if others else ""
        return [{**row, "note": NO_REPLICATES.format(where=where)}]
    if np.ptp(frame[metric].to_numpy(float)) == 0:
        return [{**row, "note": "every value is identical"}]
    block = seed_blocks(frame, [factor, *others])
    table, labels = anova(frame, metric, [factor, *others], block)
    residual = table.loc["Residual"]
    sigma = math.sqrt(residual.sum_sq / residual.df)
    held = [*others, *(["seed blocks"] if block else [])]
    test = f"ANOVA F (OLS, type II{', with ' + ', '.join(held) if held else ''})"
    contrasts, df = equivalence_contrasts(frame, metric, [factor, *others], block)
    out = []
    for term, label in labels.items():
        interaction = ":" in term
        if term != "C(f0)" and not (interaction and first):
            continue
        effect = table.loc[term]
        value = math.nan if interaction else row["margin"]
        out.append(
            {
                **row,
                "factor": label,
                "statistic": float(effect.F),
                "p_value": float(effect["PR(>F)"]),
                "effect_size": float(effect.sum_sq / (effect.sum_sq + residual.sum_sq)),
                "effect_size_name": "partial_eta_squared" if held else "eta_squared",
                "test": test,
                **_power(effect.df, residual.df, sigma, len(groups), value, alpha),
                **({"margin": math.nan, "margin_source": "", "margin_about": ""} if interaction else {}),
                "equivalence_p": math.nan if interaction else tost_p(contrasts, df, value),
                "saturation": "" if interaction else row["saturation"],
                # what the sensitivity table recomputes at other margins
                "_design": None if interaction else (contrasts, df, effect.df, residual.df, sigma, len(groups)),
            }
        )
    return out


def _epoch_friedman(frame: pd.DataFrame, metric: str, base: dict) -> dict:
    """Does the metric change with epochs? Friedman's test with each run a block."""
    wide = frame.pivot_table(index="run", columns="epoch", values=metric, aggfunc="first").dropna()
    row = _row(
        **base,
        n_groups=wide.shape[1],
        replicates_per_group=str(len(wide)),
        test="Friedman chi-square (runs as blocks)",
    )
    if wide.shape[1] < 3 or len(wide) < MIN_REPLICATES:
        return {**row, "note": "needs 3+ snapshot epochs shared by 2+ runs"}
    if np.ptp(wide.to_numpy()) == 0:
        return {**row, "note": "every value is identical"}
    result = stats.friedmanchisquare(*wide.to_numpy().T)
    w = result.statistic / (len(wide) * (wide.shape[1] - 1))  # Kendall's W
    return {
        **row,
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "effect_size": float(w),
        "effect_size_name": "kendalls_w",
        "note": "a rank test: no power or equivalence test",
    }


def _shared_epoch_means(results: pd.DataFrame, metric: str, factors: list[str]) -> tuple[pd.DataFrame, str]:
    """Each run's mean of ``metric`` over the epochs at which every run has a finite value."""
    data = _finite(results[["run", "epoch", metric, *factors]], metric)
    per_run = data.groupby("run")["epoch"].apply(set)
    shared = sorted(set.intersection(*per_run)) if len(per_run) else []
    data = data[data["epoch"].isin(shared)]
    means = data.groupby("run", as_index=False).agg({metric: "mean", **{f: "first" for f in factors}})
    return means, ", ".join(map(str, shared))


def _pairwise_runs(frame: pd.DataFrame, metric: str, factor: str, base: dict, note: str) -> list[dict]:
    """Welch's t test and Hedges' g (statsmodels) for every pair of levels with 2+ runs each,
    Holm-adjusted within this set of pairs (the post-hoc family of one omnibus test)."""
    from statsmodels.stats.meta_analysis import effectsize_smd
    from statsmodels.stats.multitest import multipletests

    groups = {k: v for k, v in _groups(_finite(frame, metric), metric, factor).items() if len(v) >= MIN_REPLICATES}
    where = f" at epoch {base['epoch']}" if base.get("epoch", "") != "" else f" ({base['design']})"
    rows = []
    for a, b in combinations(groups, 2):
        x, y = groups[a], groups[b]
        if np.ptp(np.r_[x, y]) == 0:
            continue
        test = stats.ttest_ind(x, y, equal_var=False)
        g, variance = effectsize_smd(x.mean(), x.std(ddof=1), len(x), y.mean(), y.std(ddof=1), len(y))
        rows.append(
            _row(
                **base,
                family=f"post-hoc: {metric} by {factor}{where}",
                a=a,
                b=b,
                n_a=len(x),
                n_b=len(y),
                test="Welch t (Holm)",
                statistic=float(test.statistic),
                p_value=float(test.pvalue),
                effect_size=float(g),
                effect_size_name="hedges_g",
                ci_low=float(g - 1.96 * math.sqrt(variance)),
                ci_high=float(g + 1.96 * math.sqrt(variance)),
                note=note,
            )
        )
    if rows:
        for r, value in zip(rows, multipletests([r["p_value"] for r in rows], method="holm")[1]):
            r["p_adjusted"] = float(value)
    return rows


def _by_run(frame: pd.DataFrame, metric: str, factor: str) -> dict:
    """{level: {run: per-image values}} of the finite values."""
    return {
        level: {run: g[metric].to_numpy(float) for run, g in group.groupby("run", sort=True)}
        for level, group in _finite(frame, metric).groupby(factor, sort=True)
    }


def _describe_images(
    frame: pd.DataFrame, metric: str, factor: str, base: dict, resamples: int, seed: int
) -> tuple[dict, list[dict]]:
    groups = _groups(_finite(frame, metric), metric, factor)
    summary = "; ".join(
        f"{level}: median {np.median(v):.4g}, IQR {np.percentile(v, 25):.4g}-{np.percentile(v, 75):.4g}"
        for level, v in groups.items()
    )
    row = _row(
        **base,
        family=DESCRIPTIVE,
        test="descriptive (median, IQR, epsilon squared)",
        n_groups=len(groups),
        replicates_per_group=_counts(groups),
        note=summary,
    )
    if len(groups) < 2 or np.ptp(np.concatenate(list(groups.values()))) == 0:
        return row, []
    h = stats.kruskal(*groups.values()).statistic  # only for epsilon squared: images are not replicates
    row.update(effect_size=epsilon_squared(h, sum(map(len, groups.values()))), effect_size_name="epsilon_squared")
    runs = _by_run(frame, metric, factor) if "run" in frame else {k: {"": v} for k, v in groups.items()}
    pairs = []
    for a, b in combinations(groups, 2):
        low, high = cliffs_delta_ci(runs[a], runs[b], resamples, seed)
        pairs.append(
            _row(
                **base,
                family=DESCRIPTIVE,
                a=a,
                b=b,
                n_a=len(groups[a]),
                n_b=len(groups[b]),
                test="Cliff's delta",
                effect_size=cliffs_delta(groups[a], groups[b]),
                effect_size_name="cliffs_delta",
                ci_low=low,
                ci_high=high,
                note="two-stage bootstrap CI (runs, then images)",
            )
        )
    return row, pairs


def confounding(results: pd.DataFrame, factor: str) -> str:
    """Notes when reference images are training images (confounded when the levels of the
    factor differ in how many), or when the levels differ in optimizer steps."""
    if factor not in results or factor == "epoch":
        return ""
    notes = []
    if "reference_in_training" in results:
        counts = pd.to_numeric(results["reference_in_training"], errors="coerce").groupby(results[factor]).mean()
        listed = ", ".join(f"{level}: {value:.0f}" for level, value in counts.items())
        if counts.nunique() > 1:
            notes.append(
                f"confounded: the reference images that are training images differ across {factor} "
                f"({listed}), so a distance to the reference moves with {factor} for a reason that is not "
                "quality"
            )
        elif counts.fillna(0).max() > 0:
            notes.append(
                f"reference overlaps training ({listed} reference images are training images at every level): "
                "distances to the reference are biased toward memorised images at every level"
            )
    if "step" in results:
        last = results[results["epoch"] == results["epoch"].max()]
        steps = pd.to_numeric(last["step"], errors="coerce").groupby(last[factor]).mean()
        if steps.nunique() > 1 and steps.min() > 0:
            notes.append(
                f"confounded with training length: at epoch {int(last['epoch'].iloc[0])} the levels of "
                f"{factor} had {steps.min():.0f}-{steps.max():.0f} optimizer steps ({steps.max() / steps.min():.1f}x); "
                "compare at equal images seen (kimg) to separate the two"
            )
    return "; ".join(notes)


def _note(row: dict, *notes: str) -> dict:
    return {**row, "note": "; ".join(filter(None, [row["note"], *notes]))}


def image_sizes(frame: pd.DataFrame) -> list:
    return sorted(frame["image_size"].dropna().unique()) if "image_size" in frame else ["any"]


def _factor_rows(
    results: pd.DataFrame, metric: str, factor: str, between: list[str], epochs: list, margins: Margins, alpha: float
) -> tuple[list[dict], list[tuple]]:
    """Every run-level row of one metric and factor, and what each would need for post-hoc
    tests: (row position, data, base, note)."""
    others = [f for f in between if f != factor]
    if factor == "epoch":  # a rank test: no margin to test against
        base = {"metric": metric, "factor": factor, "design": "runs", "unit": "run"}
        return [_epoch_friedman(_finite(results, metric), metric, base)], []
    margin, size_note = margin_at(margins, metric, image_sizes(results))
    base = {"metric": metric, "factor": factor, **_margin_columns(margin, size_note)}
    first = between[:1] == [factor]
    rows, candidates = [], []
    for epoch in epochs:
        cell = {**base, "epoch": int(epoch), "design": "runs", "unit": "run"}
        at = results[results["epoch"] == epoch]
        candidates.append((len(rows), at, cell, ""))
        rows += _run_level(at, metric, factor, others, {**cell, "first": first}, alpha, margin)
    if len(epochs) > 1:
        means, shared = _shared_epoch_means(results, metric, [*between, *([BLOCK] if BLOCK in results else [])])
        cell = {**base, "design": "runs-blocked-by-epoch", "unit": "run"}
        candidates.append((len(rows), means, cell, f"mean over epochs {shared}"))
        rows += [
            _note(r, f"mean over epochs {shared}")
            for r in _run_level(means, metric, factor, others, {**cell, "first": first}, alpha, margin)
        ]
    return rows, candidates


def sweep_statistics(
    results: pd.DataFrame,
    per_image: pd.DataFrame,
    metrics: list[str],
    image_metrics: list[str],
    factors: list[str],
    resamples: int = 200,
    seed: int = 0,
    margins: Margins | None = None,
    question: Question | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every design for every metric and factor; returns (stats, pairwise, sensitivity).

    ``results``: one row per run and snapshot with ``run``, ``epoch``, the factors and the
    metrics; ``per_image``: one row per synthetic image with ``run``, ``epoch``, the factors;
    ``margins``: ``report.margins.Margins``; ``question``: the primary family (default: the
    first factor, every metric, the last snapshot).
    """
    epochs = sorted(results["epoch"].dropna().unique())
    between = [f for f in factors if f != "epoch"]  # epochs are within-run, never between runs
    if question is None:
        question = Question(between[0] if between else "", tuple(metrics), int(epochs[-1]) if epochs else None)
    alpha = question.alpha
    tests, candidates = [], []
    confounded = {factor: confounding(results, factor) for factor in factors}
    for metric in (m for m in metrics if m in results):
        if not np.isfinite(pd.to_numeric(results[metric], errors="coerce")).any():
            tests += [_no_value(metric, f, results) for f in factors]
            continue
        for factor in factors:
            rows, found = _factor_rows(results, metric, factor, between, epochs, margins or {}, alpha)
            candidates += [(len(tests) + position, *rest, metric, factor) for position, *rest in found]
            tests += [_note(r, confounded[factor]) for r in rows]
            tests.append(
                _note(_paper_design(results, metric, factor, {"metric": metric, "factor": factor}), confounded[factor])
            )
    if question.factor in between:
        tests += _missing_endpoints(question, metrics, results)
    for row in tests:
        if row["family"] == "":  # a run-level row: primary when it asks the declared question
            row["family"] = PRIMARY if question.is_primary(row) else SECONDARY.format(factor=row["factor"])
    designs = [row.pop("_design", None) for row in tests]
    sensitivity = sensitivity_table(tests, designs, alpha)
    tests += _describe_all(per_image, image_metrics, between, resamples, seed)
    pairs = [row.pop("_pairs") for row in tests if "_pairs" in row]
    tests = pd.DataFrame(tests, columns=list(STATS_COLUMNS))
    adjust(tests, alpha)
    pairs = [p for found in pairs for p in found] + _post_hoc(tests, candidates)
    return tests, pd.DataFrame(pairs, columns=list(PAIRWISE_COLUMNS)), sensitivity


def _no_value(metric: str, factor: str, results: pd.DataFrame) -> dict:
    status = results.get(f"status_{metric}", pd.Series(dtype=object)).dropna().astype(str)
    why = ": " + ":".join(status.iloc[0].split(":")[:2]) if len(status) else ""  # its word and first reason
    return _row(
        metric=metric,
        factor=factor,
        design="runs",
        unit="run",
        epoch=int(results["epoch"].max()),
        n_groups=0,
        note=f"no finite value in any run{why} (see its status_ column in results.csv)",
    )


def _missing_endpoints(question: Question, metrics: list[str], results: pd.DataFrame) -> list[dict]:
    """A primary row for each declared endpoint the sweep did not score, so the answer names it."""
    scored = set(metrics) & set(results)
    return [
        _row(
            metric=metric,
            factor=question.factor,
            epoch=question.epoch if question.epoch is not None else "",
            design="runs",
            unit="run",
            n_groups=0,
            note="a declared endpoint that this sweep did not score (not in metrics.names, or not a set-level score)",
        )
        for metric in question.endpoints
        if metric not in scored
    ]


def _describe_all(per_image: pd.DataFrame, image_metrics: list[str], between: list[str], resamples, seed) -> list:
    rows = []
    for metric in (m for m in image_metrics if m in per_image):
        for factor in (f for f in between if f in per_image):
            for epoch in sorted(per_image["epoch"].dropna().unique()):
                base = {
                    "metric": metric,
                    "factor": factor,
                    "epoch": int(epoch),
                    "design": "descriptive-images",
                    "unit": "image",
                }
                row, found = _describe_images(
                    per_image[per_image["epoch"] == epoch], metric, factor, base, resamples, seed
                )
                rows.append({**row, "_pairs": found})
    return rows


def _post_hoc(tests: pd.DataFrame, candidates: list[tuple]) -> list[dict]:
    """Pairwise tests after an omnibus row that differs, for a factor of 3+ levels only."""
    pairs = []
    for position, frame, base, note, metric, factor in candidates:
        row = tests.iloc[position]
        if str(row["verdict"]).startswith(DIFFERS) and row["factor"] == factor and row["n_groups"] > 2:
            pairs += _pairwise_runs(
                frame, metric, factor, {k: v for k, v in base.items() if k in PAIRWISE_COLUMNS}, note
            )
    return pairs


def _paper_design(results: pd.DataFrame, metric: str, factor: str, base: dict) -> dict:
    data = _finite(results, metric)
    groups = _groups(data, metric, factor)
    row = _row(
        **base,
        design="paper-epochs-as-replicates",
        unit="snapshot",
        family=OUTSIDE,
        test="one-way ANOVA F",
        n_groups=len(groups),
        replicates_per_group=_counts(groups),
        note="snapshots (epochs of the same runs) as replicates, as in the paper: not independent",
    )
    if len(groups) < 2 or min(map(len, groups.values())) < MIN_REPLICATES:
        return {**row, "note": "fewer than 2 levels with 2+ snapshots"}
    if np.ptp(data[metric].to_numpy(float)) == 0:
        return {**row, "note": "every value is identical"}
    result = stats.f_oneway(*groups.values())
    return {
        **row,
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "effect_size": eta_squared(list(groups.values())),
        "effect_size_name": "eta_squared",
    }


def _bh(values: pd.Series) -> pd.Series:
    """Benjamini-Hochberg over the finite values (NaN stays NaN)."""
    values = pd.to_numeric(values, errors="coerce")
    finite = values[np.isfinite(values)]
    out = pd.Series(np.nan, index=values.index)
    if len(finite):
        out[finite.index] = np.atleast_1d(stats.false_discovery_control(finite.to_numpy(float), method="bh"))
    return out


def run_level_families(tests: pd.DataFrame) -> list[str]:
    """The primary family and the secondary ones, in that order."""
    return [f for f in tests["family"].unique() if f == PRIMARY or str(f).startswith("secondary")]


def adjust(tests: pd.DataFrame, alpha: float = ALPHA) -> None:
    """Benjamini-Hochberg within each family (the primary one and each secondary one), for
    the omnibus and the equivalence p-values, and each run-level row's verdict."""
    for family in run_level_families(tests):
        rows = tests["family"] == family
        tests.loc[rows, "p_adjusted"] = _bh(tests.loc[rows, "p_value"])
        tests.loc[rows, "equivalence_p_adjusted"] = _bh(tests.loc[rows, "equivalence_p"])
        tests.loc[rows, "verdict"] = [
            verdict(p, e, alpha, str(s))
            for p, e, s in zip(
                tests.loc[rows, "p_adjusted"], tests.loc[rows, "equivalence_p_adjusted"], tests.loc[rows, "saturation"]
            )
        ]


def sensitivity_table(rows: list[dict], designs: list, alpha: float) -> pd.DataFrame:
    """Each primary endpoint's margin, power and verdict at ``SENSITIVITY`` x its margin,
    the equivalence p-values adjusted over the primary family at each multiple."""
    primary = [(row, design) for row, design in zip(rows, designs) if row["family"] == PRIMARY]
    table = pd.DataFrame({"metric": [r["metric"] for r, _ in primary]})
    table["factor"] = [r["factor"] for r, _ in primary]
    table["epoch"] = [r["epoch"] for r, _ in primary]
    table["margin_source"] = [r["margin_source"] for r, _ in primary]
    p = pd.Series([r["p_value"] for r, _ in primary], dtype=float)
    adjusted = _bh(p) if len(p) else p
    for scale in SENSITIVITY:
        margins, powers, equivalence = [], [], []
        for row, design in primary:
            margin = row["margin"] * scale
            margins.append(margin)
            if design is None:
                powers.append(math.nan)
                equivalence.append(math.nan)
                continue
            contrasts, df, df_num, df_denom, sigma, k = design
            powers.append(power_f(margin_f(margin, sigma, k), df_num, df_denom, alpha))
            equivalence.append(tost_p(contrasts, df, margin))
        equivalence = _bh(pd.Series(equivalence, dtype=float)) if primary else pd.Series(dtype=float)
        table[f"margin_{scale:g}x"] = margins
        table[f"power_{scale:g}x"] = powers
        table[f"verdict_{scale:g}x"] = [
            verdict(a, e, alpha, row["saturation"]) for a, e, (row, _) in zip(adjusted, equivalence, primary)
        ]
    return table


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
