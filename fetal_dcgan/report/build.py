"""Build a sweep's report: CSV tables, statistics, figures and report.html."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from fetal_dcgan.errors import UserError
from fetal_dcgan.metrics.lbp import REFERENCE_VECTOR, SYNTHETIC_VECTOR
from fetal_dcgan.report import figures
from fetal_dcgan.report.answer import answer_sections, stats_markdown
from fetal_dcgan.report.collect import Sweep, load_sweep, natural_order
from fetal_dcgan.report.html import image_tag, render, table
from fetal_dcgan.report.layout import ReportLayout
from fetal_dcgan.report.margins import ANY_SIZE, EXPLICIT, MARGINS_FILE, Margin, Margins, merge, read_margins
from fetal_dcgan.report.ratings import metrics_vs_ratings, per_set, rating_figure, read_ratings
from fetal_dcgan.report.settings import StudySettings
from fetal_dcgan.report.stats import (
    DESIGNS,
    Question,
    cell_summary,
    sweep_statistics,
)
from fetal_dcgan.rules import configure
from fetal_dcgan.utils import atomic_write_text

log = logging.getLogger(__name__)


def declared_study(sweep: Sweep) -> StudySettings:
    """The study its runs declared (``study.*`` of the first run's config; defaults without one)."""
    given = OmegaConf.select(sweep.config, "study", default=None) if sweep.config is not None else None
    return configure(StudySettings, given)


def question_of(
    sweep: Sweep, factor: str | None = None, endpoints: list[str] | None = None, snapshot: int | None = None
) -> Question:
    """The primary question: the declared one, with any of its parts given here instead."""
    study = declared_study(sweep)
    given = tuple(k for k, v in (("factor", factor), ("endpoints", endpoints), ("snapshot", snapshot)) if v)
    factor = factor or study.factor
    column = next((c for c in (factor, f"override.{factor}") if c in sweep.results), factor)
    epochs = sorted(int(e) for e in sweep.results["epoch"].dropna().unique())
    epoch = snapshot or study.snapshot or (epochs[-1] if epochs else None)
    if epoch is not None and epoch not in epochs:
        raise UserError(
            f"The primary snapshot is epoch {epoch}, but the sweep scored epochs {epochs}: declare one of them "
            "(study.snapshot, or report --snapshot)."
        )
    return Question(column, tuple(endpoints or study.endpoints), epoch, study.alpha, given)


def margins_of(sweep: Sweep, path: str | Path | None = None) -> Margins:
    """The margins measured for the sweep (``SWEEP/margins.json``), with the study's explicit
    ones and then those of ``path`` (a pilot's margins.json or an explicit file) on top."""
    measured = sweep.root / MARGINS_FILE
    margins = read_margins(measured) if measured.is_file() else {}
    declared = declared_study(sweep).margins
    if declared.source == EXPLICIT and declared.explicit:
        about = "declared in study.margins.explicit"
        explicit = {
            k: Margin(float(v), EXPLICIT, float(v), float(v), about=about) for k, v in declared.explicit.items()
        }
        margins = merge(margins, {ANY_SIZE: explicit})
    return merge(margins, read_margins(Path(path))) if path is not None else margins


def statistics(
    sweep: Sweep, resamples: int = 200, margins: Margins | None = None, question: Question | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every design over every varied factor (see ``report.stats``), with verdicts, and the
    primary endpoints' sensitivity to their margins."""
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
        question=question_of(sweep) if question is None else question,
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
    question: dict | None = None,
) -> dict:
    """Write every table, figure and report.html for the sweep (a folder, or a manifest's
    scored sets, ``report.sets``); return their paths. ``question``: parts of the primary
    question given instead of the declared ones (``question_of``'s arguments)."""
    sweep = source if isinstance(source, Sweep) else load_sweep(source)
    margin_table = margins_of(sweep, margins)
    asked = question_of(sweep, **(question or {}))
    rated = read_ratings(Path(ratings)) if ratings else None
    if rated is not None:
        per_set(rated, role)  # a bad file or role fails before any work
    layout = ReportLayout(out or sweep.default_report)
    layout.figures.mkdir(parents=True, exist_ok=True)
    tests, pairs, sensitivity, cells = _write_tables(sweep, layout, resamples, margin_table, asked)
    figs = _draw_figures(sweep, layout)
    paths = layout.files()
    relations = pd.DataFrame()
    if rated is not None:
        relations, sets = metrics_vs_ratings(sweep.results, rated, sweep.metric_columns, role, log_fit)
        atomic_write_text(relations.to_csv(index=False), layout.ratings)
        paths["ratings"] = layout.ratings
        figs["metrics against ratings"] = rating_figure(sets, relations, layout.figure("metrics_vs_ratings"))
    answer = answer_sections(tests, sensitivity, asked, sweep.varied_axes)
    page = _page(sweep, answer, tests, pairs, cells, figs, _draw_grids(sweep, layout), relations)
    atomic_write_text(page, layout.file("html"))
    paths.update({f"figure {k}": v for k, v in figs.items() if v})
    log.info("Report of %d runs written to %s", len(sweep.runs), layout.root)
    return paths


def _write_tables(
    sweep: Sweep, layout: ReportLayout, resamples: int, margin_table: Margins, question: Question
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """results, per_image, cells, stats, sensitivity, pairwise and stats.md; returns (tests,
    pairs, sensitivity, cells)."""
    atomic_write_text(sweep.results.to_csv(index=False), layout.file("results"))
    atomic_write_text(sweep.per_image.to_csv(index=False), layout.file("per_image"))
    cells = cell_summary(sweep.results, sweep.varied_axes, sweep.metric_columns)
    atomic_write_text(cells.to_csv(index=False), layout.file("cells"))
    tests, pairs, sensitivity = statistics(sweep, resamples, margin_table, question)
    atomic_write_text(tests.to_csv(index=False), layout.file("stats"))
    atomic_write_text(sensitivity.to_csv(index=False), layout.file("sensitivity"))
    atomic_write_text(pairs.to_csv(index=False), layout.file("pairwise"))
    markdown = stats_markdown(tests, pairs, sensitivity, question, sweep.varied_axes)
    atomic_write_text(markdown, layout.file("stats_md"))
    return tests, pairs, sensitivity, cells


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


def _about(sweep: Sweep) -> str:
    """What was run: the sweep (or manifest), its data and model, and the metrics' statuses."""

    def setting(key: str):
        return OmegaConf.select(sweep.config, key, default=None) if sweep.config is not None else None

    statuses = {
        c.removeprefix("status_"): sorted(sweep.results[c].astype(str).str.split(":").str[0].unique())
        for c in sweep.results.columns
        if c.startswith("status_")
    }
    cells = [f for f in sweep.varied_axes if f != "epoch"]
    replicates = sweep.results.groupby(cells)["run"].nunique() if cells else pd.Series([sweep.results["run"].nunique()])
    return (
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


def _page(
    sweep: Sweep,
    answer: list[tuple[str, str]],
    tests,
    pairs,
    cell_table: pd.DataFrame,
    figs: dict,
    grids: list,
    relations: pd.DataFrame,
) -> str:
    failed = sweep.runs[sweep.runs["status"] != "finished"]
    about = _about(sweep)
    sections = [
        *answer,
        ("What was run", about + table(sweep.runs.drop(columns=["path"]))),
        ("Cells not finished or not scored", table(failed.drop(columns=["path"]))),
    ]
    sections += [(title, image_tag(path, title)) for title, path in figs.items() if path]
    if not relations.empty:
        sections.append(
            (
                "Metrics against ratings (one point per synthetic set)",
                "<p class='note'>Replicate: a synthetic set (its mean rating); CIs resample runs (Fisher-z for "
                "Pearson with one set a run), p-values permute runs, p adjusted (BH) over the metrics.</p>"
                + table(relations),
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
