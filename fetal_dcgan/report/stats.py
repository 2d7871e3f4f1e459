"""Does a metric differ across training-set size (or epochs, learning rate, resolution)?

For each metric and each varied axis: Kruskal-Wallis and one-way ANOVA over the groups
(scipy), then pairwise Mann-Whitney U tests with Benjamini-Hochberg correction
(``scipy.stats.false_discovery_control``). Set-level metrics use the sweep's other axes
(epochs, seeds) as replicates; per-image metrics use the images. A test that cannot be
run says why in ``note`` instead of producing a number.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

MIN_PER_GROUP = 2


def _groups(table: pd.DataFrame, metric: str, axis: str) -> dict:
    data = table[[axis, metric]].dropna()
    data = data[np.isfinite(data[metric].astype(float))]
    return {level: group[metric].to_numpy(float) for level, group in data.groupby(axis, sort=True)}


def _sizes(groups: dict) -> str:
    return "; ".join(f"{level}: {len(values)}" for level, values in groups.items())


def axis_tests(table: pd.DataFrame, metrics: list[str], axes: list[str], level: str) -> pd.DataFrame:
    """One row per (metric, axis): group sizes, Kruskal-Wallis H and p, ANOVA F and p, note."""
    rows = []
    for metric in metrics:
        for axis in axes:
            row = {"metric": metric, "level": level, "axis": axis, "kruskal_h": np.nan, "kruskal_p": np.nan,
                   "anova_f": np.nan, "anova_p": np.nan, "note": ""}
            if metric not in table or axis not in table:
                rows.append({**row, "groups": "", "note": f"no column {metric if metric not in table else axis}"})
                continue
            groups = _groups(table, metric, axis)
            row["groups"] = _sizes(groups)
            if len(groups) < 2 or min(len(v) for v in groups.values()) < MIN_PER_GROUP:
                row["note"] = (f"cannot test: needs at least 2 groups with {MIN_PER_GROUP}+ finite values each "
                               f"(replicates: other axes or seeds)")
            elif np.ptp(np.concatenate(list(groups.values()))) == 0:
                row["note"] = "cannot test: every value is identical"
            else:
                row["kruskal_h"], row["kruskal_p"] = stats.kruskal(*groups.values())
                row["anova_f"], row["anova_p"] = stats.f_oneway(*groups.values())
            rows.append(row)
    return pd.DataFrame(rows)


def pairwise_tests(table: pd.DataFrame, metrics: list[str], axes: list[str], level: str) -> pd.DataFrame:
    """Mann-Whitney U for every pair of levels, p adjusted by Benjamini-Hochberg per (metric, axis)."""
    rows = []
    for metric in metrics:
        for axis in axes:
            if metric not in table or axis not in table:
                continue
            groups = _groups(table, metric, axis)
            pairs = [(a, b) for a, b in combinations(groups, 2)
                     if min(len(groups[a]), len(groups[b])) >= MIN_PER_GROUP]
            found = []
            for a, b in pairs:
                u, p = stats.mannwhitneyu(groups[a], groups[b], alternative="two-sided")
                found.append({"metric": metric, "level": level, "axis": axis, "a": a, "b": b, "n_a": len(groups[a]),
                              "n_b": len(groups[b]), "u": u, "p": p})
            if found:
                adjusted = stats.false_discovery_control([r["p"] for r in found], method="bh")
                for r, p_adj in zip(found, np.atleast_1d(adjusted)):
                    r["p_bh"] = float(p_adj)
            rows += found
    return pd.DataFrame(rows, columns=["metric", "level", "axis", "a", "b", "n_a", "n_b", "u", "p", "p_bh"])
