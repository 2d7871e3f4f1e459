"""Analyse a finished rating study: how well raters told real from synthetic, how much
they agreed, and how the image-quality metrics relate to their quality ratings."""

from __future__ import annotations

import html
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fetal_dcgan.errors import UserError
from fetal_dcgan.report import figures
from fetal_dcgan.report.collect import PER_IMAGE_METRICS, load_sweep
from fetal_dcgan.report.html import image_tag, render, table
from fetal_dcgan.survey.agreement import cohen_kappa, fleiss_kappa
from fetal_dcgan.survey.deck import read_key
from fetal_dcgan.survey.storage import Storage
from fetal_dcgan.utils import atomic_write_text

#: Set-level metrics of an image's source set related to ratings.
SET_METRICS = ("fid", "kid_mean", "lbp_l1", "lbp_chi2", "psnr_best_mean", "mi_best_mean")


def load_answers(study: Path) -> pd.DataFrame:
    """Every answer with its image's truth and source (run, epoch, file)."""
    answers = pd.DataFrame(Storage(Path(study) / "ratings.sqlite").answers())
    if answers.empty:
        raise UserError(f"No answers in {study}/ratings.sqlite yet: send raters the study's link first.")
    key = pd.DataFrame(read_key(study)).rename(columns={"id": "image_id", "image": "file"})
    merged = answers.rename(columns={"image": "image_id"}).merge(key, on="image_id", how="left")
    merged["epoch"] = pd.to_numeric(merged["epoch"], errors="coerce")
    return merged


def detection(answers: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per rater (or role): accuracy, sensitivity/specificity for "synthetic", quality by truth."""
    rows = []
    for name, group in answers.groupby(by, sort=True):
        synthetic, real = group[group.truth == "synthetic"], group[group.truth == "real"]
        q_real, q_syn = real["rating"].to_numpy(float), synthetic["rating"].to_numpy(float)
        test = (stats.mannwhitneyu(q_real, q_syn, alternative="two-sided")
                if len(q_real) and len(q_syn) and np.ptp(np.r_[q_real, q_syn]) > 0 else None)
        rows.append({
            by: name, "answers": len(group),
            "accuracy": float((group.choice == group.truth).mean()),
            "sensitivity_synthetic": float((synthetic.choice == "synthetic").mean()) if len(synthetic) else math.nan,
            "specificity_synthetic": float((real.choice == "real").mean()) if len(real) else math.nan,
            "synthetic_called_real": float((synthetic.choice == "real").mean()) if len(synthetic) else math.nan,
            "quality_real": float(q_real.mean()) if len(q_real) else math.nan,
            "quality_synthetic": float(q_syn.mean()) if len(q_syn) else math.nan,
            "quality_mannwhitney_u": test.statistic if test else math.nan,
            "quality_p": test.pvalue if test else math.nan,
        })
    return pd.DataFrame(rows)


def agreement(answers: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa per pair of raters and Fleiss' kappa on real/synthetic; Krippendorff's
    alpha (interval and ordinal) on the ratings, over the images every rater answered."""
    import krippendorff

    choice = answers.pivot(index="image_id", columns="rater", values="choice")
    rating = answers.pivot(index="image_id", columns="rater", values="rating")
    rows = [{"measure": "cohen_kappa", "raters": f"{a} vs {b}", "value": cohen_kappa(*choice[[a, b]].dropna().T.values)}
            for a, b in combinations(choice.columns, 2)]
    complete = choice.dropna()
    counts = np.stack([(complete == k).sum(axis=1) for k in ("real", "synthetic")], 1) if len(complete) else np.empty((0, 2))
    rows.append({"measure": "fleiss_kappa", "raters": f"all {choice.shape[1]} on {len(complete)} images",
                 "value": fleiss_kappa(counts)})
    for level in ("interval", "ordinal"):
        value = math.nan
        if rating.shape[1] >= 2 and rating.notna().sum().sum() > rating.shape[0]:
            try:
                value = krippendorff.alpha(reliability_data=rating.T.to_numpy(float), level_of_measurement=level)
            except ValueError:
                pass
        rows.append({"measure": f"krippendorff_alpha_{level}", "raters": f"all {rating.shape[1]}", "value": value})
    return pd.DataFrame(rows)


def _load_metrics(source: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image and set-level metrics from a sweep folder, or from a report's per_image.csv."""
    source = Path(source)
    if source.is_dir():
        sweep = load_sweep(source)
        return sweep.per_image, sweep.results
    per_image = pd.read_csv(source)
    results = source.with_name("results.csv")
    return per_image, (pd.read_csv(results) if results.is_file() else pd.DataFrame())


def _correlate(x: np.ndarray, y: np.ndarray) -> dict:
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    out = {"n": int(len(x))}
    if len(x) < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {**out, "note": "too few values or no spread"}
    pearson = stats.pearsonr(x, y)
    ci = pearson.confidence_interval(0.95)
    spearman = stats.spearmanr(x, y)
    z, half = np.arctanh(np.clip(spearman.statistic, -0.999999, 0.999999)), 1.96 / math.sqrt(len(x) - 3)
    fit = stats.linregress(x, y)
    return {**out, "pearson_r": pearson.statistic, "pearson_p": pearson.pvalue, "pearson_ci_low": ci.low,
            "pearson_ci_high": ci.high, "spearman_r": spearman.statistic, "spearman_p": spearman.pvalue,
            "spearman_ci_low": math.tanh(z - half), "spearman_ci_high": math.tanh(z + half),
            "slope": fit.slope, "intercept": fit.intercept, "note": ""}


def mean_ratings(answers: pd.DataFrame) -> pd.DataFrame:
    """Mean rating of each synthetic image, in the format of ``python -m fetal_dcgan.report --ratings``."""
    synthetic = answers[answers.truth == "synthetic"]
    table_ = synthetic.groupby(["run", "epoch", "file"], as_index=False)["rating"].mean()
    return table_.rename(columns={"file": "image"})[["run", "epoch", "image", "rating"]]


def metric_relations(answers: pd.DataFrame, per_image: pd.DataFrame, results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean rating of each synthetic image against its metrics; ranked by |Spearman r|."""
    rated = mean_ratings(answers).rename(columns={"image": "file"})
    rated["run"] = rated["run"].astype(str)
    joined = rated
    if not per_image.empty:
        joined = joined.merge(per_image.assign(run=per_image["run"].astype(str)).rename(columns={"image": "file"}),
                              on=["run", "epoch", "file"], how="left")
    if not results.empty:
        set_cols = [m for m in SET_METRICS if m in results]
        joined = joined.merge(results.assign(run=results["run"].astype(str))[["run", "epoch", *set_cols]]
                              .rename(columns={m: f"set_{m}" for m in set_cols}), on=["run", "epoch"], how="left")
    candidates = [m for m in PER_IMAGE_METRICS if m in joined] + [c for c in joined if c.startswith("set_")]
    rows = [{"metric": m, **_correlate(joined[m].to_numpy(float), joined["rating"].to_numpy(float))}
            for m in candidates]
    table_ = pd.DataFrame(rows)
    if "spearman_r" in table_:
        table_ = table_.assign(strength=table_["spearman_r"].abs()).sort_values("strength", ascending=False,
                                                                                 na_position="last")
        table_ = table_.drop(columns="strength")
    return table_.reset_index(drop=True), joined


def analyze(study: str | Path, metrics: str | Path | None = None, out: str | Path | None = None) -> dict:
    """Write the analysis tables, figures and summary.html; return their paths."""
    study = Path(study)
    out = Path(out) if out else study / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    answers = load_answers(study)
    per_rater, per_role, agree = detection(answers, "rater"), detection(answers, "role"), agreement(answers)
    paths = {"answers": out / "answers.csv", "per_rater": out / "per_rater.csv", "per_role": out / "per_role.csv",
             "agreement": out / "agreement.csv", "ratings": out / "ratings.csv", "html": out / "summary.html"}
    for name, frame in (("answers", answers), ("per_rater", per_rater), ("per_role", per_role),
                        ("agreement", agree), ("ratings", mean_ratings(answers))):
        atomic_write_text(frame.to_csv(index=False), paths[name])
    sections = [("Who rated", table(per_rater)), ("By role", table(per_role)), ("Agreement", table(agree))]
    if metrics:
        per_image, results = _load_metrics(Path(metrics))
        relations, joined = metric_relations(answers, per_image, results)
        paths["relations"] = out / "metric_relations.csv"
        atomic_write_text(relations.to_csv(index=False), paths["relations"])
        shown = [m for m in relations.get("metric", []) if m in joined and joined[m].notna().sum() >= 2][:12]
        if shown:
            _, paths["regression_figure"] = figures.regression_grid(
                [(m, joined[m].to_numpy(float), joined["rating"].to_numpy(float)) for m in shown], "mean rating",
                out / "metrics_vs_ratings.png")
            sections.append(("Metrics against ratings (synthetic images)", image_tag(paths["regression_figure"],
                                                                                   "regressions")))
        sections.append(("Metrics ranked by strength of relation to ratings", table(relations)))
    synthetic_real = per_role[["role", "synthetic_called_real"]].to_dict("records")
    intro = ("<p>" + html.escape(f"{answers.rater.nunique()} raters, {len(answers)} answers on "
                                 f"{answers.image_id.nunique()} images. Synthetic images called real: ")
             + html.escape(", ".join(f"{r['role']} {r['synthetic_called_real']:.1%}" for r in synthetic_real)) + ".</p>")
    atomic_write_text(render(f"Rating study: {study.name}", [("Summary", intro)] + sections), paths["html"])
    return paths
