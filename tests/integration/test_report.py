"""The report of a real smoke sweep: tables, statistics against scipy, figures, HTML, notebook."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from fetal_dcgan.errors import UserError
from fetal_dcgan.report import load_sweep
from fetal_dcgan.report.__main__ import main as report_main
from fetal_dcgan.report.build import build_report, margins_of, statistics
from fetal_dcgan.report.margins import declare
from fetal_dcgan.report.ratings import metrics_vs_ratings, read_ratings
from fetal_dcgan.report.settings import MarginSettings

from helpers import REPO, run_permutation_p


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory) -> Path:
    """`python -m fetal_dcgan.train -m experiment=smoke` once for this module (4 runs x 2 snapshots),
    as a user types it: into the preset's own folder, multirun/smoke."""
    root = tmp_path_factory.mktemp("smoke")
    env = {**os.environ, "FETAL_DCGAN_CACHE": str(tmp_path_factory.getbasetemp() / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "fetal_dcgan.train", "-m", "experiment=smoke"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "multirun" / "smoke"


def test_the_smoke_preset_sweeps_into_its_own_folder(smoke_sweep):
    runs = sorted((p for p in smoke_sweep.iterdir() if (p / "finished.json").is_file()), key=lambda p: int(p.name))
    assert [r.name for r in runs] == ["0", "1", "2", "3"]
    overrides = [yaml.safe_load((r / ".hydra" / "overrides.yaml").read_text()) for r in runs]
    assert overrides[0] == ["data.n=20", "seed=0", "experiment=smoke"]
    for run in runs:
        assert len(list((run / "samples" / "epoch=0004").glob("*.png"))) == 16
        assert (run / "metrics.csv").read_text().count("\n") == 3  # header + epochs 2 and 4


@pytest.fixture(scope="module")
def report(smoke_sweep, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report")
    assert report_main([str(smoke_sweep), "--out", str(out)]) == 0
    return {"out": out, "sweep": smoke_sweep}


def test_every_file_is_written(report):
    out = report["out"]
    for name in (
        "results.csv",
        "per_image.csv",
        "stats.csv",
        "sensitivity.csv",
        "stats.md",
        "pairwise.csv",
        "cells.csv",
        "report.html",
        "figures/metric_vs_n.png",
        "figures/metric_vs_epoch.png",
        "figures/metric_vs_kimg.png",
        "figures/lbp_vectors.png",
        "figures/lbp_differences.png",
        "figures/losses.png",
        "figures/samples_by_cell.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert len(list((out / "figures" / "grids").glob("*.png"))) == 8
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 + 8  # self-contained: figures and grids inline
    cells = pd.read_csv(out / "cells.csv")  # the smoke grid: n in {20, 40} x 2 epochs, 2 seeds a cell
    assert len(cells) == 4 and (cells["runs"] == 2).all()
    results = pd.read_csv(out / "results.csv")
    one = results[(results["n"] == 40) & (results["epoch"] == 4)]["lbp_l1"].to_numpy()
    row = cells[(cells["n"] == 40) & (cells["epoch"] == 4)].iloc[0]
    assert row["lbp_l1_mean"] == pytest.approx(one.mean()) and row["lbp_l1_sd"] == pytest.approx(one.std(ddof=1))
    with np.load(report["sweep"] / "0" / "metrics" / "epoch=0004.npz") as vectors:  # one LBP code a pixel:
        assert (vectors["lbp_per_image"].sum(1) == 32 * 32).all()  # the paper's units are fraction x 32^2
    assert "What was run" in page and "phantom" in page and "Statistics: runs" in page


def test_results_have_one_row_per_run_and_snapshot(report):
    results = pd.read_csv(report["out"] / "results.csv")
    assert len(results) == 8 and not results.duplicated(["run", "epoch"]).any()
    assert sorted(results["n"].unique()) == [20, 40] and sorted(results["epoch"].unique()) == [2, 4]
    per_image = pd.read_csv(report["out"] / "per_image.csv")
    assert len(per_image) == 8 * 16 and {"run", "epoch", "image", "psnr_best", "lbp_l1"} <= set(per_image)


def test_statistics_use_runs_as_replicates_and_match_scipy(report):
    from statsmodels.stats.multitest import multipletests

    results = pd.read_csv(report["out"] / "results.csv")
    table = pd.read_csv(report["out"] / "stats.csv")
    assert list(table.columns) == [
        "metric",
        "factor",
        "epoch",
        "design",
        "unit",
        "family",
        "test",
        "n_groups",
        "replicates_per_group",
        "statistic",
        "p_value",
        "p_adjusted",
        "effect_size",
        "effect_size_name",
        "mde",
        "mde_units",
        "margin",
        "margin_source",
        "margin_ci_low",
        "margin_ci_high",
        "power_at_margin",
        "equivalence_p",
        "equivalence_p_adjusted",
        "saturation",
        "verdict",
        "margin_about",
        "note",
    ]
    row = table[
        (table.metric == "lbp_l1") & (table.factor == "n") & (table.design == "runs") & (table.epoch == 4)
    ].iloc[0]
    at = results[results.epoch == 4].sort_values("seed")
    a, b = (at[at.n == n]["lbp_l1"].to_numpy() for n in (20, 40))
    assert row.unit == "run" and row.replicates_per_group == 2  # 2 seeds per n
    paired = stats.ttest_rel(a, b)  # seeds 0 and 1 at both n: blocked by seed, the paired test for 2 levels
    assert "seed blocks" in row.test and row.statistic == pytest.approx(paired.statistic**2, rel=1e-9)
    assert row.p_value == pytest.approx(paired.pvalue, rel=1e-9)
    assert set(table.design) == {"runs", "runs-blocked-by-epoch", "paper-epochs-as-replicates", "descriptive-images"}
    images = table[table.design == "descriptive-images"]
    assert len(images) and images.p_value.isna().all() and (images.unit == "image").all()
    primary = table[table.family == "primary"]  # the declared question: n, the paper's four metrics, epoch 4
    assert set(primary.metric) == {"fid", "psnr_mean", "mi_mean", "lbp_l1"} and set(primary.epoch) == {4}
    assert np.allclose(primary.p_adjusted.dropna(), multipletests(primary.p_value.dropna(), method="fdr_bh")[1])
    assert table[table.design == "paper-epochs-as-replicates"].p_adjusted.isna().all()
    run_level = table[table.unit == "run"]
    assert set(run_level.verdict.str.split().str[0]) <= {"differs", "equivalent", "undetermined"}
    assert set(run_level.family) == {"primary", "secondary: n", "secondary: epoch"}
    sensitivity = pd.read_csv(report["out"] / "sensitivity.csv")
    assert list(sensitivity.metric) == list(primary.metric) and "verdict_0.5x" in sensitivity
    pairs = pd.read_csv(report["out"] / "pairwise.csv")
    assert not (pairs.unit == "run").any()  # 2 levels of n: the omnibus test is the pair
    assert set(table.factor) == {"n", "epoch"}  # seeds are replicates, not a factor
    n_rows = table[(table.factor == "n") & (table.unit != "image") & table.p_value.notna()]
    assert (
        len(n_rows) and n_rows.note.str.contains("confounded with training length").all()
    )  # equal epochs: 2x the steps at n=40
    assert not table.note.str.contains("reference images that are training").any()  # the held-out reference
    fid = table[(table.metric == "fid") & (table.factor == "n")].iloc[0]
    assert np.isnan(fid.p_value) and fid.note  # FID unavailable offline: said, not tested
    summary = (report["out"] / "stats.md").read_text()
    assert summary.index("**n**") < summary.index("## runs") and "Replicate: one value per training run" in summary
    assert "no difference" not in summary.split("## runs")[0].replace("never means no difference", "")
    page = (report["out"] / "report.html").read_text()
    assert page.index("Answer") < page.index("<img") < page.index("Statistics: runs")


def test_ratings_are_related_per_set(report, tmp_path):
    per_image = pd.read_csv(report["out"] / "per_image.csv")
    results = pd.read_csv(report["out"] / "results.csv")
    rng = np.random.default_rng(0)
    ratings = (
        per_image[["run", "epoch", "image"]]
        .sample(60, random_state=0)
        .assign(rating=lambda f: rng.integers(1, 6, len(f)).astype(float))
    )
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    table, _ = metrics_vs_ratings(results, read_ratings(tmp_path / "ratings.csv"), ["lbp_l1", "fid"])
    table = table.set_index("metric")  # report --ratings runs it in test_the_papers_chain_at_smoke_scale
    sets = ratings.groupby(["run", "epoch"], as_index=False)["rating"].mean().merge(results, on=["run", "epoch"])
    expected = stats.pearsonr(sets["rating"], sets["lbp_l1"])
    assert table.loc["lbp_l1", "n_sets"] == len(sets) == 8  # sets, not the 60 rated images
    assert table.loc["lbp_l1", "pearson_r"] == pytest.approx(expected.statistic)
    assert table.loc["lbp_l1", "pearson_p"] == pytest.approx(  # the runs' 4! permutations
        run_permutation_p(sets["rating"], sets["lbp_l1"], sets["run"])
    )
    assert "fid" not in table.index  # no finite value offline: nothing to correlate
    (tmp_path / "bad.csv").write_text("image,score\na.png,3\n")
    with pytest.raises(UserError, match="lacks the columns .*run, epoch, image, rating"):
        build_report(report["sweep"], tmp_path / "x", tmp_path / "bad.csv")
    assert (
        report_main(
            [
                str(report["sweep"]),
                "--out",
                str(tmp_path / "y"),
                "--ratings",
                str(tmp_path / "ratings.csv"),
                "--role",
                "clinician",
            ]
        )
        == 2
    )  # no role column: said, not guessed


def test_not_a_sweep(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 2
    assert "is not a sweep" in capsys.readouterr().err
    assert report_main([str(tmp_path / "missing")]) == 2


def test_failed_cells_and_missing_columns_are_reported_not_fatal(smoke_sweep, tmp_path):
    broken = tmp_path / "sweep"
    shutil.copytree(smoke_sweep, broken)
    (broken / "3" / "metrics.csv").unlink()  # a cell that failed before scoring
    (broken / "3" / "finished.json").unlink()
    metrics = pd.read_csv(broken / "2" / "metrics.csv").drop(columns=["lbp_chi2"])
    metrics.to_csv(broken / "2" / "metrics.csv", index=False)
    sweep = load_sweep(broken)
    assert sweep.runs.set_index("run").loc["3", "status"] == "no metrics"
    build_report(broken, tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    assert "no metrics" in page
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 6


@pytest.mark.slow  # a Jupyter kernel executing the walkthrough (make test-all)
def test_notebook_runs_on_the_sweep(smoke_sweep, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "notebooks" / "study.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # none committed
    os.environ["FETAL_DCGAN_SWEEP"] = str(smoke_sweep)
    try:
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        del os.environ["FETAL_DCGAN_SWEEP"]
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3


def test_the_papers_chain_at_smoke_scale(report, tmp_path, isolated_cache):
    """docs/reproduce-paper.md's chain on the phantom: sweep -> report -> deck -> ratings by
    role -> analysis -> report with ratings; every file and column the claims point to."""
    from fetal_dcgan.data.sources import phantom_images
    from fetal_dcgan.survey.__main__ import main as survey_main
    from fetal_dcgan.survey.deck import read_key
    from fetal_dcgan.survey.storage import Storage

    sweep, out = report["sweep"], report["out"]
    results = pd.read_csv(out / "results.csv")  # claim 1: sets of n x epoch x seed
    assert {"run", "epoch", "n", "seed", "n_fake", "reference_in_training"} <= set(results)
    stats_ = pd.read_csv(out / "stats.csv")  # claim 2
    assert {"runs", "runs-blocked-by-epoch", "paper-epochs-as-replicates"} <= set(stats_[stats_.factor == "n"].design)
    with np.load(sweep / "0" / "metrics" / "epoch=0004.npz") as vectors:  # claim 6
        assert {"lbp_reference", "lbp_synthetic", "lbp_abs_diff"} <= set(vectors.files)
    real = phantom_images(isolated_cache, n_images=60, height=54, width=80)[0].parent
    study = tmp_path / "study"
    assert (
        survey_main(
            ["build", "--real", str(real), "--fake", str(sweep), "--n-real", "6", "--n-fake", "32", "--out", str(study)]
        )
        == 0
    )
    assert json.loads((study / "study.json").read_text())["fit"] == "pad"  # from the runs' config.yaml
    storage, key = Storage(study / "ratings.sqlite"), read_key(study)
    for rater, role in (("c", "clinician"), ("e1", "engineer"), ("e2", "engineer")):
        storage.add_rater(rater, {"role": role, "years": 10})
        for i, row in enumerate(key):
            choice = "synthetic" if role == "clinician" else ("real" if i % 2 else "synthetic")
            storage.save_answer(rater, row["id"], choice, 1 + (i * 7 + len(rater)) % 5, 2.0)
    analysis = tmp_path / "analysis"
    assert survey_main(["analyze", str(study), "--metrics", str(sweep), "--log-fit", "--out", str(analysis)]) == 0
    per_rater = pd.read_csv(analysis / "per_rater.csv").set_index("rater")  # claims 3 and 4
    assert per_rater.loc["c", "synthetic_called_real"] == 0 and per_rater.loc["c", "specificity"] == 0
    assert (
        0 < per_rater.loc["e1", "synthetic_called_real"] < 1 and per_rater.loc["e1", "synthetic_called_real_ci_low"] > 0
    )
    per_role = pd.read_csv(analysis / "per_role.csv").set_index("role")
    assert per_role.loc["all", "raters"] == 3 and np.isfinite(per_role.loc["all", "rating_difference_p"])
    assert "no role-level inference" in per_role.loc["engineer", "note"]
    relations = pd.read_csv(analysis / "metrics_vs_ratings.csv")  # claim 5
    clinician = relations[relations.role == "clinician"].set_index("metric")
    assert {"lbp_v8_diff", "lbp_v20_diff", "lbp_v143_diff", "lbp_v240_diff"} <= set(clinician.index)
    assert clinician["n_sets"].max() == 8 and {"pearson_r", "pearson_ci_low", "log_a"} <= set(clinician)
    with_ratings = tmp_path / "with_ratings"
    assert (
        report_main(
            [
                str(sweep),
                "--out",
                str(with_ratings),
                "--ratings",
                str(analysis / "ratings.csv"),
                "--role",
                "clinician",
                "--log-fit",
            ]
        )
        == 0
    )
    same = pd.read_csv(with_ratings / "metrics_vs_ratings.csv").set_index("metric")
    assert same.loc["lbp_v8_diff", "pearson_r"] == pytest.approx(clinician.loc["lbp_v8_diff", "pearson_r"])
    assert (with_ratings / "figures" / "metrics_vs_ratings.png").is_file()


def test_declared_margins_give_equivalence_tests(report, tmp_path):
    """baselines --margins scores real sets of the sweep's size against its reference with its
    settings and declares each margin as the runs' study.margins say (a share of the gap to real
    data, never below the real-vs-real spread); the report reads SWEEP/margins.json into its rows."""
    from fetal_dcgan.baselines import main as baselines_main

    sweep = tmp_path / "sweep"
    shutil.copytree(report["sweep"], sweep)
    assert baselines_main(["--margins", str(sweep), "--draws", "2"]) == 0
    section = json.loads((sweep / "margins.json").read_text())["sizes"]["32"]  # the smoke preset's one size
    about = section["about"]
    assert (about["set_size"], about["drawn_size"], about["pool"], about["reference_n"]) == (16, 16, 60, 24)
    lbp = section["metrics"]["lbp_l1"]
    results = pd.read_csv(report["out"] / "results.csv")
    gap = abs(results[results.epoch == 4]["lbp_l1"].mean() - lbp["mean"])
    assert lbp["source"] == "gap" and lbp["margin"] == pytest.approx(0.2 * gap)
    assert lbp["margin"] > 1.959964 * math.sqrt(2) * lbp["sd"] > 0  # above the real-vs-real margin
    table = statistics(load_sweep(sweep), resamples=20)[0]  # the report's stats.csv, without its figures
    row = table[(table.metric == "lbp_l1") & (table.design == "runs") & (table.factor == "n")].iloc[0]
    assert row.margin == pytest.approx(lbp["margin"]) and row.margin_source == "gap"
    assert "phantom, 32 px" in row.margin_about and row.margin_ci_low < row.margin < row.margin_ci_high
    assert 0 <= row.equivalence_p <= 1 and 0 < row.power_at_margin <= 1 and row.mde > 0
    assert set(table.margin_source.dropna()) - {""} <= {"gap", "explicit", "real"}
    strict = declare({"lbp_l1": lbp}, {}, MarginSettings(source="real"))["lbp_l1"]  # --margin-source real
    assert strict["source"] == "real" and strict["margin"] == pytest.approx(1.959964 * math.sqrt(2) * lbp["sd"])
    (tmp_path / "declared.yaml").write_text("lbp_l1: 0.05\n")  # report --margins FILE: over the measured ones
    declared = margins_of(load_sweep(sweep), tmp_path / "declared.yaml")["32"]
    assert (declared["lbp_l1"].value, declared["lbp_l1"].source) == (0.05, "explicit")
    assert declared["lbp_l1"].real_sd == pytest.approx(lbp["sd"]) and declared["psnr_mean"].source in ("gap", "real")
    assert report_main([str(sweep), "--margins", str(tmp_path / "missing.json")]) == 2  # said, not ignored
