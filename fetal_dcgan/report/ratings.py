"""Image-quality metrics against raters' scores, one point per synthetic set.

A set-level metric is one number per set, so the ratings are aggregated per set first
(mean rating, share of its images called real) and n counts sets, never images. The sets
of one run (its snapshot epochs) are not independent, so the bootstrap resamples runs:
Spearman's rho always gets that clustered interval, and Pearson's r too when a run has
several sets (else its Fisher-z interval); and every p-value permutes runs: whole runs'
ratings move between runs with as many sets (all permutations where they are few, else
``PERMUTATIONS`` random ones), which keeps the dependence within a run under the null of
no relation. Optionally the paper's logarithmic fit
``metric = a ln(rating) + b`` (its Fig. 2). The LBP elements enter in the paper's units
(``lbp_vNN_diff``: rLBPv - sLBPv in codes per image).
The paper's correlations use the clinician's scores: ``role`` filters by rater role.
Both ``python -m fetal_dcgan.report --ratings`` and ``survey analyze`` call this module.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fetal_dcgan.errors import UserError
from fetal_dcgan.utils import read_table_with

#: Columns of a ratings CSV: one row per rating of a synthetic image. ``role``, ``rater``
#: and ``called_real`` (1/0) are optional; ``survey analyze`` writes all of them.
RATING_COLUMNS = ("run", "epoch", "image", "rating")
#: A rater's role in a rating study (the rating page's choices, the database's CHECK, the
#: report's filter); ``ROLES`` adds "all" for every rater at once.
RATER_ROLES = ("clinician", "engineer", "other")
ROLES = ("all", *RATER_ROLES)
RELATION_COLUMNS = (
    "metric",
    "role",
    "n_sets",
    "n_runs",
    "pearson_r",
    "pearson_ci_low",
    "pearson_ci_high",
    "pearson_p",
    "spearman_rho",
    "spearman_ci_low",
    "spearman_ci_high",
    "spearman_p",
    "p_adjusted",
    "log_a",
    "log_b",
    "log_r2",
    "log_p",
    "note",
)
MIN_SETS = 4
#: Random permutations of runs for a p-value (all of them when there are no more than this).
PERMUTATIONS = 2000


def read_ratings(path: Path) -> pd.DataFrame:
    what = (
        f"a ratings CSV has one row per rating of a synthetic image with columns {', '.join(RATING_COLUMNS)} "
        "(and optionally role, rater, called_real); `python -m fetal_dcgan.survey analyze` writes one as "
        "analysis/ratings.csv."
    )
    ratings = read_table_with(path, RATING_COLUMNS, what)
    return ratings.assign(run=ratings["run"].astype(str))


def per_set(ratings: pd.DataFrame, role: str = "all") -> pd.DataFrame:
    """Mean rating, number of ratings and share called real of each synthetic set (run, epoch)."""
    if role not in ROLES:
        raise UserError(f"--role {role!r}: choose one of {', '.join(ROLES)}.")
    if role != "all":
        if "role" not in ratings:
            raise UserError(f"--role {role} needs a `role` column in the ratings (survey analyze writes it).")
        chosen = ratings[ratings["role"] == role]
        if chosen.empty:
            raise UserError(
                f"No ratings by a rater of role {role!r}: the roles present are "
                f"{sorted(set(ratings['role'].astype(str)))}; use --role all."
            )
        ratings = chosen
    aggregations = {"rating": ("rating", "mean"), "n_ratings": ("rating", "size")}
    if "called_real" in ratings:
        aggregations["called_real"] = ("called_real", "mean")
    return ratings.assign(run=ratings["run"].astype(str)).groupby(["run", "epoch"], as_index=False).agg(**aggregations)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair of two (resamples, n) arrays; NaN where a row has no spread."""
    x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(1) / np.sqrt((x**2).sum(1) * (y**2).sum(1))


def _percentile(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def clustered_ci(
    x: np.ndarray, y: np.ndarray, clusters: np.ndarray | None = None, resamples: int = 2000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (95 %) of Pearson's r and Spearman's rho, resampling
    whole clusters (runs) with replacement; every set its own cluster when ``clusters`` is None.
    Resamples with no spread in x or y have no correlation and are left out."""
    labels = np.arange(len(x)) if clusters is None else pd.factorize(np.asarray(clusters))[0]
    members = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
    draws = np.random.default_rng(seed).integers(0, len(members), (resamples, len(members)))
    if len({len(m) for m in members}) == 1:  # clusters of one size (a run's snapshots): one matrix of resamples
        index = np.stack(members)[draws].reshape(resamples, -1)
        pearson = _pearson_rows(x[index], y[index])
        spearman = _pearson_rows(stats.rankdata(x[index], axis=1), stats.rankdata(y[index], axis=1))
    else:
        pearson, spearman = np.empty(resamples), np.empty(resamples)
        for i, row in enumerate(draws):
            index = np.concatenate([members[c] for c in row])[None]
            pearson[i] = _pearson_rows(x[index], y[index])[0]
            spearman[i] = _pearson_rows(stats.rankdata(x[index], axis=1), stats.rankdata(y[index], axis=1))[0]
    return {"pearson": _percentile(pearson), "spearman": _percentile(spearman)}


def run_permutations(clusters: np.ndarray, permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Index arrays (rows) that give each run the values of another run with as many sets,
    in order; every such permutation when they number at most ``permutations`` (exact: True)."""
    labels = pd.factorize(np.asarray(clusters))[0]
    members = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
    groups = {}
    for c, m in enumerate(members):
        groups.setdefault(len(m), []).append(c)
    groups = list(groups.values())
    exact = math.prod(math.factorial(len(g)) for g in groups) <= permutations
    if exact:
        orders = [
            [c for part in choice for c in part]
            for choice in itertools.product(*(itertools.permutations(g) for g in groups))
        ]
    else:
        rng = np.random.default_rng(seed)
        orders = [[c for g in groups for c in rng.permutation(g)] for _ in range(permutations)]
    sources = [c for g in groups for c in g]
    index = np.empty((len(orders), len(labels)), int)
    for row, order in enumerate(orders):
        for target, source in zip(sources, order):
            index[row, members[target]] = members[source]
    return index, exact


def permutation_p(x: np.ndarray, y: np.ndarray, index: np.ndarray, exact: bool) -> float:
    """Two-sided p of Pearson's r of (x, y) against x moved by the ``run_permutations`` rows."""
    observed = abs(_pearson_rows(x[None], y[None])[0])
    extreme = int((np.abs(_pearson_rows(x[index], np.broadcast_to(y, index.shape))) >= observed - 1e-12).sum())
    return extreme / len(index) if exact else (1 + extreme) / (1 + len(index))


def spearman_ci(x: np.ndarray, y: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (95 %) of Spearman's rho over resampled (x, y) pairs."""
    return clustered_ci(x, y, None, resamples, seed)["spearman"]


def correlate(
    metric: np.ndarray,
    rating: np.ndarray,
    log_fit: bool = False,
    resamples: int = 2000,
    seed: int = 0,
    runs: np.ndarray | None = None,
) -> dict:
    """Pearson and Spearman between a metric and the mean rating of the same sets; ``runs``:
    the run of each set, the unit the bootstrap resamples."""
    keep = np.isfinite(metric) & np.isfinite(rating)
    x, y = rating[keep], metric[keep]
    clusters = np.arange(len(x)) if runs is None else np.asarray(runs)[keep]
    out = {"n_sets": int(len(x)), "n_runs": int(len(set(clusters.tolist())))}
    if len(x) < MIN_SETS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {**out, "note": f"needs {MIN_SETS}+ rated sets with a spread of ratings and values"}
    pearson = stats.pearsonr(x, y)
    clustered = out["n_runs"] < len(x)
    ci = clustered_ci(x, y, clusters, resamples, seed)
    fisher = pearson.confidence_interval(0.95)
    low, high = ci["pearson"] if clustered else (fisher.low, fisher.high)
    index, exact = run_permutations(clusters, seed=seed)
    out.update(
        pearson_r=pearson.statistic,
        pearson_ci_low=low,
        pearson_ci_high=high,
        pearson_p=permutation_p(x, y, index, exact),
        spearman_rho=stats.spearmanr(x, y).statistic,
        spearman_ci_low=ci["spearman"][0],
        spearman_ci_high=ci["spearman"][1],
        spearman_p=permutation_p(stats.rankdata(x), stats.rankdata(y), index, exact),
        note=f"{len(x)} sets from {out['n_runs']} runs: CIs resample runs, p-values permute runs"
        + (f" (all {len(index)} permutations)" if exact else f" ({len(index)} random permutations)"),
    )
    if log_fit and (x > 0).all():
        fit = stats.linregress(np.log(x), y)
        slope_p = permutation_p(np.log(x), y, index, exact)  # the slope's test is the correlation's
        out.update(log_a=fit.slope, log_b=fit.intercept, log_r2=fit.rvalue**2, log_p=slope_p)
    return out


def metrics_vs_ratings(
    results: pd.DataFrame,
    ratings: pd.DataFrame,
    metrics: list[str],
    role: str = "all",
    log_fit: bool = False,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per metric (n = rated sets), Pearson p-values BH-adjusted over the metrics;
    and the per-set table the correlations were computed on."""
    sets = per_set(ratings, role).merge(results.assign(run=results["run"].astype(str)), on=["run", "epoch"])
    rows = [
        {
            "metric": m,
            "role": role,
            **correlate(
                sets[m].to_numpy(float), sets["rating"].to_numpy(float), log_fit, seed=seed, runs=sets["run"].to_numpy()
            ),
        }
        for m in metrics
        if m in sets and sets[m].notna().any()
    ]
    table = pd.DataFrame(rows, columns=list(RELATION_COLUMNS))
    tested = table["pearson_p"].notna()
    if tested.any():
        table.loc[tested, "p_adjusted"] = stats.false_discovery_control(table.loc[tested, "pearson_p"], method="bh")
    order = table["pearson_r"].abs().sort_values(ascending=False, na_position="last").index
    return table.loc[order].reset_index(drop=True), sets


def rating_figure(sets: pd.DataFrame, relations: pd.DataFrame, path: Path, limit: int = 12) -> Path | None:
    """Each metric (y) against the sets' mean rating (x), as in the paper's Fig. 2."""
    from fetal_dcgan.report.figures import panel_grid

    shown = [row for row in relations.itertuples() if math.isfinite(row.pearson_r)][:limit]
    if not shown:
        return None

    def draw(ax, row) -> None:
        x, y = sets["rating"].to_numpy(float), sets[row.metric].to_numpy(float)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        ax.scatter(x, y, s=14, alpha=0.8)
        xs = np.linspace(x.min(), x.max(), 50)
        fit = stats.linregress(x, y)
        ax.plot(xs, fit.intercept + fit.slope * xs, color="tab:red", label="linear")
        if math.isfinite(getattr(row, "log_a", math.nan)):
            ax.plot(xs, row.log_a * np.log(xs) + row.log_b, color="tab:green", label="a ln(rating) + b")
            ax.legend(fontsize=6)
        ax.set_title(
            f"{row.metric}: r={row.pearson_r:.2f} [{row.pearson_ci_low:.2f}, {row.pearson_ci_high:.2f}], "
            f"n={row.n_sets} sets",
            fontsize=8,
        )
        ax.set_xlabel(f"mean rating ({row.role})", fontsize=8)
        ax.set_ylabel(row.metric, fontsize=8)

    return panel_grid(shown, draw, path)
