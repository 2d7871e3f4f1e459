"""A metric added as one module (metrics.modules) reaches every output with no other edit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fetal_dcgan.evaluate import main as evaluate_main
from fetal_dcgan.metrics import METRICS
from fetal_dcgan.pipeline import train
from fetal_dcgan.report import figures
from fetal_dcgan.report.build import build_report
from fetal_dcgan.report.collect import load_sweep
from fetal_dcgan.runs import RunLayout

from helpers import REPO, TINY, compose_config, folder_of_noise

TOY_MODULE = '''
"""A toy metric: the gap between the mean grey levels of the two sets."""
from dataclasses import dataclass

from fetal_dcgan.metrics.registry import Key, register_metric
from fetal_dcgan.rules import number_in, setting


@dataclass
class ToyOptions:
    scale: float = setting(1.0, number_in(0, 10, low_open=True), "1.0", "the gap is multiplied by this")


@register_metric("toy", "gap between mean grey levels", (
    Key("toy_gap", "|mean grey level of S - mean grey level of R|", better="lower", unit="grey levels",
        plotted=True),
    Key("toy_brightness", "mean grey level of the image", level="image")),
    options=ToyOptions)
def toy(ctx):
    gap = ctx.options.scale * float(ctx.fake.float().mean() - ctx.real.float().mean())
    return {"scalars": {"toy_gap": abs(gap)}, "per_image": {"toy_brightness": ctx.fake.float().mean((1, 2, 3)).numpy()}}
'''


@pytest.fixture
def toy_metric(tmp_path, monkeypatch) -> Path:
    """A folder holding the module ``toy_metric``, importable here; unregistered afterwards."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy_metric.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    yield tmp_path / "plugins"
    METRICS.pop("toy", None)
    sys.modules.pop("toy_metric", None)


def test_a_metric_added_as_one_module_reaches_every_output(tmp_path, toy_metric):
    run = tmp_path / "run"
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "fetal_dcgan.train",
            *TINY,
            "metrics.names=[psnr,toy]",
            "metrics.modules=[toy_metric]",
            "sampling.epochs=[1,2]",
            f"hydra.run.dir={run}",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(toy_metric)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    layout = RunLayout(run)
    rows = pd.read_csv(layout.metrics_csv)
    assert rows["toy_gap"].notna().all() and (rows["status_toy"] == "ok").all()
    assert "toy_brightness" in pd.read_csv(layout.per_image_csv)
    tags = EventAccumulator(str(layout.tensorboard)).Reload().Tags()["scalars"]
    assert "metrics/toy_gap" in tags

    paths = build_report(run, tmp_path / "report")
    results = pd.read_csv(paths["results"])
    assert "toy_gap" in results and "toy_gap" in pd.read_csv(paths["stats"])["metric"].tolist()
    assert "toy_gap" in figures.plottable(load_sweep(run).results)
    assert "toy_gap" in paths["html"].read_text()

    out = tmp_path / "scores.json"
    assert (
        evaluate_main(
            [
                "--real",
                str(folder_of_noise(tmp_path / "real", 6)),
                "--fake",
                str(layout.samples(2)),
                "--modules",
                "toy_metric",
                "--metrics",
                "psnr",
                "toy",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    scores = json.loads(out.read_text())
    assert scores["toy_gap"] >= 0 and len(scores["per_image"]["toy_brightness"]) == 10


def test_a_metric_module_that_cannot_be_imported_is_a_config_error(tmp_path):
    from fetal_dcgan.errors import ConfigError

    with pytest.raises(ConfigError, match="metrics.modules: cannot import 'no_such_module'"):
        train(compose_config(tmp_path / "run", TINY + ["metrics.modules=[no_such_module]"]))
    assert not (tmp_path / "run").exists()


def test_a_metrics_declared_options_are_checked_with_the_rest_of_the_config(tmp_path, toy_metric):
    from fetal_dcgan.checks import check_config
    from fetal_dcgan.errors import ConfigError

    settings = [*TINY, "metrics.names=[psnr,toy]", "metrics.modules=[toy_metric]"]
    check_config(compose_config(tmp_path, [*settings, "+metrics.toy.scale=2.0"]))
    with pytest.raises(ConfigError, match=r"metrics\.toy\.scale=0: use a number in \(0, 10\]"):
        check_config(compose_config(tmp_path, [*settings, "+metrics.toy.scale=0"]))
