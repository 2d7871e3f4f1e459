"""report plan on a real 3-replicate smoke pilot: margins measured when missing, replicates per
cell and their cost per primary endpoint; a sweep that cannot be a pilot exits 2 saying why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fetal_dcgan.report.__main__ import main as report_main


@pytest.fixture(scope="module")
def pilot(tmp_path_factory) -> Path:
    """The smoke grid at 2 epochs with 3 seeds a cell (6 runs), no margins measured yet."""
    root = tmp_path_factory.mktemp("pilot")
    env = {**os.environ, "FETAL_DCGAN_CACHE": str(tmp_path_factory.getbasetemp() / "cache")}
    command = [sys.executable, "-m", "fetal_dcgan.train", "-m", "experiment=smoke", "seed=0,1,2"]
    command += ["trainer.max_epochs=2", "sampling.epochs=[2]", "metrics.names=[psnr,mi,lbp]"]
    command += [f"hydra.sweep.dir={root / 'sweep'}"]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "sweep"


def test_plan_from_a_fresh_pilot(pilot, capsys):
    assert not (pilot / "margins.json").exists()
    assert report_main(["plan", str(pilot)]) == 0
    printed = capsys.readouterr().out
    assert (pilot / "margins.json").is_file()  # measured first: gap and real need only the pilot
    table = pd.read_csv(pilot / "plan.csv").set_index("metric")
    assert list(table.index) == ["fid", "psnr_mean", "mi_mean", "lbp_l1"]  # the declared endpoints
    assert "no finite values" in table.loc["fid", "note"]  # a declared endpoint the pilot did not score: said
    for metric in ("psnr_mean", "mi_mean", "lbp_l1"):
        row = table.loc[metric]
        assert row.margin_source in ("gap", "real") and row.sd_ci_low < row.sd_runs < row.sd_ci_high
        assert bool(row.blocked_by_seed) and row.sd_df == 2  # seeds 0-2 at both n: (2 - 1) x (3 - 1)
        assert row.replicates_differs >= 2 and row.replicates_equivalent >= 2
        assert row.hours_differs > 0 and row.hours_differs == pytest.approx(
            row.replicates_differs * 2 * json.loads((pilot / "plan.json").read_text())["seconds_per_run"] / 3600
        )
    assert "lbp_l1" in printed and "r differs" in printed and "min in the pilot" in printed
    assert report_main(["plan", str(pilot), "--levels", "5"]) == 0
    assert json.loads((pilot / "plan.json").read_text())["levels"] == 5


def test_a_sweep_with_one_run_a_cell_is_no_pilot(pilot, tmp_path, capsys):
    single = tmp_path / "single"
    for job in ("0", "3"):  # seed 0 at n = 20 and at n = 40
        shutil.copytree(pilot / job, single / job)
    assert report_main(["plan", str(single)]) == 2
    error = capsys.readouterr().err
    assert "cannot serve as a pilot" in error and "2+ replicates a cell" in error
    assert report_main(["plan", str(pilot), "--factor", "lr"]) == 2
    assert "does not vary" in capsys.readouterr().err
