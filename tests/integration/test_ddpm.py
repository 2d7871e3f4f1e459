"""The diffusion model in the framework: trained by Lightning on the same data, snapshotted,
scored and resumed exactly as the DCGAN is, and compared with it in one sweep's report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.models.ddpm import DDPM
from fetal_dcgan.pipeline import train
from fetal_dcgan.report.__main__ import main as report_main

from helpers import compose_config

SMOKE = ["experiment=ddpm_smoke", "model=ddpm"]
ONE_SNAPSHOT = ["trainer.max_epochs=2", "sampling.epochs=[]"]


def _images(run: Path, epoch: int) -> list[bytes]:
    return [p.read_bytes() for p in sorted((run / "samples" / f"epoch={epoch:04d}").glob("*.png"))]


def test_the_ddpm_smoke_preset_trains_snapshots_scores_and_resumes_bit_for_bit(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    train(compose_config(straight, SMOKE))
    crash = ["+callbacks.crash._target_=helpers.CrashAtEpoch", "+callbacks.crash.epoch=3"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_config(interrupted, SMOKE + crash))
    assert not (interrupted / "samples" / "epoch=0004").exists()
    train(compose_config(interrupted, SMOKE))

    a, b = (torch.load(run / "checkpoints" / "last.ckpt", weights_only=False) for run in (straight, interrupted))
    assert a["global_step"] == b["global_step"] == 4 * 2  # 20 images in batches of 16: 2 steps an epoch
    assert any(k.startswith("unet_ema.") for k in a["state_dict"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert _images(straight, 4) == _images(interrupted, 4) and len(_images(straight, 4)) == 16

    metrics = pd.read_csv(straight / "metrics.csv")
    assert metrics["generator"].tolist() == ["ddpm", "ddpm"] and metrics["epoch"].tolist() == [2, 4]
    assert metrics["kimg"].tolist() == [0.04, 0.08] and metrics["status_lbp"].str.startswith("ok").all()
    assert metrics["lbp_l1"].notna().all() and metrics["ms_ssim_fake"].notna().all()
    events = EventAccumulator(str(straight / "tensorboard")).Reload()
    assert "train/loss" in events.Tags()["scalars"] and "samples/fixed_noise" in events.Tags()["images"]
    restored = DDPM.load_from_checkpoint(straight / "checkpoints" / "epoch=0004.ckpt", weights_only=True)
    z = restored.noise(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(restored.generate(z), restored.generate(z))  # DDIM with eta 0: the noise fixes the set


def test_unet_settings_that_do_not_fit_together_are_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="norm_num_groups"):
        train(compose_config(tmp_path / "run", SMOKE + ["model.channels=[12,32]"]))
    with pytest.raises(ConfigError, match="one per level"):
        train(compose_config(tmp_path / "run", SMOKE + ["model.attention_levels=[false]"]))
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_the_generators_sweep_reports_a_generator_factor(tmp_path):
    """experiment=generators at smoke scale: the DCGAN and the DDPM over the same n and seeds."""
    env = {**os.environ}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fetal_dcgan.train",
            "-m",
            "experiment=generators_smoke",
            "trainer.max_epochs=2",
            "sampling.epochs=[]",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "multirun" / "generators_smoke"
    assert report_main([str(sweep), "--out", str(tmp_path / "report")]) == 0
    results = pd.read_csv(tmp_path / "report" / "results.csv")
    assert sorted(results["generator"].unique()) == ["dcgan", "ddpm"]
    assert results.groupby("generator")["run"].nunique().tolist() == [2, 2]
    stats = pd.read_csv(tmp_path / "report" / "stats.csv")
    assert set(stats["factor"]) == {"generator"}  # each generator's own lr follows it
    runs = stats[(stats["factor"] == "generator") & (stats["design"] == "runs") & stats["p_value"].notna()]
    assert not runs.empty and (runs["replicates_per_group"] == 2).all()
    assert "lr follows generator" in (tmp_path / "report" / "report.html").read_text()
