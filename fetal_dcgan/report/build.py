"""Build a sweep's report: CSV tables, statistics, figures and report.html."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from fetal_dcgan.callbacks.snapshot import sample_dir
from fetal_dcgan.errors import UserError
from fetal_dcgan.report import figures
from fetal_dcgan.report.collect import PER_IMAGE_METRICS, Sweep, load_sweep
from fetal_dcgan.report.html import image_tag, render, table
from fetal_dcgan.report.stats import axis_tests, pairwise_tests
from fetal_dcgan.utils import atomic_write_text

log = logging.getLogger(__name__)
RATING_COLUMNS = ("run", "epoch", "image", "rating")
SET_RATING_METRICS = ("fid", "lbp_v8", "lbp_v20", "lbp_v143", "lbp_v240", "lbp_l1", "psnr_mean", "mi_mean")


def statistics(sweep: Sweep) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tests across every varied axis: set-level metrics, then per-image metrics."""
    axes = sweep.varied_axes
    per_image_metrics = [m for m in PER_IMAGE_METRICS if m in sweep.per_image]
    per_image = sweep.per_image.merge(sweep.results[["run", "epoch"] + [a for a in axes if a in sweep.results
                                                                        and a not in sweep.per_image]],
                                      on=["run", "epoch"], how="left") if not sweep.per_image.empty else sweep.per_image
    tests = pd.concat([axis_tests(sweep.results, sweep.metric_columns, axes, "set"),
                       axis_tests(per_image, per_image_metrics, axes, "image")], ignore_index=True)
    pairs = pd.concat([pairwise_tests(sweep.results, sweep.metric_columns, axes, "set"),
                       pairwise_tests(per_image, per_image_metrics, axes, "image")], ignore_index=True)
    return tests, pairs


def stats_markdown(tests: pd.DataFrame, pairs: pd.DataFrame) -> str:
    def md(frame: pd.DataFrame) -> str:
        if frame.empty:
            return "(none)\n"
        cells = frame.astype(object).where(frame.notna(), "")
        lines = ["| " + " | ".join(map(str, cells.columns)) + " |", "|" + "---|" * len(cells.columns)]
        lines += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
                  for row in cells.itertuples(index=False)]
        return "\n".join(lines) + "\n"

    return ("# Does each metric differ across the sweep's axes?\n\nKruskal-Wallis and one-way ANOVA per metric "
            "and axis (scipy). Set-level metrics use the other axes and seeds as replicates; per-image metrics "
            "use the images. `groups` gives each level's number of values.\n\n" + md(tests) +
            "\n# Pairwise Mann-Whitney U, Benjamini-Hochberg adjusted (`p_bh`)\n\n" + md(pairs))


def _loss_curves(sweep: Sweep) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = {}
    for run in sweep.runs.itertuples():
        events = Path(run.path) / "tensorboard"
        if not events.is_dir():
            continue
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
        tags = acc.Tags()["scalars"]
        epoch_of = {e.step: e.value + 1 for e in acc.Scalars("epoch")} if "epoch" in tags else {}
        curves[run.run] = {tag: (np.array([epoch_of.get(e.step, e.step) for e in acc.Scalars(tag)]),
                                 np.array([e.value for e in acc.Scalars(tag)]))
                           for tag in ("train/loss_d", "train/loss_g") if tag in tags}
    return curves


def _lbp_sets(sweep: Sweep) -> list:
    sets = []
    for row in sweep.results.itertuples():
        path = Path(sweep.runs.set_index("run").loc[row.run, "path"]) / "metrics" / f"epoch={int(row.epoch):04d}.npz"
        if path.is_file():
            with np.load(path) as data:
                if "lbp_reference" in data:
                    sets.append((f"run {row.run}, n={row.n}, epoch {row.epoch}", data["lbp_reference"],
                                 data["lbp_synthetic"]))
    return sets


def read_ratings(path: Path) -> pd.DataFrame:
    ratings = pd.read_csv(path)
    missing = [c for c in RATING_COLUMNS if c not in ratings]
    if missing:
        raise UserError(f"{path} lacks the columns {missing}: a ratings CSV has one row per rated synthetic image "
                        f"with columns {', '.join(RATING_COLUMNS)} (rating: mean quality score).")
    ratings["run"] = ratings["run"].astype(str)
    return ratings


def rating_regressions(sweep: Sweep, ratings: pd.DataFrame, out: Path) -> tuple[pd.DataFrame, Path | None]:
    """Metrics against ratings: per image (per-image metrics) and per set (set-level metrics)."""
    per_image = sweep.per_image.assign(run=sweep.per_image["run"].astype(str)).merge(
        ratings, on=["run", "epoch", "image"])
    per_set = sweep.results.assign(run=sweep.results["run"].astype(str)).merge(
        ratings.groupby(["run", "epoch"], as_index=False)["rating"].mean(), on=["run", "epoch"])
    panels = [("image", m, per_image) for m in PER_IMAGE_METRICS if m in per_image] + \
             [("set", m, per_set) for m in SET_RATING_METRICS if m in per_set and per_set[m].notna().any()]
    if not panels:
        return pd.DataFrame(), None
    fits, path = figures.regression_grid(
        [(f"{metric} ({level})", frame[metric].to_numpy(float), frame["rating"].to_numpy(float))
         for level, metric, frame in panels], "rating", out / "figures" / "ratings_regression.png")
    return pd.DataFrame([{**fit, "level": level} for fit, (level, _, _) in zip(fits, panels)]), path


def build_report(sweep_dir: str | Path, out: str | Path | None = None, ratings: str | Path | None = None) -> dict:
    """Write every table, figure and report.html for the sweep; return their paths."""
    sweep = load_sweep(sweep_dir)
    out = Path(out) if out else sweep.root / "report"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.csv", "per_image": out / "per_image.csv", "stats": out / "stats.csv",
             "pairwise": out / "pairwise.csv", "stats_md": out / "stats.md", "html": out / "report.html"}
    atomic_write_text(sweep.results.to_csv(index=False), paths["results"])
    atomic_write_text(sweep.per_image.to_csv(index=False), paths["per_image"])
    tests, pairs = statistics(sweep)
    atomic_write_text(tests.to_csv(index=False), paths["stats"])
    atomic_write_text(pairs.to_csv(index=False), paths["pairwise"])
    atomic_write_text(stats_markdown(tests, pairs), paths["stats_md"])

    figs = {"metrics against n": figures.metric_lines(sweep.results, "n", "epoch", out / "figures" / "metric_vs_n.png"),
            "metrics against epoch": figures.metric_lines(sweep.results, "epoch", "n",
                                                          out / "figures" / "metric_vs_epoch.png"),
            "LBP vectors": figures.lbp_vectors(_lbp_sets(sweep), out / "figures" / "lbp_vectors.png"),
            "training losses": figures.loss_curves(_loss_curves(sweep), out / "figures" / "losses.png")}
    grids = []
    for row in sweep.results.itertuples():
        run_path = Path(sweep.runs.set_index("run").loc[row.run, "path"])
        files = sorted(sample_dir(run_path, int(row.epoch)).glob("*.png"))
        grid = figures.sample_grid(files, out / "figures" / "grids" / f"run={row.run}_epoch={int(row.epoch):04d}.png")
        if grid:
            grids.append((f"run {row.run} · n={row.n} · epoch {row.epoch}", grid))
    regressions = pd.DataFrame()
    if ratings:
        regressions, figs["metrics against ratings"] = rating_regressions(sweep, read_ratings(Path(ratings)), out)
        atomic_write_text(regressions.to_csv(index=False), out / "ratings_regression.csv")

    atomic_write_text(_page(sweep, tests, pairs, figs, grids, regressions), paths["html"])
    paths.update({f"figure {k}": v for k, v in figs.items() if v})
    log.info("Report of %d runs written to %s", len(sweep.runs), out)
    return paths


def _page(sweep: Sweep, tests, pairs, figs: dict, grids: list, regressions: pd.DataFrame) -> str:
    cfg = sweep.config or {}
    data, model, trainer = cfg.get("data", {}), cfg.get("model", {}), cfg.get("trainer", {})
    failed = sweep.runs[sweep.runs["status"] != "finished"]
    metric_cols = [c for c in sweep.results.columns if not c.startswith(("status_", "override.", "lbp_v"))]
    statuses = {c.removeprefix("status_"): sorted(sweep.results[c].astype(str).str.split(":").str[0].unique())
                for c in sweep.results.columns if c.startswith("status_")}
    about = (f"<p>Sweep <code>{html.escape(str(sweep.root))}</code>: {len(sweep.runs)} runs, "
             f"{len(sweep.results)} scored snapshots. Data: <code>{html.escape(str(data.get('source')))}</code>"
             f"{' at ' + html.escape(str(data.get('root'))) if data.get('root') else ''}, "
             f"{data.get('image_size')} px (fit={data.get('fit')}), reference set of {data.get('reference_n')} "
             f"non-augmented images. Model: DCGAN nz={model.get('nz')}, ngf={model.get('ngf')}, "
             f"ndf={model.get('ndf')}, Adam lr={model.get('lr')} betas=({model.get('beta1')}, {model.get('beta2')}); "
             f"{trainer.get('max_epochs')} epochs. Varied: {', '.join(sweep.varied_axes) or 'nothing'}.</p>"
             "<p class='note'>Every row of results.csv is a row of <code>&lt;run&gt;/metrics.csv</code>; each run's "
             "full settings are in <code>&lt;run&gt;/config.yaml</code> and its training images in "
             "<code>&lt;run&gt;/subset.txt</code>. Metric status: "
             + html.escape("; ".join(f"{k}: {', '.join(v)}" for k, v in statuses.items())) + "</p>")
    sections = [("What was run", about + table(sweep.runs.drop(columns=["path"]))),
                ("Cells not finished or not scored", table(failed.drop(columns=["path"]))),
                ("Results (one row per run and snapshot)", table(sweep.results[metric_cols])),
                ("Statistics", "<p class='note'>Kruskal-Wallis and one-way ANOVA (scipy); set-level metrics use "
                 "the other axes and seeds as replicates, per-image metrics the images.</p>" + table(tests)),
                ("Pairwise tests (Mann-Whitney U, Benjamini-Hochberg)", table(pairs))]
    sections += [(title, image_tag(path, title)) for title, path in figs.items() if path]
    if not regressions.empty:
        sections.append(("Regression of metrics on ratings", table(regressions)))
    sections.append(("Synthetic images (first 9 of each set)", "<div class='grids'>" + "".join(
        f"<figure>{image_tag(p, t)}<figcaption>{html.escape(t)}</figcaption></figure>" for t, p in grids) + "</div>"))
    return render(f"fetal_dcgan sweep report: {sweep.root.name}", sections)
