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
from fetal_dcgan.report.collect import load_sweep
from fetal_dcgan.report.html import image_tag, render, table
from fetal_dcgan.report.ratings import metrics_vs_ratings, rating_figure
from fetal_dcgan.survey.agreement import cohen_kappa, fleiss_kappa
from fetal_dcgan.survey.deck import read_key
from fetal_dcgan.survey.layout import StudyLayout
from fetal_dcgan.survey.storage import Storage
from fetal_dcgan.utils import atomic_write_text

def load_answers(study: Path) -> pd.DataFrame:
    """Every answer with its image's truth and source (run, epoch, file)."""
    ratings = StudyLayout(study).check().ratings
    answers = pd.DataFrame(Storage(ratings).answers())
    if answers.empty:
        raise UserError(f"No answers in {ratings} yet: send raters the study's link first.")
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


def _load_results(source: Path) -> tuple[pd.DataFrame, list[str]]:
    """Set-level metrics (one row per run and snapshot) from a sweep folder or a report's results.csv."""
    source = Path(source)
    if source.is_dir():
        sweep = load_sweep(source)
        return sweep.results, sweep.metric_columns
    if not source.is_file():
        raise UserError(f"--metrics {source} does not exist: give the sweep folder or its report's results.csv.")
    results = pd.read_csv(source)
    if not {"run", "epoch"} <= set(results):
        raise UserError(f"{source} is not a report's results.csv (no run and epoch columns): give the sweep folder "
                        "or report/results.csv.")
    return results, [c for c in results if c not in ("run", "epoch") and pd.api.types.is_numeric_dtype(results[c])
                     and not c.endswith(("_ci_low", "_ci_high", "_reference"))]


def rating_rows(answers: pd.DataFrame) -> pd.DataFrame:
    """One row per rating of a synthetic image, in the format ``report --ratings`` reads."""
    synthetic = answers[answers.truth == "synthetic"]
    return synthetic.assign(image=synthetic["file"], called_real=(synthetic["choice"] == "real").astype(int))[
        ["run", "epoch", "image", "rating", "role", "rater", "called_real"]]


def role_relations(ratings: pd.DataFrame, results: pd.DataFrame, metrics: list[str], log_fit: bool,
                   roles: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics against mean ratings per set, for each role asked for; the first role's sets."""
    tables, first = [], None
    for role in roles:
        table_, sets = metrics_vs_ratings(results, ratings, metrics, role, log_fit)
        tables.append(table_)
        first = sets if first is None else first
    return pd.concat(tables, ignore_index=True), first


def analyze(study: str | Path, metrics: str | Path | None = None, out: str | Path | None = None,
            role: str | None = None, log_fit: bool = False) -> dict:
    """Write the analysis tables, figures and summary.html; return their paths."""
    study = Path(study)
    out = Path(out) if out else StudyLayout(study).analysis
    out.mkdir(parents=True, exist_ok=True)
    answers = load_answers(study)
    per_rater, per_role, agree = detection(answers, "rater"), detection(answers, "role"), agreement(answers)
    paths = {"answers": out / "answers.csv", "per_rater": out / "per_rater.csv", "per_role": out / "per_role.csv",
             "agreement": out / "agreement.csv", "ratings": out / "ratings.csv", "html": out / "summary.html"}
    for name, frame in (("answers", answers), ("per_rater", per_rater), ("per_role", per_role),
                        ("agreement", agree), ("ratings", rating_rows(answers))):
        atomic_write_text(frame.to_csv(index=False), paths[name])
    sections = [("Who rated", table(per_rater)), ("By role", table(per_role)), ("Agreement", table(agree))]
    if metrics:
        results, columns = _load_results(Path(metrics))
        roles = [role] if role else ["all", *sorted(set(answers["role"]) & {"clinician", "engineer"})]
        relations, sets = role_relations(rating_rows(answers), results, columns, log_fit, roles)
        paths["relations"] = out / "metrics_vs_ratings.csv"
        atomic_write_text(relations.to_csv(index=False), paths["relations"])
        figure = rating_figure(sets, relations[relations["role"] == roles[0]], out / "metrics_vs_ratings.png")
        if figure:
            paths["regression_figure"] = figure
            sections.append((f"Metrics against mean ratings ({roles[0]}; one point per synthetic set)",
                             image_tag(figure, "metrics against ratings")))
        sections.append(("Metrics against ratings, by rater role", "<p class='note'>Replicate: a synthetic set "
                         "(its mean rating); n counts sets. Pearson with a Fisher-z CI, Spearman with a bootstrap "
                         "CI over sets, p adjusted (BH) over the metrics of each role.</p>" + table(relations)))
    synthetic_real = per_role[["role", "synthetic_called_real"]].to_dict("records")
    intro = ("<p>" + html.escape(f"{answers.rater.nunique()} raters, {len(answers)} answers on "
                                 f"{answers.image_id.nunique()} images. Synthetic images called real: ")
             + html.escape(", ".join(f"{r['role']} {r['synthetic_called_real']:.1%}" for r in synthetic_real)) + ".</p>")
    atomic_write_text(render(f"Rating study: {study.name}", [("Summary", intro)] + sections), paths["html"])
    return paths
