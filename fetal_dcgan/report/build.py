"""Build a sweep's report: CSV tables, statistics, figures and report.html."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from fetal_dcgan.metrics.lbp import REFERENCE_VECTOR, SYNTHETIC_VECTOR
from fetal_dcgan.report import figures
from fetal_dcgan.report.collect import Sweep, load_sweep, natural_order
from fetal_dcgan.report.html import image_tag, render, table
from fetal_dcgan.report.layout import ReportLayout
from fetal_dcgan.report.margins import MARGINS_FILE, read_margins
from fetal_dcgan.report.ratings import metrics_vs_ratings, per_set, rating_figure, read_ratings
from fetal_dcgan.report.stats import DESIGNS, OUTSIDE, PRIMARY, REPLICATE_SOURCES, cell_summary, sweep_statistics
from fetal_dcgan.report.verdicts import ALPHA, DIFFERS, EQUIVALENT, UNDETERMINED
from fetal_dcgan.utils import atomic_write_text

log = logging.getLogger(__name__)


def margins_of(sweep: Sweep, path: str | Path | None = None) -> dict:
    """The equivalence margins given, else those measured for the sweep (``SWEEP/margins.json``), else none."""
    if path is not None:
        return read_margins(Path(path))
    measured = sweep.root / MARGINS_FILE
    return read_margins(measured) if measured.is_file() else {}


def statistics(sweep: Sweep, resamples: int = 200, margins: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every design over every varied factor (see ``report.stats``), with verdicts."""
    factors = sweep.varied_axes
    per_image = sweep.per_image
    if not per_image.empty:
        per_image = per_image.merge(
            sweep.results[["run", "epoch"] + [f for f in factors if f not in per_image]],
            on=["run", "epoch"],
            how="left",
        )
    return sweep_statistics(
        sweep.results,
        per_image,
        sweep.metric_columns,
        sweep.per_image_metrics,
        factors,
        resamples,
        margins=margins_of(sweep) if margins is None else margins,
    )


def _md(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)\n"
    cells = frame.astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, cells.columns)) + " |", "|" + "---|" * len(cells.columns)]
    lines += [
        "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        for row in cells.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


FAMILIES = (
    f"`family`: `{PRIMARY}` is the study's one multiplicity family, every run-level omnibus test "
    "(Benjamini-Hochberg, `p_adjusted`; the equivalence tests likewise, `equivalence_p_adjusted`); "
    f"`{OUTSIDE}` rows have no adjusted p; post-hoc pairwise tests run only after a primary row that "
    "differs, for 3+ levels, Holm-adjusted within that test."
)


def stats_markdown(tests: pd.DataFrame, pairs: pd.DataFrame) -> str:
    """stats.md: the answer first, then one table per design, each saying what its replicate is."""
    parts = [
        "# Does each metric differ across the sweep's factors?\n",
        answer_text(tests) + "\n",
        f"Verdicts: `{DIFFERS}` (adjusted omnibus p < {ALPHA}), `{EQUIVALENT}` (adjusted TOST p < {ALPHA} within "
        f"+-`margin`), `{UNDETERMINED}` (neither: `power_at_margin` is the design's power against a "
        "margin-sized difference, `mde` the effect it detects with 80 % power, as Cohen's f and in the "
        "metric's units). A non-significant test never means no difference.\n",
        FAMILIES + "\n",
        f"Replicates: {REPLICATE_SOURCES}.\n",
    ]
    for design, sentence in DESIGNS.items():
        rows = tests[tests["design"] == design]
        if not rows.empty:
            parts.append(f"## {design}\n\nReplicate: {sentence}.\n\n" + _md(rows))
    if not pairs.empty:
        parts.append(
            "## Pairwise comparisons\n\nRun-level designs: Welch's t and Hedges' g between runs; "
            "descriptive-images: Cliff's delta with a two-stage bootstrap CI (runs, then images), "
            "no p-value.\n\n" + _md(pairs)
        )
    return "\n".join(parts)


def _metric_verdicts(primary: pd.DataFrame) -> pd.Series:
    """One verdict per metric: differs if any of its rows does, equivalent if all are, else undetermined."""

    def combine(verdicts: pd.Series) -> str:
        if (verdicts == DIFFERS).any():
            return DIFFERS
        return EQUIVALENT if (verdicts == EQUIVALENT).all() else UNDETERMINED

    return primary.groupby("metric", sort=False)["verdict"].agg(combine)


def _strongest(rows: pd.DataFrame, metric: str) -> str:
    r = rows[rows["metric"] == metric].sort_values("p_adjusted").iloc[0]
    where = "" if pd.isna(r.epoch) or r.epoch == "" else f", epoch {int(r.epoch)}"
    return f"{metric} ({r.design}{where}: {r.effect_size_name} {r.effect_size:.2f}, adjusted p {r.p_adjusted:.3g})"


def _undetermined(rows: pd.DataFrame, metrics: list[str]) -> str:
    chosen = rows[rows["metric"].isin(metrics)]
    power, mde = chosen["power_at_margin"].dropna(), chosen["mde"].dropna()
    power_text = (
        f"power against a margin-sized difference {power.min():.2f}-{power.max():.2f}"
        if len(power)
        else "no equivalence test: "
        + (
            "a rank test"
            if chosen["mde"].isna().all() and chosen["test"].str.startswith("Friedman").all()
            else "no margin"
        )
    )
    mde_text = f"; detectable with 80 % power: Cohen's f >= {mde.min():.2f}" if len(mde) else ""
    return f"{len(metrics)} undetermined ({', '.join(metrics)}; {power_text}{mde_text})"


def answers(tests: pd.DataFrame) -> list[tuple[str, str]]:
    """Per factor, one sentence of verdicts: which metrics differ between runs (effect size,
    adjusted p), which are equivalent within their margins, which the design cannot settle."""
    out = []
    for factor, rows in tests.groupby("factor", sort=False):
        primary = rows[rows["family"] == PRIMARY]
        if primary.empty:
            continue
        tested = primary[primary["p_value"].notna()]
        paper = rows[(rows["family"] == OUTSIDE) & (rows["p_value"] < ALPHA)]
        aside = (
            f" The paper's analysis (snapshots as replicates, unadjusted) would call {paper['metric'].nunique()} "
            "metrics different."
            if len(paper)
            else ""
        )
        confounded = " Confounded: see note." if rows["note"].str.contains("confounded").any() else ""
        if tested.empty:
            reasons = primary["note"].replace("", np.nan).dropna()
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


def answer_text(tests: pd.DataFrame) -> str:
    found = answers(tests)
    return (
        "\n".join(f"- **{factor}**: {text}" for factor, text in found)
        if found
        else "Nothing varies across the sweep's runs except replicates: there is no factor to test."
    )


def _loss_curves(sweep: Sweep) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = {}
    for run in sweep.runs.itertuples():
        events = sweep.tensorboard(run.run)
        if events is None or not events.is_dir():
            continue
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
        tags = acc.Tags()["scalars"]
        epoch_of = {e.step: e.value + 1 for e in acc.Scalars("epoch")} if "epoch" in tags else {}
        curves[run.run] = {
            tag: (
                np.array([epoch_of.get(e.step, e.step) for e in acc.Scalars(tag)]),
                np.array([e.value for e in acc.Scalars(tag)]),
            )
            for tag in ("train/loss_d", "train/loss_g")
            if tag in tags
        }
    return curves


def _set_label(row, separator: str) -> str:
    """A set by its run, training-set size (where known) and epoch."""
    n = getattr(row, "n", None)
    return separator.join([f"run {row.run}", *([f"n={n}"] if n is not None and n == n else []), f"epoch {row.epoch}"])


def _lbp_sets(sweep: Sweep) -> list:
    sets = []
    for row in sweep.results.itertuples():
        path = sweep.vectors(row.run, int(row.epoch))
        if path.is_file():
            with np.load(path) as data:
                if REFERENCE_VECTOR in data:
                    sets.append(
                        (
                            _set_label(row, ", "),
                            data[REFERENCE_VECTOR],
                            data[SYNTHETIC_VECTOR],
                            int(row.image_size) ** 2,
                        )
                    )  # LBP: one code a pixel
    return sets


def _cell_samples(sweep: Sweep) -> list[tuple[str, list[Path]]]:
    """(label, sample files) of the first run of each cell of the varied factors, at its last epoch."""
    cells = [f for f in sweep.varied_axes if f != "epoch"]
    if not cells:
        return []
    last = sweep.results.sort_values("epoch").groupby("run").tail(1)
    items = []
    for values, group in last.groupby(cells, sort=True):
        row = group.sort_values("run", key=natural_order).iloc[0]
        label = ", ".join(f"{f.removeprefix('override.')}={v}" for f, v in zip(cells, np.atleast_1d(values)))
        files = sweep.samples(row.run, int(row.epoch))
        items.append((f"{label} (run {row.run}, epoch {int(row.epoch)})", files))
    return items


def build_report(
    source: str | Path | Sweep,
    out: str | Path | None = None,
    ratings: str | Path | None = None,
    role: str = "all",
    log_fit: bool = False,
    resamples: int = 200,
    margins: str | Path | None = None,
) -> dict:
    """Write every table, figure and report.html for the sweep (a folder, or a manifest's
    scored sets, ``report.sets``); return their paths."""
    sweep = source if isinstance(source, Sweep) else load_sweep(source)
    margin_table = margins_of(sweep, margins)
    rated = read_ratings(Path(ratings)) if ratings else None
    if rated is not None:
        per_set(rated, role)  # a bad file or role fails before any work
    layout = ReportLayout(out or sweep.default_report)
    layout.figures.mkdir(parents=True, exist_ok=True)
    tests, pairs, cells = _write_tables(sweep, layout, resamples, margin_table)
    figs = _draw_figures(sweep, layout)
    paths = layout.files()
    relations = pd.DataFrame()
    if rated is not None:
        relations, sets = metrics_vs_ratings(sweep.results, rated, sweep.metric_columns, role, log_fit)
        atomic_write_text(relations.to_csv(index=False), layout.ratings)
        paths["ratings"] = layout.ratings
        figs["metrics against ratings"] = rating_figure(sets, relations, layout.figure("metrics_vs_ratings"))
    page = _page(sweep, tests, pairs, cells, figs, _draw_grids(sweep, layout), relations)
    atomic_write_text(page, layout.file("html"))
    paths.update({f"figure {k}": v for k, v in figs.items() if v})
    log.info("Report of %d runs written to %s", len(sweep.runs), layout.root)
    return paths


def _write_tables(
    sweep: Sweep, layout: ReportLayout, resamples: int, margin_table: dict
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """results, per_image, cells, stats, pairwise and stats.md; returns (tests, pairs, cells)."""
    atomic_write_text(sweep.results.to_csv(index=False), layout.file("results"))
    atomic_write_text(sweep.per_image.to_csv(index=False), layout.file("per_image"))
    cells = cell_summary(sweep.results, sweep.varied_axes, sweep.metric_columns)
    atomic_write_text(cells.to_csv(index=False), layout.file("cells"))
    tests, pairs = statistics(sweep, resamples, margin_table)
    atomic_write_text(tests.to_csv(index=False), layout.file("stats"))
    atomic_write_text(pairs.to_csv(index=False), layout.file("pairwise"))
    atomic_write_text(stats_markdown(tests, pairs), layout.file("stats_md"))
    return tests, pairs, cells


def _lines(sweep: Sweep, x: str) -> list[str]:
    """The factors that split a figure against ``x`` into lines: every other varied one
    (epoch moves with kimg, so it is no line of a kimg figure)."""
    return [a for a in sweep.varied_axes if a != x and not (x == "kimg" and a == "epoch")]


def _draw_figures(sweep: Sweep, layout: ReportLayout) -> dict[str, Path | None]:
    """The sweep's figures by caption (None where a figure has nothing to show)."""
    lbp_sets = _lbp_sets(sweep)
    return {
        **{
            caption: figures.metric_lines(sweep.results, x, _lines(sweep, x), layout.figure(f"metric_vs_{x}"))
            for x, caption in (
                ("generator", "metrics by generator"),
                ("n", "metrics against n"),
                ("epoch", "metrics against epoch"),
                ("kimg", "metrics against images seen (kimg)"),
            )
        },
        "LBP vectors (fractions)": figures.lbp_vectors(lbp_sets, layout.figure("lbp_vectors")),
        "rLBPv - sLBPv (codes per image, the paper's units)": figures.lbp_differences(
            lbp_sets, layout.figure("lbp_differences")
        ),
        "training losses": figures.loss_curves(_loss_curves(sweep), layout.figure("losses")),
        "samples by cell (the first run of each, last epoch)": figures.cell_sheet(
            _cell_samples(sweep), layout.figure("samples_by_cell")
        ),
    }


def _draw_grids(sweep: Sweep, layout: ReportLayout) -> list[tuple[str, Path]]:
    """A sample grid of every scored set, with its caption."""
    grids = []
    for row in sweep.results.itertuples():
        files = sweep.samples(row.run, int(row.epoch))
        grid = figures.sample_grid(files, layout.grid(row.run, int(row.epoch)))
        if grid:
            grids.append((_set_label(row, " · "), grid))
    return grids


def _aliased(sweep: Sweep) -> str:
    """The axes left out as factors because another axis sets them."""
    pairs = [f"{axis} follows {by}" for axis, by in sweep.aliased.items()]
    return f" ({'; '.join(pairs)}: not a factor of its own)" if pairs else ""


def _about_sets(sweep: Sweep, replicates: pd.Series) -> str:
    """What a manifest's report is of: its sets, their generators and replicates."""
    generators = ", ".join(sorted(map(str, sweep.results["generator"].unique())))
    return (
        f"<p>Sets of the manifest <code>{html.escape(str(sweep.root))}</code>: {len(sweep.results)} sets of "
        f"{len(sweep.runs)} runs (replicates), {replicates.min()}-{replicates.max()} replicates per cell; "
        f"generators: {html.escape(generators)}. Varied: {', '.join(sweep.varied_axes) or 'nothing'}"
        f"{_aliased(sweep)}.</p>"
        "<p class='note'>Every row of results.csv is one set of the manifest, scored as a run's snapshot would be; "
        "a run is a generator's replicate (the manifest's <code>replicate</code>).</p>"
    )


def _page(
    sweep: Sweep, tests, pairs, cell_table: pd.DataFrame, figs: dict, grids: list, relations: pd.DataFrame
) -> str:
    def setting(key: str):
        return OmegaConf.select(sweep.config, key, default=None) if sweep.config is not None else None

    failed = sweep.runs[sweep.runs["status"] != "finished"]
    statuses = {
        c.removeprefix("status_"): sorted(sweep.results[c].astype(str).str.split(":").str[0].unique())
        for c in sweep.results.columns
        if c.startswith("status_")
    }
    cells = [f for f in sweep.varied_axes if f != "epoch"]
    replicates = sweep.results.groupby(cells)["run"].nunique() if cells else pd.Series([sweep.results["run"].nunique()])
    about = (
        _about_sets(sweep, replicates)
        if sweep.sets is not None
        else (
            f"<p>Sweep <code>{html.escape(str(sweep.root))}</code>: {len(sweep.runs)} runs, "
            f"{len(sweep.results)} scored snapshots, {replicates.min()}-{replicates.max()} runs (seeds) per cell. "
            f"Data: <code>{html.escape(str(setting('data.source')))}</code>"
            f"{' at ' + html.escape(str(setting('data.root'))) if setting('data.root') else ''}, "
            f"{setting('data.image_size')} px (fit={setting('data.fit')}), reference set of "
            f"{setting('data.reference_n')} non-augmented images. Model: {setting('model.name') or 'dcgan'}, "
            f"Adam lr={setting('model.lr')}; {setting('trainer.max_epochs')} epochs. "
            f"Varied: {', '.join(sweep.varied_axes) or 'nothing'}{_aliased(sweep)}.</p>"
            "<p class='note'>Every row of results.csv is a row of <code>&lt;run&gt;/metrics.csv</code>; each run's "
            "full settings are in <code>&lt;run&gt;/config.yaml</code> and its training images in "
            "<code>&lt;run&gt;/subset.txt</code>.</p>"
        )
    ) + (
        "<p class='note'>Metric status: "
        + html.escape("; ".join(f"{k}: {', '.join(v)}" for k, v in statuses.items()))
        + "</p>"
    )
    answer = (
        "<ul>"
        + "".join(f"<li><b>{html.escape(f)}</b>: {html.escape(text)}</li>" for f, text in answers(tests))
        + "</ul>"
        + "<p class='note'>Run-level tests (the training run is the replicate). "
        + html.escape(FAMILIES.replace("`", ""))
        + " Verdicts: differs, equivalent within a margin (TOST), or undetermined with the design's power; "
        "the tables below give every test with its effect size. Replicates: " + html.escape(REPLICATE_SOURCES) + ".</p>"
    )
    sections = [
        ("Answer", answer),
        ("What was run", about + table(sweep.runs.drop(columns=["path"]))),
        ("Cells not finished or not scored", table(failed.drop(columns=["path"]))),
    ]
    sections += [(title, image_tag(path, title)) for title, path in figs.items() if path]
    if not relations.empty:
        sections.append(
            (
                "Metrics against ratings (one point per synthetic set)",
                "<p class='note'>Replicate: a synthetic set (its mean rating); Pearson with a Fisher-z CI, "
                "Spearman with a bootstrap CI over sets, p adjusted (BH) over the metrics.</p>" + table(relations),
            )
        )
    for design, sentence in DESIGNS.items():
        rows = tests[tests["design"] == design].drop(columns=["design", "unit"])
        if not rows.empty:
            sections.append(
                (f"Statistics: {design}", f"<p class='note'>Replicate: {html.escape(sentence)}.</p>" + table(rows))
            )
    sections.append(
        (
            "Pairwise comparisons",
            "<p class='note'>Run-level designs: Welch's t and Hedges' g between "
            "runs, after a primary test that differs (Holm within it); descriptive-images: Cliff's delta "
            "with a two-stage bootstrap CI (runs, then images), no p-value.</p>" + table(pairs),
        )
    )
    sections.append(("Mean and SD over runs per cell (replicate: a run)", table(cell_table)))
    sections.append(("Results (one row per run and snapshot)", table(sweep.results[sweep.table_columns])))
    sections.append(
        (
            "Synthetic images (first 9 of each set)",
            "<div class='grids'>"
            + "".join(f"<figure>{image_tag(p, t)}<figcaption>{html.escape(t)}</figcaption></figure>" for t, p in grids)
            + "</div>",
        )
    )
    return render(f"fetal_dcgan sweep report: {sweep.root.name}", sections)
