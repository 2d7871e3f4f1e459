"""Multi-reader multi-case ROC analysis: the Obuchowski-Rockette model with Hillis's degrees
of freedom, the radiology standard for reader studies (OR-DBM MRMC, RJafroc, MRMCaov).

The figure of merit is each reader's empirical (Wilcoxon) AUC in each treatment; its
error covariances come from the jackknife over cases. From them, per treatment, the
reader-averaged AUC with its 95 % CI and a test against 0.5 (can readers tell the
classes apart?), and between treatments the test of equal AUCs with the CIs of the
differences (n_t treatments, n_r readers), for three populations of inference:

- RRRC (random readers, random cases): F = MS(T) / [MS(TR) + n_r max(Cov2 - Cov3, 0)] on
  Hillis's denominator degrees of freedom;
- FRRC (these readers, random cases): chi-square with n_t - 1 df, error Var - Cov1 +
  (n_r - 1)(Cov2 - Cov3);
- RRFC (random readers, these cases): F = MS(T) / MS(TR) on (n_t - 1)(n_r - 1) df.

Reproduced to the published digits on the Van Dyke data (tests/unit/test_mrmc.py).

Cases that a treatment lacks: in a rating study the real images are shared by every
treatment while each treatment (a generator, a training-set size) has its own synthetic
images. Cases are the union; leaving out a case a treatment never showed leaves that
treatment's AUCs unchanged, so its jackknife terms are zero and the treatments'
covariances come from the shared cases alone (the partially paired design).
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
from fetal_dcgan.utils import atomic_write_text, read_table_with

#: The long table: one row a reading; truth 1 for the class the rating should rank higher.
COLUMNS = ("reader", "case", "truth", "treatment", "rating")
ANALYSES = ("RRRC", "FRRC", "RRFC")


@dataclass(frozen=True)
class Study:
    """AUCs (treatments x readers) and their jackknife covariance over cases."""

    treatments: list
    readers: list
    auc: np.ndarray  # (n_t, n_r)
    covariance: np.ndarray  # (n_t, n_r, n_t, n_r)
    cases: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.auc.shape


def read_table(path: str | Path) -> pd.DataFrame:
    what = (
        f"an MRMC table has one row a reading with columns {', '.join(COLUMNS)} (truth 1 for the class a "
        "higher rating means)."
    )
    return checked(read_table_with(path, COLUMNS, what))


def checked(table: pd.DataFrame) -> pd.DataFrame:
    truth = set(pd.unique(table["truth"]))
    if not truth <= {0, 1} or len(truth) < 2:
        raise UserError(f"truth must hold both 0 and 1 (found {sorted(truth)}).")
    if table.duplicated(["reader", "case", "treatment"]).any():
        raise UserError("a reader rated a case twice in one treatment: keep one reading (or average repeats first).")
    if table.groupby("case")["truth"].nunique().max() > 1:
        raise UserError("a case has two truths: every row of a case must give the same truth.")
    read = table.groupby(["treatment", "case"])["reader"].nunique()
    if read.min() < table["reader"].nunique():
        raise UserError("every reader must rate every case of a treatment (a factorial design within treatments).")
    return table


def _psi(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Wilcoxon kernel of every (positive, negative) pair: 1 above, 1/2 tied."""
    difference = positive[:, None] - negative[None, :]
    return (difference > 0) + 0.5 * (difference == 0)


def study(table: pd.DataFrame) -> Study:
    """Each reader's AUC in each treatment and their jackknife covariance over all cases."""
    treatments = sorted(pd.unique(table["treatment"]), key=str)
    readers = sorted(pd.unique(table["reader"]), key=str)
    cases = sorted(pd.unique(table["case"]), key=str)
    index = {c: k for k, c in enumerate(cases)}
    auc = np.empty((len(treatments), len(readers)))
    left_out = np.empty((len(treatments), len(readers), len(cases)))  # AUC without case k
    for i, treatment in enumerate(treatments):
        for j, reader in enumerate(readers):
            rows = table[(table["treatment"] == treatment) & (table["reader"] == reader)]
            pos, neg = rows[rows["truth"] == 1], rows[rows["truth"] == 0]
            psi = _psi(pos["rating"].to_numpy(float), neg["rating"].to_numpy(float))
            total, n1, n0 = psi.sum(), len(pos), len(neg)
            auc[i, j] = total / (n1 * n0)
            left_out[i, j] = auc[i, j]  # cases this treatment never showed
            left_out[i, j, [index[c] for c in pos["case"]]] = (total - psi.sum(1)) / ((n1 - 1) * n0)
            left_out[i, j, [index[c] for c in neg["case"]]] = (total - psi.sum(0)) / (n1 * (n0 - 1))
    k = len(cases)
    centred = left_out - left_out.mean(axis=2, keepdims=True)
    covariance = np.einsum("ijk,lmk->ijlm", centred, centred) * (k - 1) / k
    return Study(treatments, readers, auc, covariance, k)


def components(s: Study) -> dict[str, float]:
    """The OR error variance and covariances: Var (same treatment and reader), Cov1 (same
    reader), Cov2 (same treatment), Cov3 (neither), each averaged over its pairs."""
    n_t, n_r = s.shape
    c = s.covariance
    same_t = np.eye(n_t, dtype=bool)[:, None, :, None]
    same_r = np.eye(n_r, dtype=bool)[None, :, None, :]
    masks = {
        "var": same_t & same_r,
        "cov1": ~same_t & same_r,
        "cov2": same_t & ~same_r,
        "cov3": ~same_t & ~same_r,
    }
    out = {}
    for name, mask in masks.items():
        mask = np.broadcast_to(mask, c.shape)
        out[name] = float(c[mask].mean()) if mask.any() else math.nan
    return out


def mean_squares(auc: np.ndarray) -> dict[str, float]:
    n_t, n_r = auc.shape
    grand, by_t, by_r = auc.mean(), auc.mean(1), auc.mean(0)
    ms_t = n_r * ((by_t - grand) ** 2).sum() / (n_t - 1) if n_t > 1 else math.nan
    ms_r = n_t * ((by_r - grand) ** 2).sum() / (n_r - 1)
    residual = auc - by_t[:, None] - by_r[None, :] + grand
    ms_tr = (residual**2).sum() / ((n_t - 1) * (n_r - 1)) if n_t > 1 else math.nan
    return {"T": ms_t, "R": ms_r, "TR": ms_tr}


def _interval(estimate: float, se: float, df: float, alpha: float, null: float = 0.0) -> dict:
    """CI and two-sided p of a t (df finite) or z (df infinite) statistic; no test without
    a standard error (readers that agree perfectly, or AUCs of 0 or 1 throughout)."""
    dist = stats.norm if math.isinf(df) else stats.t(df)
    q = dist.ppf(1 - alpha / 2)
    statistic = (estimate - null) / se if se > 0 else math.nan
    return {
        "estimate": estimate,
        "se": se,
        "df": df,
        "ci_low": estimate - q * se,
        "ci_high": estimate + q * se,
        "statistic": statistic,
        "p_value": float(2 * dist.sf(abs(statistic))),
    }


def treatment_rows(s: Study, alpha: float) -> pd.DataFrame:
    """Each treatment's reader-averaged AUC with its CI and test against 0.5, per analysis."""
    rows = []
    n_r = s.shape[1]
    for i, treatment in enumerate(s.treatments):
        auc = s.auc[i]
        one = Study([treatment], s.readers, auc[None], s.covariance[i : i + 1, :, i : i + 1, :], s.cases)
        parts = components(one)
        ms_r = float(((auc - auc.mean()) ** 2).sum() / (n_r - 1))
        cov2 = max(parts["cov2"], 0.0)
        se_rrrc = math.sqrt(ms_r / n_r + cov2)
        df_rrrc = (ms_r + n_r * cov2) ** 2 / (ms_r**2 / (n_r - 1)) if ms_r > 0 else math.inf
        variants = {
            "RRRC": (se_rrrc, df_rrrc),
            "FRRC": (math.sqrt((parts["var"] + (n_r - 1) * parts["cov2"]) / n_r), math.inf),
            "RRFC": (math.sqrt(ms_r / n_r), n_r - 1),
        }
        for analysis, (se, df) in variants.items():
            rows.append(
                {
                    "treatment": treatment,
                    "analysis": analysis,
                    **_interval(float(auc.mean()), se, df, alpha, null=0.5),
                    "var": parts["var"],
                    "cov2": parts["cov2"],
                    "ms_r": ms_r,
                }
            )
    return pd.DataFrame(rows)


def treatment_tests(s: Study, alpha: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test of equal reader-averaged AUCs per analysis, and every pair's difference."""
    n_t, n_r = s.shape
    if n_t < 2:
        return pd.DataFrame(), pd.DataFrame()
    ms, parts = mean_squares(s.auc), components(s)
    rrrc_error = ms["TR"] + n_r * max(parts["cov2"] - parts["cov3"], 0.0)
    frrc_error = parts["var"] - parts["cov1"] + (n_r - 1) * (parts["cov2"] - parts["cov3"])
    ddf = rrrc_error**2 / (ms["TR"] ** 2 / ((n_t - 1) * (n_r - 1))) if ms["TR"] > 0 else math.inf
    chi2 = (n_t - 1) * ms["T"] / frrc_error
    tests = pd.DataFrame(
        [
            {"analysis": "RRRC", "test": "F", "statistic": ms["T"] / rrrc_error, "ndf": n_t - 1, "ddf": ddf},
            {"analysis": "FRRC", "test": "chi-square", "statistic": chi2, "ndf": n_t - 1, "ddf": math.inf},
            {
                "analysis": "RRFC",
                "test": "F",
                "statistic": ms["T"] / ms["TR"],
                "ndf": n_t - 1,
                "ddf": (n_t - 1) * (n_r - 1),
            },
        ]
    )
    tests["error_ms"] = [rrrc_error, frrc_error, ms["TR"]]
    tests["p_value"] = [
        float(stats.f.sf(tests.statistic[0], n_t - 1, ddf)),
        float(stats.chi2.sf(chi2, n_t - 1)),
        float(stats.f.sf(tests.statistic[2], n_t - 1, (n_t - 1) * (n_r - 1))),
    ]
    errors = {"RRRC": (rrrc_error, ddf), "FRRC": (frrc_error, math.inf), "RRFC": (ms["TR"], (n_t - 1) * (n_r - 1))}
    means = s.auc.mean(1)
    pairs = [
        {
            "analysis": analysis,
            "a": s.treatments[a],
            "b": s.treatments[b],
            **_interval(means[a] - means[b], math.sqrt(2 * error / n_r), df, alpha),
        }
        for analysis, (error, df) in errors.items()
        for a, b in combinations(range(n_t), 2)
    ]
    return tests, pd.DataFrame(pairs)


def reader_rows(s: Study) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"treatment": t, "reader": r, "auc": float(s.auc[i, j])}
            for i, t in enumerate(s.treatments)
            for j, r in enumerate(s.readers)
        ]
    )


def analyse(table: pd.DataFrame, alpha: float = 0.05) -> dict[str, pd.DataFrame | dict]:
    """Every part of the analysis by name: ``readers``, ``treatments``, ``tests``, ``differences``
    and ``components`` (the OR variance components and mean squares)."""
    s = study(checked(table))
    tests, differences = treatment_tests(s, alpha)
    parts = {**components(s), **{f"ms_{k}": v for k, v in mean_squares(s.auc).items()}}
    parts.update(readers=len(s.readers), treatments=len(s.treatments), cases=s.cases, alpha=alpha)
    return {
        "readers": reader_rows(s),
        "treatments": treatment_rows(s, alpha),
        "tests": tests,
        "differences": differences,
        "components": parts,
    }


def write(result: dict, out: Path) -> dict[str, Path]:
    """``mrmc_<part>.csv`` for each table and ``mrmc.json`` with everything."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, part in result.items():
        if isinstance(part, pd.DataFrame):
            paths[name] = out / f"mrmc_{name}.csv"
            atomic_write_text(part.to_csv(index=False), paths[name])
    payload = {k: v.to_dict(orient="records") if isinstance(v, pd.DataFrame) else v for k, v in result.items()}
    paths["json"] = out / "mrmc.json"
    atomic_write_text(json.dumps(payload, indent=1, default=str), paths["json"])
    return paths
