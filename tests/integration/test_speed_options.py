"""Speed options of the training path: resident batches, channels_last, torch.compile, bf16.

They must change how fast a run goes, never what it learns: each option's run is compared
with the plain run of the same seed. The CUDA-only side (fused Adam, the GPU timings) is
in test_gpu.py and scripts/gpu_check.sh.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fetal_dcgan.data.datamodule import ShuffledBatches
from fetal_dcgan.data.preprocess import read_image_set
from fetal_dcgan.models.dcgan import DCGAN
from fetal_dcgan.pipeline import train

from helpers import TINY, compose_config

FAST = TINY + ["metrics.names=[psnr]", "stabiliser=baseline"]  # the compiled step has no double backward (R1)


def test_shuffled_batches_serve_every_image_once_an_epoch_in_a_new_order():
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1)
    batches = ShuffledBatches(images, batch_size=16)
    torch.manual_seed(0)
    epochs = [[b.flatten().tolist() for b in batches] for _ in range(2)]
    assert len(batches) == 4 and [len(b) for b in epochs[0]] == [16, 16, 16, 2]
    for epoch in epochs:
        assert sorted(sum(epoch, [])) == list(range(50))
    assert epochs[0] != epochs[1]
    torch.manual_seed(0)
    assert [b.flatten().tolist() for b in batches] == epochs[0]  # the seed fixes the order
    assert all(b.device == images.device for b in batches)


def _one_step(option: str) -> tuple[torch.Tensor, ...]:
    """Generated images, discriminator loss and its gradients for one fixed batch."""
    torch.manual_seed(0)
    model = DCGAN(
        image_size=32,
        nz=16,
        ngf=8,
        ndf=8,
        channels_last=option == "channels_last",
        compile="default" if option == "compile" else None,
    )
    model.configure_model()
    real = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=option == "bf16"):
        fake = model.generator(z)
        logits = torch.cat([model.discriminator(real), model.discriminator(fake)])
        loss = F.binary_cross_entropy_with_logits(logits.float(), torch.cat([torch.ones(8), torch.zeros(8)]))
    loss.backward()
    return fake.float().detach(), loss.detach(), *[p.grad for p in model.discriminator.parameters()]


@pytest.mark.parametrize(
    "option, tolerance",
    [
        ("channels_last", 1e-5),
        pytest.param("compile", 1e-4, marks=pytest.mark.slow),  # fused kernels round differently; 36 s to compile
        ("bf16", 0.15),  # bf16 activations: images off by 0.6 %, weight gradients by up to 10 % (in norm)
    ],
)
def test_speed_options_compute_what_the_plain_networks_compute(option, tolerance):
    for plain, fast in zip(_one_step("plain"), _one_step(option)):
        assert torch.linalg.vector_norm(fast - plain) / torch.linalg.vector_norm(plain) < tolerance


@pytest.mark.parametrize(
    "option", ["model.channels_last=true", "model.compile=default", "trainer.precision=bf16-mixed"]
)
def test_speed_options_train_end_to_end_with_plain_checkpoints(tmp_path, option):
    record = train(compose_config(tmp_path, FAST + [option]))
    assert record.last_metrics["status_psnr"] == "ok"
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    plain = DCGAN(image_size=32, nz=16, ngf=8, ndf=8).state_dict()
    assert list(state) == list(plain)  # plain parameter names: checkpoints stay interchangeable
    if "channels_last" in option:
        assert state["discriminator.main.2.weight"].is_contiguous(memory_format=torch.channels_last)
    images = read_image_set(sorted((tmp_path / "samples" / "epoch=0003").glob("*.png"))).float()
    assert images.std(dim=(1, 2, 3)).min() > 1  # images, not a constant
