"""How many replicates a study needs: ``python -m fetal_dcgan.report plan PILOT``.

From a pilot sweep (2+ runs a cell), each primary endpoint's run-to-run SD at the primary
snapshot: the residual SD of the model the report will fit (with seed blocks where the
pilot's seeds are shared across levels, and the gain of blocking beside it), with a
chi-square 95 % interval. Then, per endpoint, the replicates per cell for ``power`` to
find ``differs`` when two levels are a margin apart (the F test's power, as the report
computes it), and to declare ``equivalent`` when there is no difference (the report's
model-based intersection-union TOST, by Monte Carlo), both at ``alpha`` divided by the
number of endpoints the pilot could score (Bonferroni: a conservative stand-in for the
BH of the primary family). A pilot of a few runs knows its SD poorly, so the replicates
that the upper end of its interval would need are given beside. The cost is the pilot's
own mean wall time per run, times the planned runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fetal_dcgan.errors import UserError
from fetal_dcgan.report.build import declared_study, margins_of, question_of
from fetal_dcgan.report.collect import Sweep, load_sweep
from fetal_dcgan.report.margins import MARGINS_FILE, Margin, margin_at, sd_interval
from fetal_dcgan.report.stats import anova, image_sizes, seed_blocks
from fetal_dcgan.report.verdicts import margin_f, power_f
from fetal_dcgan.runs import read_finished
from fetal_dcgan.utils import atomic_write_text

PLAN_FILES = ("plan.csv", "plan.json")
#: Monte-Carlo studies per replicate count for the equivalence power, and the seed they use.
SIMULATIONS, SIMULATION_SEED = 4000, 0


@dataclass(frozen=True)
class Spread:
    """An endpoint's run-to-run SD in the pilot: the one the plan uses, its interval and
    degrees of freedom, whether it is blocked by seed, and the unblocked SD beside it."""

    sd: float
    low: float
    high: float
    df: float
    blocked: bool
    unblocked_sd: float


def residual_sd(frame: pd.DataFrame, metric: str, factors: list[str], block: str | None) -> tuple[float, float]:
    table, _ = anova(frame, metric, factors, block)
    residual = table.loc["Residual"]
    return math.sqrt(residual.sum_sq / residual.df), float(residual.df)


def run_spread(frame: pd.DataFrame, metric: str, factors: list[str]) -> Spread:
    block = seed_blocks(frame, factors)
    unblocked, df = residual_sd(frame, metric, factors, None)
    sd, df = residual_sd(frame, metric, factors, block) if block else (unblocked, df)
    low, high = sd_interval(sd, int(df) + 1)
    return Spread(sd, low, high, df, block is not None, unblocked)


def df_residual(levels: int, replicates: int, blocked: bool) -> int:
    """Residual degrees of freedom of a one-factor design, with seed blocks or without."""
    return (levels - 1) * (replicates - 1) if blocked else levels * (replicates - 1)


def replicates_to_differ(
    margin: float, sd: float, levels: int, blocked: bool, alpha: float, power: float, most: int
) -> int | None:
    """The fewest replicates per level whose F test finds two levels a margin apart with ``power``."""
    f = margin_f(margin, sd, levels)
    for r in range(2, most + 1):
        if power_f(f, levels - 1, df_residual(levels, r, blocked), alpha) >= power:
            return r
    return None


def equivalence_power(
    margin: float, sd: float, levels: int, replicates: int, blocked: bool, alpha: float, simulations: int = SIMULATIONS
) -> float:
    """P(every pair of equal levels passes the model-based TOST at ``alpha``): Monte Carlo
    of the level means and the residual variance the report's fit would see."""
    rng = np.random.default_rng(SIMULATION_SEED)
    df = df_residual(levels, replicates, blocked)
    means = rng.normal(0.0, sd / math.sqrt(replicates), (simulations, levels))
    s = sd * np.sqrt(rng.chisquare(df, simulations) / df)
    se = s * math.sqrt(2 / replicates)
    worst = np.zeros(simulations)
    for a, b in combinations(range(levels), 2):
        d = means[:, b] - means[:, a]
        worst = np.maximum(worst, np.maximum(stats.t.sf((d + margin) / se, df), stats.t.cdf((d - margin) / se, df)))
    return float((worst < alpha).mean())


def replicates_to_be_equivalent(
    margin: float, sd: float, levels: int, blocked: bool, alpha: float, power: float, most: int
) -> int | None:
    if not (margin > 0 and sd > 0):
        return None
    for r in range(2, most + 1):
        if equivalence_power(margin, sd, levels, r, blocked, alpha) >= power:
            return r
    return None


def seconds_per_run(sweep: Sweep) -> float:
    """The pilot's mean wall time of a whole run (training, sampling and metrics)."""
    times = [record.phase("fit") for run in sweep.runs.itertuples() if (record := read_finished(Path(run.path)))]
    times = [t for t in times if t > 0]
    return float(np.mean(times)) if times else math.nan


def _pilot_frame(sweep: Sweep, factor: str, epoch: int) -> pd.DataFrame:
    at = sweep.results[sweep.results["epoch"] == epoch]
    if factor not in at or at[factor].nunique() < 2:
        raise UserError(
            f"{sweep.root} cannot serve as a pilot: the primary factor {factor!r} does not vary in it "
            f"(varied: {', '.join(sweep.varied_axes) or 'nothing'}). Declare the factor (study.factor, or "
            "--factor) or run a pilot that varies it."
        )
    runs = at.groupby(factor)["run"].nunique()
    if runs.min() < 2:
        raise UserError(
            f"{sweep.root} cannot serve as a pilot: {runs.min()} run at some level of {factor} "
            f"({', '.join(f'{k}: {v}' for k, v in runs.items())}), so the run-to-run spread is unknown. "
            "A pilot needs 2+ replicates a cell, e.g. python -m fetal_dcgan.train -m ... seed=0,1,2."
        )
    return at


def plan(
    pilot: str | Path,
    margins: str | Path | None = None,
    levels: int | None = None,
    most: int = 200,
    measure: bool = True,
    question: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The plan's table (one row per primary endpoint) and its header; written to
    ``PILOT/plan.csv`` and ``plan.json``. Margins the pilot lacks are measured first
    (``baselines --margins``'s measurement) unless ``measure`` is False."""
    sweep = load_sweep(pilot)
    asked = question_of(sweep, **(question or {}))
    study_alpha = asked.alpha
    frame = _pilot_frame(sweep, asked.factor, asked.epoch)
    found = margins_of(sweep, margins)
    if measure and not margins and not (sweep.root / MARGINS_FILE).is_file():
        from fetal_dcgan.report.measure import sweep_margins

        sweep_margins(sweep.root)
        found = margins_of(sweep)
    power = declared_study(sweep).power
    k = levels or frame[asked.factor].nunique()
    scored = [m for m in asked.endpoints if m in frame and np.isfinite(pd.to_numeric(frame[m], errors="coerce")).any()]
    alpha = study_alpha / max(len(scored), 1)
    per_run = seconds_per_run(sweep)
    rows = [
        _endpoint_row(
            frame, metric, asked.factor, margin_at(found, metric, image_sizes(frame))[0], k, alpha, power, most
        )
        for metric in asked.endpoints
    ]
    table = pd.DataFrame(rows)
    for goal in ("differs", "equivalent", "differs_at_sd_high"):
        table[f"hours_{goal}"] = table[f"replicates_{goal}"].astype(float) * k * per_run / 3600
    header = {
        "pilot": str(sweep.root),
        "factor": asked.factor,
        "epoch": asked.epoch,
        "levels": int(k),
        "pilot_runs_per_level": frame.groupby(asked.factor)["run"].nunique().to_dict(),
        "alpha_per_endpoint": alpha,
        "power": power,
        "seconds_per_run": per_run,
    }
    atomic_write_text(table.to_csv(index=False), sweep.root / PLAN_FILES[0])
    payload = {**header, "endpoints": table.to_dict(orient="records")}
    atomic_write_text(json.dumps(payload, indent=1, default=str), sweep.root / PLAN_FILES[1])
    return table, header


def _endpoint_row(
    frame: pd.DataFrame, metric: str, factor: str, margin: Margin | None, k: int, alpha: float, power: float, most: int
) -> dict:
    row = {"metric": metric, "margin": math.nan, "margin_source": "", "note": ""}
    values = pd.to_numeric(frame.get(metric, pd.Series(dtype=float)), errors="coerce")
    data = frame.assign(**{metric: values})[np.isfinite(values)] if metric in frame else frame.iloc[:0]
    if data.empty or data.groupby(factor)["run"].nunique().min() < 2:
        return {**row, "note": "no finite values in 2+ runs a level (see its status_ column)"}
    spread = run_spread(data, metric, [factor])
    row.update(
        sd_runs=spread.sd,
        sd_ci_low=spread.low,
        sd_ci_high=spread.high,
        sd_df=spread.df,
        blocked_by_seed=spread.blocked,
        sd_unblocked=spread.unblocked_sd,
        block_gain=(spread.unblocked_sd / spread.sd) ** 2 if spread.sd > 0 else math.nan,
    )
    if margin is None:
        return {**row, "note": "no margin: measure them (baselines --margins) or give --margins"}
    row.update(margin=margin.value, margin_source=margin.source)
    if not spread.sd > 0:
        return {**row, "note": "no run-to-run spread in the pilot"}
    blocked = spread.blocked
    row["replicates_differs"] = replicates_to_differ(margin.value, spread.sd, k, blocked, alpha, power, most)
    row["replicates_equivalent"] = replicates_to_be_equivalent(margin.value, spread.sd, k, blocked, alpha, power, most)
    row["replicates_differs_at_sd_high"] = replicates_to_differ(
        margin.value, spread.high, k, blocked, alpha, power, most
    )
    if row["replicates_differs"] is None or row["replicates_equivalent"] is None:
        row["note"] = f"more than {most} replicates a level"
    return row
