"""Real Hydra sweeps of the smoke preset: launchers, Optuna, and resuming a crashed sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO


def sweep(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fetal_dcgan.train", "-m", "experiment=smoke", *args],
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def finished_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/finished.json"))


def test_shared_gpu_jobs_run_cells_in_parallel_with_their_share(tmp_path):
    """jobs=shared_gpu (joblib workers, each with a memory share and a thread budget); on
    this CPU-only machine the memory share is not applied but the rest runs as on a GPU."""
    result = sweep(
        tmp_path, "jobs=shared_gpu", "hydra.launcher.n_jobs=2", "cpu_threads=1", f"hydra.sweep.dir={tmp_path / 's'}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = finished_runs(tmp_path / "s")
    assert len(runs) == 4
    assert "Joblib.Parallel(n_jobs=2" in result.stderr + result.stdout
    config = yaml.safe_load((runs[0] / "config.yaml").read_text())
    assert config["gpu_memory_fraction"] == 0.18 and config["cpu_threads"] == 1


@pytest.mark.slow  # 30 s; the Slurm tests (make test-slurm, run by CI) drive submitit for real
def test_submitit_local_launcher(tmp_path):
    result = sweep(
        tmp_path,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "seed=0",
        f"hydra.sweep.dir={tmp_path / 's'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = finished_runs(tmp_path / "s")
    assert len(runs) == 2  # seed=0 on the command line narrows the preset's grid
    assert list((tmp_path / "s" / ".submitit").glob("*/*_result.pkl"))  # ran through submitit


def test_optuna_search_returns_the_objective(tmp_path):
    result = sweep(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 's'}")
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "s" / "optimization_results.yaml").read_text())
    values = [
        json.loads((r / "finished.json").read_text())["last_metrics"]["lbp_l1"] for r in finished_runs(tmp_path / "s")
    ]
    assert best["best_value"] == pytest.approx(min(float(v) for v in values))


def test_a_crashed_sweep_restarted_with_the_same_command_finishes_without_retraining(tmp_path):
    flag = tmp_path / "crash-once"
    flag.touch()
    crash = [
        "+callbacks.crash._target_=helpers.CrashAtEpoch",
        "+callbacks.crash.epoch=3",
        f"+callbacks.crash.flag={flag}",
        "+callbacks.crash.seed=${seed}",
        "+callbacks.crash.when_seed=1",
    ]
    env = {"PYTHONPATH": str(REPO / "tests")}
    first = sweep(tmp_path, *crash, env=env)
    assert first.returncode != 0 and "simulated crash at epoch 3" in first.stderr
    root = tmp_path / "multirun" / "smoke"
    # Job 1 died after its epoch-2 checkpoint; Hydra ran the other cells, then failed the sweep.
    assert [r.name for r in finished_runs(root)] == ["0", "2", "3"]
    done_before = (root / "0" / "finished.json").stat().st_mtime_ns
    snapshot_before = (root / "1" / "samples" / "epoch=0002" / "0000.png").stat().st_mtime_ns

    second = sweep(tmp_path, *crash, env=env)  # the same command
    assert second.returncode == 0, second.stderr[-3000:]
    assert [r.name for r in finished_runs(root)] == ["0", "1", "2", "3"]
    assert (root / "0" / "finished.json").stat().st_mtime_ns == done_before
    assert "already finished 4 epochs: skipping" in second.stderr + second.stdout
    assert "Continuing from" in (root / "1" / "train.log").read_text()
    assert (root / "1" / "samples" / "epoch=0002" / "0000.png").stat().st_mtime_ns == snapshot_before
