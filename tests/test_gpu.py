"""GPU paths: run only where CUDA is available (scripts/gpu_check.sh on a GPU machine)."""

from __future__ import annotations

import pytest
import torch

from fetal_dcgan.metrics import MetricSuite
from fetal_dcgan.train import train

from conftest import TINY, compose_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_training_on_the_gpu(tmp_path, precision):
    settings = [s for s in TINY if s != "trainer=cpu"] + ["trainer=gpu", f"trainer.precision={precision}"]
    record = train(compose_config(tmp_path, settings))
    assert record["last_metrics"]["status_psnr"] == "ok"
    assert len(list((tmp_path / "samples" / "epoch=0003").glob("*.png"))) == 10


def test_metrics_agree_between_cpu_and_gpu():
    fake = torch.randint(0, 256, (40, 1, 32, 32), dtype=torch.uint8)
    real = torch.randint(0, 256, (30, 1, 32, 32), dtype=torch.uint8)
    cpu = MetricSuite(["psnr", "mi", "lbp"], device="cpu").score(fake, real).scalars
    gpu = MetricSuite(["psnr", "mi", "lbp"], device="cuda").score(fake, real).scalars
    assert cpu == pytest.approx(gpu, rel=1e-9)
