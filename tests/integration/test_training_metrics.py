"""Metrics while training: rows, per-image values, vectors, TensorBoard, and failures that never stop a run."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fetal_dcgan.metrics import METRICS
from fetal_dcgan.metrics.settings import default_metrics
from fetal_dcgan.pipeline import train

from helpers import TINY, compose_config


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
    assert set(statuses) == {f"status_{name}" for name in default_metrics()}
    offline = ("status_fid", "status_kid", "status_anatomy")  # no Inception weights, no measurement model
    assert all(v.startswith("ok") for k, v in statuses.items() if k not in offline), statuses
    assert last["status_anatomy"].startswith("unavailable: no head-measurement model for 32 px")
    assert "leave-one-fetus-out" in last["status_memorisation"]
    assert (run / "metrics" / "epoch=0003_closest_to_training.png").is_file()
    assert 0 <= float(last["copy_ratio"]) <= 1 and float(last["collapse"]) in (0, 1)


def test_a_failing_metric_never_stops_training(tmp_path, monkeypatch):
    def broken(*args):
        raise MemoryError("out of memory in metric")

    monkeypatch.setitem(METRICS, "lbp", dataclasses.replace(METRICS["lbp"], compute=broken))
    run = tmp_path / "run"
    train(compose_config(run, TINY + ["metrics.names=[psnr,lbp]"]))
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["status_lbp"] == "error: MemoryError: out of memory in metric"
    assert rows[-1]["status_psnr"] == "ok"
    assert len(list((run / "samples" / "epoch=0003").glob("*.png"))) == 10
    assert (run / "checkpoints" / "epoch=0003.ckpt").is_file()
