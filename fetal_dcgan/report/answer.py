"""The report's answer in words: the primary endpoints' verdicts first, their sensitivity
to the margins, then the secondary rows per factor; and ``stats.md``, which leads with it."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from fetal_dcgan.report.html import table
from fetal_dcgan.report.stats import DESIGNS, OUTSIDE, PRIMARY, REPLICATE_SOURCES, SENSITIVITY, Question
from fetal_dcgan.report.verdicts import ALPHA, DIFFERS, EQUIVALENT, UNDETERMINED, WITHIN_MARGIN

FAMILIES = (
    f"`family`: `{PRIMARY}` is the declared question (its factor, endpoints and snapshot: `study.*`), the one "
    "family whose Benjamini-Hochberg adjustment (`p_adjusted`; the equivalence tests likewise, "
    "`equivalence_p_adjusted`) the study's claims rest on; every other run-level row is secondary, "
    "BH-adjusted within its factor's family (`secondary: <factor>`); "
    f"`{OUTSIDE}` rows have no adjusted p; post-hoc pairwise tests run only after a row that "
    "differs, for 3+ levels, Holm-adjusted within that test."
)
VERDICTS = (
    f"Verdicts: `{DIFFERS}` (adjusted omnibus p < {ALPHA}), `{WITHIN_MARGIN}` (significant, and equivalent "
    f"within the margin too: real but too small to matter), `{EQUIVALENT}` (adjusted TOST p < {ALPHA} within "
    f"+-`margin`, from the fitted model), `{UNDETERMINED}` (neither: `power_at_margin` is the design's power "
    "against a margin-sized difference, `mde` the effect it detects with 80 % power, as Cohen's f and in the "
    f"metric's units); `{UNDETERMINED} (at floor)`, `(at ceiling)` or `(saturated)` where the level means sit "
    "at the metric's bound or the runs vary less than a tenth of real sets do, whatever the TOST says. "
    "`margin_source`: `gap` (a share of the pilot's distance to real data), `explicit` (declared) or `real` "
    "(the real-vs-real spread). A non-significant test never means no difference."
)


def _p(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3g}"


def endpoint_line(row) -> str:
    """One primary endpoint's verdict, effect size, adjusted p, margin and power."""
    if not isinstance(row.verdict, str) or not row.verdict:
        return f"{UNDETERMINED}: {row.note}"
    parts = []
    if math.isfinite(row.effect_size):
        parts.append(f"{row.effect_size_name} {row.effect_size:.2f}, adjusted p {_p(row.p_adjusted)}")
    if math.isfinite(row.margin):
        parts.append(
            f"margin {row.margin:.4g} ({row.margin_source}), equivalence adjusted p "
            f"{_p(row.equivalence_p_adjusted)}, power at the margin {_p(row.power_at_margin)}"
        )
    else:
        parts.append("no margin: no equivalence test")
    if not math.isfinite(row.p_value):
        parts.append(row.note)
    return f"{row.verdict} ({'; '.join(parts)})"


def primary_answer(tests: pd.DataFrame, question: Question) -> list[tuple[str, str]]:
    """(endpoint, its verdict in words), in the declared order."""
    rows = tests[tests["family"] == PRIMARY]
    if rows.empty:
        return []
    order = {m: i for i, m in enumerate(question.endpoints)}
    rows = rows.sort_values("metric", key=lambda c: c.map(order))
    return [(row.metric, endpoint_line(row)) for row in rows.itertuples()]


def primary_heading(question: Question) -> str:
    given = f"; {', '.join(question.given)} given for this report, not declared by the runs" if question.given else ""
    return (
        f"Primary endpoints: across {question.factor.removeprefix('override.')} at epoch {question.epoch} "
        f"(one family, {len(question.endpoints)} endpoints{given})"
    )


def primary_missing(question: Question, factors: list[str]) -> str:
    return (
        f"The declared primary factor `{question.factor}` does not vary in this sweep (varied: "
        f"{', '.join(factors) or 'nothing'}): declare the study's question (study.factor, or report --factor); "
        "every row below is secondary."
    )


def _metric_verdicts(rows: pd.DataFrame) -> pd.Series:
    """One verdict word per metric: differs if any of its rows does, equivalent if all are,
    else undetermined."""

    def combine(verdicts: pd.Series) -> str:
        words = verdicts.astype(str)
        if words.str.startswith(DIFFERS).any():
            return DIFFERS
        return EQUIVALENT if (words == EQUIVALENT).all() else UNDETERMINED

    return rows.groupby("metric", sort=False)["verdict"].agg(combine)


def _strongest(rows: pd.DataFrame, metric: str) -> str:
    r = rows[rows["metric"] == metric].sort_values("p_adjusted").iloc[0]
    where = "" if pd.isna(r.epoch) or r.epoch == "" else f", epoch {int(r.epoch)}"
    return f"{metric} ({r.design}{where}: {r.effect_size_name} {r.effect_size:.2f}, adjusted p {r.p_adjusted:.3g})"


def _undetermined(rows: pd.DataFrame, metrics: list[str]) -> str:
    chosen = rows[rows["metric"].isin(metrics)]
    power, mde = chosen["power_at_margin"].dropna(), chosen["mde"].dropna()
    if len(power):
        power_text = f"power against a margin-sized difference {power.min():.2f}-{power.max():.2f}"
    elif chosen["mde"].isna().all() and chosen["test"].str.startswith("Friedman").all():
        power_text = "no equivalence test: a rank test"
    else:
        power_text = "no equivalence test: no margin"
    mde_text = f"; detectable with 80 % power: Cohen's f >= {mde.min():.2f}" if len(mde) else ""
    return f"{len(metrics)} undetermined ({', '.join(metrics)}; {power_text}{mde_text})"


def secondary_answers(tests: pd.DataFrame) -> list[tuple[str, str]]:
    """Per factor, one sentence over its secondary rows: which metrics differ between runs
    (effect size, adjusted p), which are equivalent, which the design cannot settle."""
    out = []
    for factor, rows in tests.groupby("factor", sort=False):
        secondary = rows[rows["family"].astype(str).str.startswith("secondary")]
        if secondary.empty:
            continue
        tested = secondary[secondary["p_value"].notna()]
        paper = rows[(rows["family"] == OUTSIDE) & (rows["p_value"] < ALPHA)]
        aside = (
            f" The paper's analysis (snapshots as replicates, unadjusted) would call {paper['metric'].nunique()} "
            "metrics different."
            if len(paper)
            else ""
        )
        confounded = " Confounded: see note." if rows["note"].str.contains("confounded").any() else ""
        if tested.empty:
            reasons = secondary["note"].replace("", np.nan).dropna()
            reason = reasons.mode().iloc[0] if len(reasons) else "no run-level test could run"
            out.append((factor, f"{UNDETERMINED}: the design cannot say ({reason}).{aside}{confounded}"))
            continue
        verdicts = _metric_verdicts(tested)
        parts = []
        differ = [m for m, v in verdicts.items() if v == DIFFERS]
        if differ:
            parts.append(f"{len(differ)} differ ({'; '.join(_strongest(tested, m) for m in differ)})")
        same = [m for m, v in verdicts.items() if v == EQUIVALENT]
        if same:
            parts.append(f"{len(same)} equivalent within their margins ({', '.join(same)})")
        open_ = [m for m, v in verdicts.items() if v == UNDETERMINED]
        if open_:
            parts.append(_undetermined(tested, open_))
        out.append((factor, f"across {factor}, between runs: " + "; ".join(parts) + f".{aside}{confounded}"))
    return out


def sensitivity_caption() -> str:
    multiples = ", ".join(f"{m:g}x" for m in SENSITIVITY)
    return (
        f"Each primary endpoint's verdict with its margin at {multiples} the declared value (equivalence "
        "p-values BH-adjusted over the primary family at each multiple): a verdict that changes between "
        "columns rests on the choice of margin."
    )


def answer_markdown(tests: pd.DataFrame, sensitivity: pd.DataFrame, question: Question, factors: list) -> str:
    """The answer of stats.md: primary endpoints, their sensitivity, then the secondary rows."""
    primary = primary_answer(tests, question)
    parts = [f"## {primary_heading(question)}\n"]
    parts.append(
        "\n".join(f"- **{m}**: {text}" for m, text in primary) if primary else primary_missing(question, factors)
    )
    if not sensitivity.empty:
        parts.append(f"\n## Sensitivity to the margins\n\n{sensitivity_caption()}\n\n" + markdown_table(sensitivity))
    secondary = secondary_answers(tests)
    parts.append("\n## Secondary (each factor its own family)\n")
    parts.append(
        "\n".join(f"- **{f}**: {text}" for f, text in secondary)
        if secondary
        else "Nothing varies across the sweep's runs except replicates: there is no factor to test."
    )
    return "\n".join(parts) + "\n"


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)\n"
    cells = frame.astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, cells.columns)) + " |", "|" + "---|" * len(cells.columns)]
    lines += [
        "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in cells.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def stats_markdown(
    tests: pd.DataFrame, pairs: pd.DataFrame, sensitivity: pd.DataFrame, question: Question, factors: list
) -> str:
    """stats.md: the answer first, then one table per design, each saying what its replicate is."""
    parts = [
        "# Does each metric differ across the sweep's factors?\n",
        answer_markdown(tests, sensitivity, question, factors),
        VERDICTS + "\n",
        FAMILIES + "\n",
        f"Replicates: {REPLICATE_SOURCES}.\n",
    ]
    for design, sentence in DESIGNS.items():
        rows = tests[tests["design"] == design]
        if not rows.empty:
            parts.append(f"## {design}\n\nReplicate: {sentence}.\n\n" + markdown_table(rows))
    if not pairs.empty:
        parts.append(
            "## Pairwise comparisons\n\nRun-level designs: Welch's t and Hedges' g between runs; "
            "descriptive-images: Cliff's delta with a two-stage bootstrap CI (runs, then images), "
            "no p-value.\n\n" + markdown_table(pairs)
        )
    return "\n".join(parts)


def answer_sections(
    tests: pd.DataFrame, sensitivity: pd.DataFrame, question: Question, factors: list
) -> list[tuple[str, str]]:
    """report.html's first sections: the primary answer, its sensitivity, the secondary answers."""

    def items(found: list[tuple[str, str]]) -> str:
        return "<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in found) + "</ul>"

    primary = primary_answer(tests, question)
    note = (
        "<p class='note'>Run-level tests (the training run is the replicate). "
        + html.escape(FAMILIES.replace("`", ""))
        + " "
        + html.escape(VERDICTS.replace("`", ""))
        + " Replicates: "
        + html.escape(REPLICATE_SOURCES)
        + ".</p>"
    )
    secondary = secondary_answers(tests)
    sections = [
        (
            f"Answer. {primary_heading(question)}",
            (items(primary) if primary else f"<p>{html.escape(primary_missing(question, factors))}</p>") + note,
        )
    ]
    if not sensitivity.empty:
        sections.append(
            ("Sensitivity to the margins", f"<p class='note'>{sensitivity_caption()}</p>" + table(sensitivity))
        )
    sections.append(("Secondary answers (each factor its own family)", items(secondary) if secondary else "(none)"))
    return sections
