"""The evaluate command on folders: training's defaults, runs' preprocessing, one-line failures."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from fetal_dcgan.evaluate import main as evaluate_main
from fetal_dcgan.evaluate import metric_suite
from fetal_dcgan.metrics import METRICS

from helpers import REPO, folder_of_noise, make_hc18, noise_image, write_image

JSON_KEYS = {
    "fid",
    "kid_mean",
    "kid_std",
    "psnr_mean",
    "psnr_best_mean",
    "mi_mean",
    "mi_best_mean",
    "nmi_mean",
    "lbp_l1",
    "lbp_chi2",
    "lbp_reference",
    "lbp_synthetic",
    "lbp_v8",
    "lbp_v20",
    "lbp_v143",
    "lbp_v240",
    "n_real",
    "n_fake",
    "status",
}


def test_evaluate_command_scores_two_folders(tmp_path):
    real, fake = folder_of_noise(tmp_path / "real", 6), folder_of_noise(tmp_path / "fake", 4, seed=1)
    out = tmp_path / "scores.json"
    result = subprocess.run(
        [sys.executable, "-m", "fetal_dcgan.evaluate", "--real", str(real), "--fake", str(fake), "--out", str(out)],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "psnr_mean" in result.stdout and "status lbp" in result.stdout
    scores = json.loads(out.read_text())
    assert JSON_KEYS <= set(scores)
    assert scores["n_real"] == 6 and scores["n_fake"] == 4
    assert len(scores["lbp_reference"]) == 256 and sum(scores["lbp_synthetic"]) == pytest.approx(1)
    assert scores["fid"] is None and scores["status"]["fid"].startswith("unavailable")  # no weights offline
    assert scores["status"]["psnr"] == "ok" and scores["per_image"]["file"][0] == "img_000.png"
    assert len(scores["per_image"]["psnr_best"]) == 4


def test_evaluate_reads_scans_of_an_hc18_folder_and_the_runs_preprocessing(tmp_path, capsys):
    real = make_hc18(tmp_path / "hc18")  # scans of 27-32 x 40 px beside their annotation masks
    run = tmp_path / "run"
    fake = folder_of_noise(run / "samples" / "epoch=0002", 4, shape=(16, 16))
    (run / "config.yaml").write_text("data:\n  fit: squash\n  image_size: 16\n")
    out = tmp_path / "scores.json"
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_real"] == 6  # 6 scans, no masks
    assert "fit=squash, resize=antialias, from" in capsys.readouterr().out
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "--fit", "pad"]) == 2
    assert "--fit pad differs from the run's data.fit=squash" in capsys.readouterr().err
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "--resize", "32"]) == 2


def test_evaluate_takes_trainings_metric_defaults_and_keeps_failures_to_one_line(tmp_path, capsys, monkeypatch):
    from fetal_dcgan.config import compose_config

    real, fake = folder_of_noise(tmp_path / "real", 12), folder_of_noise(tmp_path / "fake", 10, seed=1)
    out = tmp_path / "scores.json"
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--ci-resamples", "0", "--out", str(out)]) == 0
    status = json.loads(out.read_text())["status"]
    assert list(status) == list(compose_config().metrics.names)  # training's metric set, FRD not in it
    assert status["psnr"] == status["diversity"] == "ok" and status["memorisation"].startswith("unavailable")

    def broken(*args):
        raise ValueError("a constant image")

    monkeypatch.setitem(METRICS, "lbp", dataclasses.replace(METRICS["lbp"], compute=broken))
    capsys.readouterr()
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "lbp", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "error: metric lbp failed" in captured.err
    assert "status lbp" in captured.out and json.loads(out.read_text())["status"]["psnr"] == "ok"
    assert "Traceback" in out.with_suffix(".log").read_text()  # the whole story is in the log file


def test_evaluate_selected_metrics_and_resize(tmp_path, capsys):
    real = folder_of_noise(tmp_path / "real", 3, shape=(30, 40))
    fake = folder_of_noise(tmp_path / "fake", 3, shape=(24, 24), seed=1)
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "lbp"]) == 2
    assert "pass --resize" in capsys.readouterr().err
    out = tmp_path / "s.json"
    assert (
        evaluate_main(
            ["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "lbp", "--resize", "16", "--out", str(out)]
        )
        == 0
    )
    scores = json.loads(out.read_text())
    assert set(scores["status"]) == {"psnr", "lbp"}


def test_evaluate_errors_name_the_problem(tmp_path, capsys):
    real = folder_of_noise(tmp_path / "real", 3)
    (tmp_path / "empty").mkdir()
    assert evaluate_main(["--real", str(real), "--fake", str(tmp_path / "empty")]) == 2
    assert "No images found under" in capsys.readouterr().err
    mixed = folder_of_noise(tmp_path / "mixed", 2)
    write_image(mixed / "odd.png", noise_image(5, (10, 12)))
    assert evaluate_main(["--real", str(real), "--fake", str(mixed)]) == 2
    assert "odd.png is 12x10" in capsys.readouterr().err
    (mixed / "odd.png").write_bytes(b"garbage")
    assert evaluate_main(["--real", str(real), "--fake", str(mixed)]) == 2
    err = capsys.readouterr().err
    assert "Cannot read image" in err and "odd.png" in err


def test_command_line_values_reach_the_metric_suite_as_given(tmp_path):
    """Typed values set on the composed config: a path with a space and a quote, and a 0."""
    weights = str(tmp_path / "it's here" / "w.pth")
    args = argparse.Namespace(
        metrics=["psnr", "kid"],
        modules=None,
        fid_weights=weights,
        device="cpu",
        kid_subsets=7,
        kid_subset_size=None,
        ci_resamples=0,
        cache_dir=None,
        anatomy_model=None,
        fit=None,
        fake=tmp_path,
    )
    suite = metric_suite(args)
    assert suite.names == ["kid", "psnr"] and suite.ci_resamples == 0 and suite.options["kid"].subsets == 7
    assert suite.spaces.options.weights_path == weights
