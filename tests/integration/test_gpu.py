"""GPU paths: run where CUDA is available (scripts/gpu_check.sh on a GPU machine); their
settings are checked everywhere."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from fetal_dcgan.metrics import MetricSuite
from fetal_dcgan.metrics.features import RandomConvFeatures
from fetal_dcgan.pipeline import train

from helpers import TINY, compose_config

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
#: Speed options trained on the GPU (compile: without R1, whose double backward it cannot take).
GPU_OPTIONS = [
    ["trainer.precision=32-true"],
    ["trainer.precision=bf16-mixed"],
    ["model.channels_last=true", "model.compile=default", "stabiliser=baseline"],
]


def gpu_settings(options: list[str]) -> list[str]:
    return [s for s in TINY if s != "trainer=cpu"] + ["trainer=gpu", *options]


@pytest.mark.parametrize("options", GPU_OPTIONS)
def test_the_gpu_settings_are_valid_without_a_gpu(tmp_path, options):
    """Caught here, not in the few minutes a GPU machine is lent: each setting composes and builds its model."""
    instantiate(compose_config(tmp_path, gpu_settings(options)).model)


@needs_gpu
@pytest.mark.parametrize("options", GPU_OPTIONS)
def test_training_on_the_gpu(tmp_path, options):
    record = train(compose_config(tmp_path, gpu_settings(options)))
    assert record.last_metrics["status_psnr"] == "ok"
    assert len(list((tmp_path / "samples" / "epoch=0003").glob("*.png"))) == 10


@needs_gpu
def test_training_batches_live_on_the_gpu(tmp_path):
    from fetal_dcgan.data.datamodule import ShuffledBatches

    images = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8).cuda()
    assert all(batch.is_cuda for batch in ShuffledBatches(images, 16))


def _images(n: int, seed: int) -> torch.Tensor:
    base = torch.linspace(0, 255, 32).view(1, 1, 1, 32).expand(n, 1, 32, 32)
    noise = torch.randint(-60, 60, (n, 1, 32, 32), generator=torch.Generator().manual_seed(seed))
    return (base + noise).clamp(0, 255).to(torch.uint8)


@needs_gpu
def test_metrics_agree_between_cpu_and_gpu():
    fake, real, train_images, held_out = _images(40, 1), _images(30, 2), _images(25, 3), _images(22, 4)
    names = ["psnr", "mi", "lbp", "diversity", "memorisation", "prdc", "fd"]
    scores = {}
    for device in ("cpu", "cuda"):
        suite = MetricSuite(names, device=device, feature_extractor=RandomConvFeatures(), ci_resamples=8)
        scores[device] = suite.score(fake, real, train_images, held_out)
    cpu, gpu = scores["cpu"], scores["cuda"]
    assert all(status.startswith("ok") for status in gpu.status.values()), gpu.status
    exact = [k for k in cpu.scalars if k.startswith(("psnr", "mi_", "nmi", "lbp_")) and "_ci_" not in k]
    assert {k: gpu.scalars[k] for k in exact} == pytest.approx({k: cpu.scalars[k] for k in exact}, rel=1e-9)
    # float32 features and convolutions (cuDNN may use TF32) round differently on the GPU
    assert gpu.scalars == pytest.approx(cpu.scalars, rel=1e-2, abs=0.05, nan_ok=True)
