"""The evaluate command on folders, and metrics written by a training run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fetal_dcgan.evaluate import main as evaluate_main
from fetal_dcgan.metrics import METRICS
from fetal_dcgan.train import train

from conftest import TINY, compose_config, make_hc18, noise_image, write_image

REPO = Path(__file__).resolve().parents[1]
JSON_KEYS = {"fid", "kid_mean", "kid_std", "psnr_mean", "psnr_best_mean", "mi_mean", "mi_best_mean", "nmi_mean",
             "lbp_l1", "lbp_chi2", "lbp_reference", "lbp_synthetic", "lbp_v8", "lbp_v20", "lbp_v143", "lbp_v240",
             "n_real", "n_fake", "status"}


def folder(path: Path, n: int, shape=(24, 24), seed: int = 0) -> Path:
    for i in range(n):
        write_image(path / f"img_{i:03d}.png", noise_image(seed * 1000 + i, shape))
    return path


def test_evaluate_command_scores_two_folders(tmp_path):
    real, fake = folder(tmp_path / "real", 6), folder(tmp_path / "fake", 4, seed=1)
    out = tmp_path / "scores.json"
    result = subprocess.run([sys.executable, "-m", "fetal_dcgan.evaluate", "--real", str(real), "--fake", str(fake),
                             "--out", str(out)], cwd=REPO, env=os.environ.copy(), capture_output=True, text=True,
                            timeout=120)
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
    fake = folder(run / "samples" / "epoch=0002", 4, shape=(16, 16))
    (run / "config.yaml").write_text("data:\n  fit: squash\n  image_size: 16\n")
    out = tmp_path / "scores.json"
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_real"] == 6  # 6 scans, no masks
    assert "fit=squash, from" in capsys.readouterr().out
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "--fit", "pad"]) == 2
    assert "--fit pad differs from the run's data.fit=squash" in capsys.readouterr().err
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "--resize", "32"]) == 2


def test_evaluate_takes_trainings_metric_defaults_and_keeps_failures_to_one_line(tmp_path, capsys, monkeypatch):
    from fetal_dcgan.config import compose_config
    from fetal_dcgan.metrics import suite

    real, fake = folder(tmp_path / "real", 12), folder(tmp_path / "fake", 10, seed=1)
    out = tmp_path / "scores.json"
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--ci-resamples", "0", "--out", str(out)]) == 0
    status = json.loads(out.read_text())["status"]
    assert list(status) == list(compose_config().metrics.names)  # training's metric set, FRD not in it
    assert status["psnr"] == status["diversity"] == "ok" and status["memorisation"].startswith("unavailable")

    def broken(*args):
        raise ValueError("a constant image")

    monkeypatch.setitem(suite.METRICS, "lbp", suite.Metric(suite.METRICS["lbp"].keys, broken))
    capsys.readouterr()
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "lbp", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "error: metric lbp failed" in captured.err
    assert "status lbp" in captured.out and json.loads(out.read_text())["status"]["psnr"] == "ok"
    assert "Traceback" in out.with_suffix(".log").read_text()  # the whole story is in the log file


def test_evaluate_selected_metrics_and_resize(tmp_path, capsys):
    real = folder(tmp_path / "real", 3, shape=(30, 40))
    fake = folder(tmp_path / "fake", 3, shape=(24, 24), seed=1)
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "lbp"]) == 2
    assert "pass --resize" in capsys.readouterr().err
    out = tmp_path / "s.json"
    assert evaluate_main(["--real", str(real), "--fake", str(fake), "--metrics", "psnr", "lbp",
                          "--resize", "16", "--out", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert set(scores["status"]) == {"psnr", "lbp"}


def test_evaluate_errors_name_the_problem(tmp_path, capsys):
    real = folder(tmp_path / "real", 3)
    (tmp_path / "empty").mkdir()
    assert evaluate_main(["--real", str(real), "--fake", str(tmp_path / "empty")]) == 2
    assert "No images found under" in capsys.readouterr().err
    mixed = folder(tmp_path / "mixed", 2)
    write_image(mixed / "odd.png", noise_image(5, (10, 12)))
    assert evaluate_main(["--real", str(real), "--fake", str(mixed)]) == 2
    assert "odd.png is 12x10" in capsys.readouterr().err
    (mixed / "odd.png").write_bytes(b"garbage")
    assert evaluate_main(["--real", str(real), "--fake", str(mixed)]) == 2
    err = capsys.readouterr().err
    assert "Cannot read image" in err and "odd.png" in err


def test_training_writes_metrics_rows_and_tensorboard_scalars(tmp_path):
    run = tmp_path / "run"
    train(compose_config(run, TINY + ["metrics.names=[psnr,mi,lbp,fid]"]))
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["2", "3"]
    assert rows[0]["n"] == "48" and rows[0]["image_size"] == "32" and rows[0]["seed"] == "0"
    assert float(rows[1]["lbp_l1"]) > 0 and rows[1]["status_lbp"] == "ok"
    assert rows[1]["status_fid"].startswith("unavailable") and rows[1]["fid"] == "nan"
    with (run / "per_image.csv").open() as fh:
        per_image = list(csv.DictReader(fh))
    assert len(per_image) == 2 * 10 and {"psnr_best", "mi_best", "nmi_best", "lbp_l1"} <= set(per_image[0])
    vectors = np.load(run / "metrics" / "epoch=0003.npz")
    assert vectors["lbp_reference"].shape == (256,) and vectors["lbp_per_image"].shape == (10, 256)
    scalars = set(EventAccumulator(str(run / "tensorboard")).Reload().Tags()["scalars"])
    assert {"metrics/psnr_mean", "metrics/mi_best_mean", "metrics/lbp_l1", "metrics/lbp_v8"} <= scalars
    assert "metrics/fid" not in scalars  # unavailable values are not logged as NaN


def test_default_metrics_in_training_all_run(tmp_path):
    """With every training image in use there is no held-out set: the audit calibrates on training images."""
    run = tmp_path / "run"
    train(compose_config(run, TINY))
    with (run / "metrics.csv").open() as fh:
        last = list(csv.DictReader(fh))[-1]
    statuses = {k: v for k, v in last.items() if k.startswith("status_")}
    assert set(statuses) == {"status_fid", "status_kid", "status_psnr", "status_mi", "status_lbp",
                             "status_diversity", "status_memorisation", "status_prdc", "status_fd"}
    assert all(v.startswith("ok") for k, v in statuses.items() if k not in ("status_fid", "status_kid"))
    assert "leave-one-out" in last["status_memorisation"]
    assert (run / "metrics" / "epoch=0003_closest_to_training.png").is_file()
    assert 0 <= float(last["copy_ratio"]) <= 1 and float(last["collapse"]) in (0, 1)


def test_a_failing_metric_never_stops_training(tmp_path, monkeypatch):
    def broken(*args):
        raise MemoryError("out of memory in metric")

    monkeypatch.setitem(METRICS, "lbp", METRICS["lbp"].__class__(METRICS["lbp"].keys, broken))
    run = tmp_path / "run"
    train(compose_config(run, TINY + ["metrics.names=[psnr,lbp]"]))
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["status_lbp"] == "error: MemoryError: out of memory in metric"
    assert rows[-1]["status_psnr"] == "ok"
    assert len(list((run / "samples" / "epoch=0003").glob("*.png"))) == 10
    assert (run / "checkpoints" / "epoch=0003.ckpt").is_file()
