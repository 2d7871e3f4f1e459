"""Network shapes, initialisation, and one real optimisation step through Lightning."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.models.dcgan import DCGAN
from fetal_dcgan.models.networks import Discriminator, Generator


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_shapes(size):
    g, d = Generator(size, nz=16, ngf=4), Discriminator(size, ndf=4)
    images = g(torch.randn(3, 16))
    assert images.shape == (3, 1, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images).shape == (3,)
    # One more up/down block per doubling.
    n_up = sum(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    assert n_up == int(torch.log2(torch.tensor(size))) - 1


def test_paper_widths_at_64px():
    g, d = Generator(64), Discriminator(64)
    assert [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)] == [512, 256, 128, 64, 1]
    assert [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512, 1]


def test_bad_size():
    with pytest.raises(ConfigError, match="power of two"):
        Generator(96)


def test_dcgan_initialisation():
    model = DCGAN(image_size=64, ngf=64, ndf=64)
    convs = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    bn = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(convs.mean()) < 1e-3 and abs(convs.std() - 0.02) < 1e-3
    assert abs(bn.mean() - 1) < 5e-3 and abs(bn.std() - 0.02) < 5e-3


def test_discriminator_returns_logits_not_probabilities():
    d = Discriminator(32, ndf=4)
    assert not isinstance(list(d.main)[-1], nn.Sigmoid)


def test_one_training_step_changes_both_networks(tmp_path):
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = torch.rand(8, 1, 32, 32) * 2 - 1
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, loader)
    after = model.state_dict()
    for prefix in ("generator.", "discriminator."):
        weights = [k for k in before if k.startswith(prefix) and k.endswith("weight")]
        assert all(not torch.equal(before[k], after[k]) for k in weights), prefix
    logged = trainer.logged_metrics
    assert {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"} <= set(logged)
    assert all(torch.isfinite(v) for v in logged.values())


def test_separate_learning_rates():
    model = DCGAN(image_size=32, ngf=4, ndf=4, lr=1e-3, lr_d=5e-4)
    opt_g, opt_d = model.configure_optimizers()
    assert opt_g.param_groups[0]["lr"] == 1e-3 and opt_d.param_groups[0]["lr"] == 5e-4
    assert opt_g.param_groups[0]["betas"] == (0.5, 0.999)


def test_generate_is_uint8_and_deterministic():
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4)
    z = model.noise(5, generator=torch.Generator().manual_seed(1))
    a, b = model.generate(z), model.generate(z)
    assert a.dtype == torch.uint8 and a.shape == (5, 1, 32, 32)
    torch.testing.assert_close(a, b)
    assert model.generator.training  # generation leaves the training mode as it was


def test_batch_statistics_generation_leaves_running_statistics_alone():
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4)
    before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    z = model.noise(6, generator=torch.Generator().manual_seed(2))
    batch, running = model.generate(z, "batch"), model.generate(z, "running")
    assert all(torch.equal(before[k], v) for k, v in model.generator.state_dict().items())
    assert not torch.equal(batch, running)
    with torch.no_grad():
        model.generator.train()
        expected = model.generator(z).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    torch.testing.assert_close(batch, expected, rtol=0, atol=1)
