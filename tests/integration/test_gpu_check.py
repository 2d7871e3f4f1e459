"""scripts/gpu_check.sh rehearsed on the CPU, so that a broken step shows here and not in
the few minutes a GPU machine is lent: every step writes non-empty results, the checkout
stays clean, and a step that produces nothing fails the script by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REHEARSAL = {
    "ACCELERATOR": "cpu",
    "SIZES": "64",
    "VARIANTS": "fp32 bf16",
    "COMPILED": "",  # torch.compile is tested on the CPU by test_speed_options.py
    "STEPS": "3",
    "GRID_EPOCHS": "2",
    "GRID_ARGS": "data.n=20,40 sampling.n_images=40",
    # without --random-inception: Inception at 299 px on every rotated training image takes minutes on a CPU
    "SUITE_ARGS": "anatomy.epochs=1 data.reference_n=100 metrics.ci_resamples=4 --n-fake 100",
    "PYTHON": sys.executable,
}
OUTPUTS = [
    "machine.txt",
    "gpu_tests.log",
    "bench_train.jsonl",
    "bench_metrics.jsonl",
    "paper64.log",
    "paper64_phases.json",
    "paper64_samples.png",
]


def rehearse(out: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **REHEARSAL, **settings, "OUT": str(out)}
    env.pop("FETAL_DCGAN_CACHE", None)
    return subprocess.run(
        ["bash", "scripts/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500
    )


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True, text=True
    ).stdout


@pytest.mark.slow
def test_the_rehearsal_runs_every_step_and_leaves_the_checkout_clean(tmp_path):
    before = git_status()
    done = rehearse(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every step wrote its results" in done.stdout
    assert git_status() == before
    written = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert all(written.get(name, 0) > 0 for name in OUTPUTS), written
    assert len(written) <= 8  # what a device call brings back
    assert "passed" in (tmp_path / "gpu_tests.log").read_text()
    train = [json.loads(line) for line in (tmp_path / "bench_train.jsonl").read_text().splitlines()]
    assert [(r["image_size"], r["precision"]) for r in train] == [(64, "32-true"), (64, "bf16-mixed")]
    suite = [json.loads(line) for line in (tmp_path / "bench_metrics.jsonl").read_text().splitlines()][-1]
    assert suite["status"]["anatomy"].startswith("ok") and suite["seconds"]["later_set"]["total"] > 0
    phases = json.loads((tmp_path / "paper64_phases.json").read_text())
    assert phases["runs"] == 2 and len(phases["extrapolated"]["per_run"]) == 2


@pytest.mark.slow
def test_a_step_that_produces_nothing_fails_the_check_by_name(tmp_path):
    done = rehearse(tmp_path, PARTS="grid", GRID_SECONDS="1")  # the sweep is stopped before any run ends
    assert done.returncode == 1
    assert "gpu_check FAILED: grid:" in done.stdout
