"""How well each rater tells real from synthetic, and what holds across raters.

Per rater: the AUC of the 1-5 rating for real against synthetic images (a real image
should rate higher), with a percentile bootstrap CI that resamples synthetic *sets* (the
images of one set share a generator, so they are not independent) and real images, each
within its class; d' of the real/synthetic call (hit: a real image called real; false
alarm: a synthetic one called real; log-linear correction for rates of 0 or 1, Hautus
1995); sensitivity, specificity and the share of synthetic images called real, each with
a Wilson CI over images, and the last also with the clustered bootstrap CI over sets.

Across raters, images and raters are both random: linear mixed models (statsmodels
``MixedLM``, REML, crossed variance components for rater, rater x truth and image) estimate
how much higher real images rate, and how much likelier they are called real (a linear
probability model of the 0/1 call: a difference of proportions). In null simulations (3
raters, 70 images) both keep their level (rejection rates 0.043 and 0.060 at 0.05), while
statsmodels' logistic ``BinomialBayesMixedGLM`` rejected 0.26 (variational Bayes) and 0.095
(Laplace, not converging), so it is not used. With rater x truth variance in the data they
are still liberal (0.12 with 4 raters, docs/study.md): the MRMC analysis (``survey.mrmc``)
carries the inference, these models are secondary. A role with fewer than ``MIN_RATERS`` raters gets
per-rater results only: no role-level inference is made from two raters.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

MIN_RATERS = 3
RESAMPLES = 1000
CONFIDENCE = 0.95


def wilson(successes: int, total: int) -> tuple[float, float]:
    """Wilson score interval (statsmodels ``proportion_confint``)."""
    from statsmodels.stats.proportion import proportion_confint

    if total == 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, total, alpha=1 - CONFIDENCE, method="wilson")
    return float(low), float(high)


def auc(real: np.ndarray, synthetic: np.ndarray) -> float:
    """P(a real image rates higher than a synthetic one) + half the ties (Mann-Whitney U / n1 n2)."""
    if not len(real) or not len(synthetic):
        return math.nan
    wins = np.greater.outer(real, synthetic).sum() + 0.5 * np.equal.outer(real, synthetic).sum()
    return float(wins / (len(real) * len(synthetic)))


def d_prime(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> float:
    """z(hit rate) - z(false-alarm rate), each rate (k + 0.5) / (n + 1)."""
    if not n_signal or not n_noise:
        return math.nan
    return float(stats.norm.ppf((hits + 0.5) / (n_signal + 1)) - stats.norm.ppf((false_alarms + 0.5) / (n_noise + 1)))


def _clusters(answers: pd.DataFrame) -> pd.Series:
    """The bootstrap unit of each answer: its synthetic set (run, epoch), or the real image itself."""
    synthetic = answers["truth"] == "synthetic"
    sets = "set " + answers["run"].astype(str) + "/" + answers["epoch"].astype(str)
    return sets.where(synthetic, "image " + answers["image_id"].astype(str))


#: The statistics the clustered bootstrap gives intervals for.
CLUSTERED = ("auc", "d_prime", "synthetic_called_real")


def _statistics(rating: np.ndarray, called_real: np.ndarray, real: np.ndarray) -> dict:
    """AUC, d' and the share of synthetic images called real of one rater's answers."""
    hits, false_alarms = int(called_real[real].sum()), int(called_real[~real].sum())
    return {
        "auc": auc(rating[real], rating[~real]),
        "d_prime": d_prime(hits, int(real.sum()), false_alarms, int((~real).sum())),
        "synthetic_called_real": false_alarms / (~real).sum() if (~real).any() else math.nan,
    }


def cluster_bootstrap(group: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, tuple]:
    """Percentile CIs of the rater's ``CLUSTERED`` statistics, resampling clusters within
    each class: each synthetic set whole, each real image alone."""
    rng = np.random.default_rng(seed)
    rating, called = group["rating"].to_numpy(float), (group["choice"] == "real").to_numpy()
    real = (group["truth"] == "real").to_numpy()
    clusters = _clusters(group).to_numpy()
    units = [[np.flatnonzero(clusters == c) for c in np.unique(clusters[real == truth])] for truth in (True, False)]
    draws = []
    for _ in range(resamples):
        index = np.concatenate(
            [members[i] for members in units if members for i in rng.integers(0, len(members), len(members))]
        )
        draws.append(_statistics(rating[index], called[index], real[index]))
    table = pd.DataFrame(draws)
    tail = 100 * (1 - CONFIDENCE) / 2
    return {
        k: tuple(np.nanpercentile(table[k], [tail, 100 - tail])) if table[k].notna().any() else (math.nan,) * 2
        for k in CLUSTERED
    }


def per_rater(answers: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One row per rater: AUC and d' with clustered bootstrap CIs; sensitivity (synthetic
    called synthetic), specificity (real called real) and synthetic called real, with Wilson CIs."""
    rows = []
    for rater, group in answers.groupby("rater", sort=True):
        real, synthetic = group[group.truth == "real"], group[group.truth == "synthetic"]
        point = _statistics(
            group["rating"].to_numpy(float),
            (group["choice"] == "real").to_numpy(),
            (group["truth"] == "real").to_numpy(),
        )
        ci = cluster_bootstrap(group, resamples, seed)
        row = {
            "rater": rater,
            "role": group["role"].iloc[0],
            "answers": len(group),
            "real": len(real),
            "synthetic": len(synthetic),
            "synthetic_sets": synthetic.groupby(["run", "epoch"]).ngroups,
            "accuracy": float((group.choice == group.truth).mean()),
        }
        for name in ("auc", "d_prime"):
            row.update({name: point[name], f"{name}_ci_low": ci[name][0], f"{name}_ci_high": ci[name][1]})
        for name, part, answer in (
            ("sensitivity", synthetic, "synthetic"),
            ("specificity", real, "real"),
            ("synthetic_called_real", synthetic, "real"),
        ):
            k = int((part.choice == answer).sum())
            low, high = wilson(k, len(part))
            row.update({name: k / len(part) if len(part) else math.nan, f"{name}_ci_low": low, f"{name}_ci_high": high})
        low, high = ci["synthetic_called_real"]  # the images of a set share a generator: not independent
        row.update(synthetic_called_real_set_ci_low=low, synthetic_called_real_set_ci_high=high)
        row.update(quality_real=real.rating.mean(), quality_synthetic=synthetic.rating.mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _model_data(answers: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rating": answers["rating"].astype(float),
            "called_real": (answers["choice"] == "real").astype(float),
            "real": (answers["truth"] == "real").astype(float),
            "rater": answers["rater"].astype(str),
            "image": answers["image_id"].astype(str),
            "one": 1,
        }
    )


def mixed_effect(answers: pd.DataFrame, outcome: str) -> dict[str, float]:
    """``outcome ~ real + (1 | rater) + (0 + real | rater) + (1 | image)`` by REML
    (statsmodels MixedLM, crossed variance components): the fixed effect of a real image,
    its Wald CI and p. The rater x truth component lets each rater separate real from
    synthetic by their own amount, so the effect's interval generalises over raters."""
    import statsmodels.formula.api as smf

    data = _model_data(answers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optimiser and boundary chatter; the estimate is kept either way
        fit = smf.mixedlm(
            f"{outcome} ~ real",
            data,
            groups="one",
            re_formula="0",
            vc_formula={"rater": "0 + C(rater)", "rater_truth": "0 + C(rater):real", "image": "0 + C(image)"},
        ).fit(reml=True)
    low, high = fit.conf_int(alpha=1 - CONFIDENCE).loc["real"]
    return {
        "estimate": float(fit.params["real"]),
        "ci_low": float(low),
        "ci_high": float(high),
        "p": float(fit.pvalues["real"]),
    }


def _prefixed(prefix: str, values: dict) -> dict:
    return {f"{prefix}{'' if k == 'estimate' else '_' + k}": v for k, v in values.items()}


def per_role(answers: pd.DataFrame) -> pd.DataFrame:
    """Per role and for all raters: counts, and the two mixed models when there are enough raters."""
    groups = [("all", answers)] + [(role, g) for role, g in answers.groupby("role", sort=True)]
    rows = []
    for role, group in groups:
        raters = group["rater"].nunique()
        row = {"role": role, "raters": raters, "answers": len(group)}
        if raters < MIN_RATERS:
            row["note"] = (
                f"{raters} rater(s): per-rater results only; no role-level inference from fewer than "
                f"{MIN_RATERS} raters"
            )
        else:
            row.update(
                {
                    **_prefixed("rating_difference", mixed_effect(group, "rating")),
                    **_prefixed("called_real_difference", mixed_effect(group, "called_real")),
                    "note": "linear mixed models with raters and images as random effects",
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)
