"""Analyse a finished rating study: how well raters told real from synthetic, how much
they agreed, and how the image-quality metrics relate to their quality ratings.

Detection is analysed per rater and, across raters, with raters and images as random
effects (``survey.readers``); no test pools raters with images as units. Agreement comes
with bootstrap CIs over images (``survey.agreement``).
"""

from __future__ import annotations

import html
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from fetal_dcgan.errors import UserError
from fetal_dcgan.report.collect import load_sweep
from fetal_dcgan.report.html import image_tag, render, table
from fetal_dcgan.report.ratings import RATER_ROLES, metrics_vs_ratings, rating_figure
from fetal_dcgan.survey.agreement import (
    bootstrap_over_images,
    cohen_kappa,
    fleiss_kappa,
    icc_2_1,
    pair_indices,
    weighted_kappa,
)
from fetal_dcgan.survey.deck import read_key
from fetal_dcgan.survey.layout import StudyLayout
from fetal_dcgan.survey.mrmc import analyse as mrmc_analyse
from fetal_dcgan.survey.mrmc import write as mrmc_write
from fetal_dcgan.survey.readers import RESAMPLES, per_rater, per_role
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


def _krippendorff(rows: np.ndarray, level: str) -> float:
    """Krippendorff's alpha of a (images, raters) table of ratings; NaN where undefined."""
    import krippendorff

    if rows.shape[1] < 2 or np.isfinite(rows).sum() <= rows.shape[0]:
        return math.nan
    try:
        return float(krippendorff.alpha(reliability_data=rows.T, level_of_measurement=level))
    except ValueError:
        return math.nan


def _row(measure: str, raters: str, table: np.ndarray, statistic, resamples: int, seed: int) -> dict:
    low, high = bootstrap_over_images(table, statistic, resamples, seed)
    return {"measure": measure, "raters": raters, "value": statistic(table), "ci_low": low, "ci_high": high}


def agreement(answers: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Cohen's kappa, PABAK and the prevalence and bias indices per pair of raters, Fleiss'
    kappa of all raters on real/synthetic; Krippendorff's alpha (interval and ordinal) on the
    ratings; each with a 95 % bootstrap CI over images."""
    choice = answers.pivot(index="image_id", columns="rater", values="choice")
    rating = answers.pivot(index="image_id", columns="rater", values="rating").to_numpy(float)
    rows = []
    for a, b in combinations(choice.columns, 2):
        pair = choice[[a, b]].dropna().to_numpy()
        raters = f"{a} vs {b} ({len(pair)} images)"
        rows.append(_row("cohen_kappa", raters, pair, lambda t: cohen_kappa(t[:, 0], t[:, 1]), resamples, seed))
        for name in ("pabak", "prevalence_index", "bias_index"):
            rows.append(
                _row(name, raters, pair, lambda t, name=name: pair_indices(t[:, 0], t[:, 1])[name], resamples, seed)
            )
        scores = pd.DataFrame(rating, columns=choice.columns)[[a, b]].dropna().to_numpy()
        for weights in ("linear", "quadratic"):
            rows.append(
                _row(
                    f"weighted_kappa_{weights}",
                    raters,
                    scores,
                    lambda t, w=weights: weighted_kappa(t[:, 0], t[:, 1], w),
                    resamples,
                    seed,
                )
            )
    complete = choice.dropna().to_numpy()
    counts = (
        np.stack([(complete == k).sum(axis=1) for k in ("real", "synthetic")], 1) if len(complete) else np.empty((0, 2))
    )
    rows.append(
        _row("fleiss_kappa", f"all {choice.shape[1]} on {len(complete)} images", counts, fleiss_kappa, resamples, seed)
    )
    rows.append(_row("icc_2_1", f"all {rating.shape[1]} (quality)", rating, icc_2_1, resamples, seed))
    for level in ("interval", "ordinal"):
        rows.append(
            _row(
                f"krippendorff_alpha_{level}",
                f"all {rating.shape[1]}",
                rating,
                lambda t, level=level: _krippendorff(t, level),
                min(resamples, 300),
                seed,
            )
        )
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
        raise UserError(
            f"{source} is not a report's results.csv (no run and epoch columns): give the sweep folder "
            "or report/results.csv."
        )
    return results, [
        c
        for c in results
        if c not in ("run", "epoch")
        and pd.api.types.is_numeric_dtype(results[c])
        and not c.endswith(("_ci_low", "_ci_high", "_reference"))
    ]


READER_NOTE = (
    "<p class='note'>AUC: P(a real image rates higher than a synthetic one), with a bootstrap CI that "
    "resamples synthetic sets whole; d': z(real called real) - z(synthetic called real); sensitivity "
    "(synthetic called synthetic), specificity (real called real) and synthetic called real with Wilson "
    "CIs.</p>"
)
ROLE_NOTE = (
    "<p class='note'>Linear mixed models with raters and images as random effects (statsmodels MixedLM): "
    "rating ~ real (how much higher real images rate) and called_real ~ real (how much likelier a real "
    "image is called real); no role-level inference from fewer than 3 raters.</p>"
)


def rating_rows(answers: pd.DataFrame) -> pd.DataFrame:
    """One row per rating of a synthetic image, in the format ``report --ratings`` reads."""
    synthetic = answers[answers.truth == "synthetic"]
    return synthetic.assign(image=synthetic["file"], called_real=(synthetic["choice"] == "real").astype(int))[
        ["run", "epoch", "image", "rating", "role", "rater", "called_real"]
    ]


def role_relations(
    ratings: pd.DataFrame, results: pd.DataFrame, metrics: list[str], log_fit: bool, roles: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics against mean ratings per set, for each role asked for; the first role's sets."""
    tables, first = [], None
    for role in roles:
        table_, sets = metrics_vs_ratings(results, ratings, metrics, role, log_fit)
        tables.append(table_)
        first = sets if first is None else first
    return pd.concat(tables, ignore_index=True), first


#: The rating the MRMC analysis ranks by: the 1-5 quality score, a surrogate for a confidence-real scale.
MRMC_RATING = "rating"
MRMC_NOTE = (
    "<p class='note'>Obuchowski-Rockette analysis (Hillis degrees of freedom; RRRC: random readers and "
    "cases, FRRC: these readers, RRFC: these cases) of the empirical AUC of real against synthetic images, "
    "ranked by the 1-5 quality rating (a surrogate: the page asks no confidence that an image is real), "
    "jackknife covariances over images; a reader-averaged AUC above 0.5 means readers tell real from "
    "synthetic. All synthetic sets form one treatment.</p>"
)


def reader_table(answers: pd.DataFrame) -> pd.DataFrame:
    """The MRMC long table (reader, case, truth, treatment, rating): real images are the
    positive class, every synthetic set one treatment."""
    return pd.DataFrame(
        {
            "reader": answers["rater"],
            "case": answers["image_id"],
            "truth": (answers["truth"] == "real").astype(int),
            "treatment": "synthetic sets",
            "rating": answers[MRMC_RATING],
        }
    )


def reader_study(answers: pd.DataFrame, out: Path) -> tuple[dict, str]:
    """The MRMC files and a summary.html section, or no files and the reason."""
    try:
        result = mrmc_analyse(reader_table(answers))
    except UserError as exc:
        return {}, f"<p class='note'>No MRMC analysis: {html.escape(str(exc))}</p>"
    return mrmc_write(result, out), MRMC_NOTE + table(result["treatments"])


def analyze(
    study: str | Path,
    metrics: str | Path | None = None,
    out: str | Path | None = None,
    role: str | None = None,
    log_fit: bool = False,
) -> dict:
    """Write the analysis tables, figures and summary.html; return their paths."""
    study = Path(study)
    out = Path(out) if out else StudyLayout(study).analysis
    out.mkdir(parents=True, exist_ok=True)
    answers = load_answers(study)
    raters, roles, agree = per_rater(answers), per_role(answers), agreement(answers)
    paths = {
        "answers": out / "answers.csv",
        "per_rater": out / "per_rater.csv",
        "per_role": out / "per_role.csv",
        "agreement": out / "agreement.csv",
        "ratings": out / "ratings.csv",
        "html": out / "summary.html",
    }
    for name, frame in (
        ("answers", answers),
        ("per_rater", raters),
        ("per_role", roles),
        ("agreement", agree),
        ("ratings", rating_rows(answers)),
    ):
        atomic_write_text(frame.to_csv(index=False), paths[name])
    mrmc_paths, mrmc_section = reader_study(answers, out)
    paths.update({f"mrmc_{name}": path for name, path in mrmc_paths.items()})
    sections = [
        ("Readers as a reader study (MRMC)", mrmc_section),
        ("Per rater", READER_NOTE + table(raters)),
        ("Across raters", ROLE_NOTE + table(roles)),
        ("Agreement", "<p class='note'>95 % percentile bootstrap CIs over images.</p>" + table(agree)),
    ]
    if metrics:
        results, columns = _load_results(Path(metrics))
        roles = [role] if role else ["all", *(r for r in RATER_ROLES if r in set(answers["role"]))]
        relations, sets = role_relations(rating_rows(answers), results, columns, log_fit, roles)
        paths["relations"] = out / "metrics_vs_ratings.csv"
        atomic_write_text(relations.to_csv(index=False), paths["relations"])
        figure = rating_figure(sets, relations[relations["role"] == roles[0]], out / "metrics_vs_ratings.png")
        if figure:
            paths["regression_figure"] = figure
            sections.append(
                (
                    f"Metrics against mean ratings ({roles[0]}; one point per synthetic set)",
                    image_tag(figure, "metrics against ratings"),
                )
            )
        sections.append(
            (
                "Metrics against ratings, by rater role",
                "<p class='note'>Replicate: a synthetic set "
                "(its mean rating); n counts sets. Pearson with a Fisher-z CI, Spearman with a bootstrap "
                "CI over sets, p adjusted (BH) over the metrics of each role.</p>" + table(relations),
            )
        )
    called = "; ".join(
        f"{r.rater} ({r.role}) {r.synthetic_called_real:.1%} [{r.synthetic_called_real_ci_low:.1%}, "
        f"{r.synthetic_called_real_ci_high:.1%}], specificity {r.specificity:.1%}"
        for r in raters.itertuples()
    )
    intro = (
        "<p>"
        + html.escape(
            f"{answers.rater.nunique()} raters, {len(answers)} answers on "
            f"{answers.image_id.nunique()} images. Synthetic images called real (Wilson 95 % "
            f"CI): {called}."
        )
        + "</p>"
    )
    atomic_write_text(render(f"Rating study: {study.name}", [("Summary", intro)] + sections), paths["html"])
    return paths
