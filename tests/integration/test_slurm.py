"""Sweeps as real Slurm jobs on the single-node cluster of scripts/slurm_local.sh: every
cell a job, array parallelism, a requeued cell that resumes and ends as if never stopped,
a killed cell that fails alone and is the only one a rerun trains, and time limits.
Skipped where no cluster answers (start one with ``sudo scripts/slurm_local.sh``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from helpers import REPO


def _cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return state.returncode == 0 and any(s in state.stdout for s in ("idle", "mix", "alloc"))


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        not _cluster_up(), reason="no Slurm cluster answers here: start one with scripts/slurm_local.sh (as root)"
    ),
]

#: Cells of the smoke preset as jobs of the local cluster, one core each, cheap metrics.
SLURM = [
    "hydra/launcher=slurm_cpu",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=10",
    "metrics.names=[psnr,lbp,diversity]",
]


def command(sweep_dir: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fetal_dcgan.train",
        "-m",
        "experiment=smoke",
        *SLURM,
        f"hydra.sweep.dir={sweep_dir}",
        *args,
    ]


def sweep(sweep_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(sweep_dir, *args), cwd=REPO, env=os.environ.copy(), capture_output=True, text=True, timeout=600
    )


def wait_for(condition, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def running_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True).stdout
    return out.split()


def job_times(array_id: str) -> list[tuple[datetime, datetime]]:
    """(start, end) of each finished task of an array job, from slurmctld."""
    out = subprocess.run(["scontrol", "-o", "show", "job", array_id], capture_output=True, text=True).stdout
    times = []
    for line in out.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        times.append((datetime.fromisoformat(fields["StartTime"]), datetime.fromisoformat(fields["EndTime"])))
    return sorted(times)


def finished(root: Path) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/finished.json"))


def test_every_cell_is_a_slurm_job_one_at_a_time_and_the_report_builds(tmp_path):
    root = tmp_path / "s"
    result = sweep(root, "seed=0", "hydra.launcher.array_parallelism=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert finished(root) == ["0", "1"]
    ids = [yaml.safe_load((root / c / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"] for c in "01"]
    assert all(re.fullmatch(r"\d+_[01]", i) for i in ids) and ids[0].split("_")[0] == ids[1].split("_")[0]
    assert f"(Slurm job {ids[0]})" in (root / "0" / "train.log").read_text()
    (first_start, first_end), (second_start, _) = job_times(ids[0].split("_")[0])
    assert second_start >= first_end  # array_parallelism=1: never two cells at once
    assert "warn" not in (result.stdout + result.stderr).lower()  # status polling is quiet
    report = subprocess.run(
        [sys.executable, "-m", "fetal_dcgan.report", str(root)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert (root / "report" / "report.html").is_file()


def test_a_requeued_cell_resumes_and_ends_as_an_uninterrupted_run(tmp_path):
    cell = ["data.n=20", "seed=0", "trainer.max_epochs=10", "checkpoint_every=1", "sampling.epochs=[5]"]
    root = tmp_path / "s"
    process = subprocess.Popen(
        command(root, *cell),
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: (root / "0" / "checkpoints" / "last.ckpt").is_file(), "the first checkpoint")
        job = wait_for(running_jobs, "the running job")[0]
        subprocess.run(["scontrol", "requeue", job], check=True)
        output, _ = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, output[-3000:]
    log = (root / "0" / "train.log").read_text()
    assert log.count("Continuing from") >= 1 and log.count("Run directory") >= 2

    alone = tmp_path / "alone"
    subprocess.run(
        [sys.executable, "-m", "fetal_dcgan.train", "experiment=smoke", SLURM[-1], *cell, f"hydra.run.dir={alone}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert (root / "0" / "metrics.csv").read_text() == (alone / "metrics.csv").read_text()


def test_a_killed_cell_fails_alone_and_a_rerun_trains_only_it(tmp_path):
    root = tmp_path / "s"
    process = subprocess.Popen(
        command(root, "seed=0", "trainer.max_epochs=8"),
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: (root / "1" / "train.log").is_file() and len(running_jobs()) == 2, "both cells running")
        job = next(j for j in running_jobs() if j.endswith("_1"))
        subprocess.run(["scancel", "--signal=KILL", "--full", job], check=True)
        output, _ = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode != 0 and job in output  # the launcher reports the failed cell
    assert finished(root) == ["0"]
    kept = (root / "0" / "finished.json").stat().st_mtime_ns

    again = sweep(root, "seed=0", "trainer.max_epochs=8")
    assert again.returncode == 0, again.stderr[-3000:]
    assert finished(root) == ["0", "1"]
    assert (root / "0" / "finished.json").stat().st_mtime_ns == kept  # the finished cell was not trained again
    assert "already finished 8 epochs: skipping it" in (root / "0" / "train.log").read_text()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # each requeued job waits about 2 minutes (Slurm's BeginTime) before it starts again
def test_a_cell_longer_than_its_time_limit_is_requeued_until_done(tmp_path):
    """Slurm signals the job before its time limit; submitit requeues it and the run resumes.
    Slurm may signal up to a minute early, so the limit is 3 minutes with the signal 1 minute
    before it (a shorter one can arrive before Python has started), and the cell longer."""
    root = tmp_path / "s"
    result = sweep(
        root,
        "data.n=40",
        "seed=0",
        "data.image_size=64",
        "model.ngf=32",
        "model.ndf=32",
        "trainer.max_epochs=60",
        "checkpoint_every=2",
        "sampling.epochs=[]",
        "hydra.launcher.timeout_min=3",
        "hydra.launcher.signal_delay_s=60",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert finished(root) == ["0"]
    assert (root / "0" / "train.log").read_text().count("Continuing from") >= 1
