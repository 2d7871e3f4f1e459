"""Each training stabiliser does what it claims, checked against an independent computation."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn
from torch.func import grad, vmap

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.models import dcgan as dcgan_module
from fetal_dcgan.models.dcgan import DCGAN
from fetal_dcgan.models.diffaugment import AdaptiveProbability, diff_augment
from fetal_dcgan.models.losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from fetal_dcgan.models.networks import Discriminator, MinibatchStdDev


def _fit(model: DCGAN, steps: int, callbacks=(), seed: int = 0) -> None:
    L.seed_everything(seed, verbose=False)
    data = torch.rand(16, 1, 32, 32) * 2 - 1
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2 * steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8))


def test_spectral_norm_bounds_every_layers_top_singular_value():
    d = Discriminator(32, ndf=8, norm="spectral")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    for _ in range(30):  # power iterations run in training forwards
        d(torch.randn(4, 1, 32, 32))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    for conv in convs:
        assert torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2) == pytest.approx(1.0, abs=0.02)
    plain = Discriminator(32, ndf=8, norm="batch")
    assert max(
        torch.linalg.matrix_norm(c.weight.detach().flatten(1), ord=2)
        for c in plain.modules()
        if isinstance(c, nn.Conv2d)
    ) != pytest.approx(1.0, abs=0.02)


def test_dcgan_initialisation_reaches_spectrally_normalised_weights():
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4, d_norm="spectral", init_std=0.02)
    originals = torch.cat(
        [
            m.parametrizations.weight.original.flatten()
            for m in model.discriminator.modules()
            if isinstance(m, nn.Conv2d)
        ]
    )
    assert abs(originals.std() - 0.02) < 2e-3


def test_r1_penalty_equals_per_image_gradients_from_torch_func():
    d = Discriminator(32, ndf=4, norm="none")
    x = torch.randn(5, 1, 32, 32, requires_grad=True)
    ours = r1_penalty(d(x), x, gamma=2.0)
    per_image = vmap(grad(lambda xi: d(xi[None]).sum()))(x.detach())
    reference = 2.0 / 2 * per_image.flatten(1).square().sum(1).mean()
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)
    ours.backward()  # the penalty trains the discriminator: gradients reach its weights
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_wgan_gradient_penalty_equals_torch_func_at_the_same_interpolates():
    d = Discriminator(32, ndf=4, norm="none")
    real, fake = torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)
    torch.manual_seed(7)
    ours = gradient_penalty(d, real, fake, weight=10.0)
    torch.manual_seed(7)
    alpha = torch.rand(4, 1, 1, 1)
    mixed = alpha * real + (1 - alpha) * fake
    norms = vmap(grad(lambda xi: d(xi[None]).sum()))(mixed).flatten(1).norm(dim=1)
    assert ours.item() == pytest.approx((10.0 * (norms - 1).square().mean()).item(), rel=1e-4)


def test_losses_match_their_formulas():
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.5, 0.2, 2.0])
    sig = torch.sigmoid
    bce = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert discriminator_loss("bce", real, fake).item() == pytest.approx(bce.item(), rel=1e-6)
    assert generator_loss("bce", fake).item() == pytest.approx(-torch.log(sig(fake)).mean().item(), rel=1e-6)
    hinge = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx(hinge.item())
    assert discriminator_loss("wgan-gp", real, fake).item() == pytest.approx((fake.mean() - real.mean()).item())
    assert generator_loss("hinge", fake).item() == generator_loss("wgan-gp", fake).item() == -fake.mean().item()


def test_wgan_gp_refuses_a_batchnorm_critic():
    with pytest.raises(ConfigError, match="d_norm=none or spectral"):
        DCGAN(image_size=32, loss="wgan-gp", d_norm="batch")


def test_minibatch_std_appends_the_batch_spread_and_sees_collapse():
    x = torch.randn(6, 3, 4, 4)
    out = MinibatchStdDev()(x)
    assert out.shape == (6, 4, 4, 4) and torch.allclose(out[:, :3], x)
    assert torch.allclose(out[:, 3], x.std(0, unbiased=False).mean().expand(6, 4, 4), atol=1e-6)
    assert MinibatchStdDev()(x[:1].expand(6, -1, -1, -1))[:, 3].abs().max() < 1e-3  # identical images: ~0
    d = Discriminator(32, ndf=4, minibatch_std=True)
    assert d(torch.randn(3, 1, 32, 32)).shape == (3,)


class _Recorder(L.Callback):
    def __init__(self):
        self.generators = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.generators.append({k: v.detach().clone() for k, v in pl_module.generator.state_dict().items()})


def test_ema_weights_are_the_hand_computed_average():
    decay, recorder = 0.8, _Recorder()
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4, ema_decay=decay)
    _fit(model, steps=4, callbacks=[recorder])
    expected = dict(recorder.generators[0])  # the first update copies the weights
    for state in recorder.generators[1:]:
        expected = {
            k: decay * expected[k] + (1 - decay) * state[k] if state[k].is_floating_point() else expected[k]
            for k in state
        }
    averaged = model.generator_ema.module.state_dict()
    for name, value in expected.items():
        if value.is_floating_point():
            assert torch.allclose(averaged[name], value, atol=1e-6), name
    assert not torch.allclose(averaged["main.0.weight"], model.generator.state_dict()["main.0.weight"])
    z = torch.randn(4, 8)
    assert not torch.equal(model.generate(z, generator="ema"), model.generate(z, generator="raw"))
    plain = DCGAN(image_size=32, nz=8, ngf=4, ndf=4)
    assert plain.sampler("ema") is plain.generator  # no average kept: snapshots come from the generator


def test_diffaugment_is_applied_alike_to_real_and_fake_and_never_to_snapshots(monkeypatch):
    calls = []

    def recording(x, operations, p=1.0):
        calls.append((tuple(operations), float(p), x.requires_grad))
        return diff_augment(x, operations, p)

    monkeypatch.setattr(dcgan_module, "diff_augment", recording)
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4, diffaugment=["translation", "cutout"])
    _fit(model, steps=1)
    # D step: real, detached fake; G step: fake with its graph, so the generator learns through the augmentation.
    assert [c[:2] for c in calls] == [(("translation", "cutout"), 1.0)] * 3 and calls[2][2]
    calls.clear()
    plain = DCGAN(image_size=32, nz=8, ngf=4, ndf=4)
    plain.load_state_dict(model.state_dict())
    z = torch.randn(8, 8)
    assert torch.equal(model.generate(z), plain.generate(z)) and not calls


def test_diffaugment_operations_do_what_they_say_and_pass_gradients():
    torch.manual_seed(0)
    x = (torch.rand(6, 1, 16, 16) * 2 - 1).requires_grad_(True)
    bright = diff_augment(x, ["brightness"])
    shift = (bright - x).detach()
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift), atol=1e-6) and shift.abs().max() <= 0.5
    contrast = diff_augment(x, ["contrast"])
    assert torch.allclose(contrast.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-5)
    ones = torch.ones(50, 1, 16, 16)
    cut = diff_augment(ones, ["cutout"])
    zeros = (cut == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() >= 16  # an 8 x 8 square, partly outside the image at most
    moved = diff_augment(ones, ["translation"])
    assert (
        ((moved == 0) | (moved == 1)).all() and (moved == 0).any() and (moved == 1).flatten(1).sum(1).min() >= 14 * 14
    )
    diff_augment(x, ["brightness", "contrast", "translation", "cutout"]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(ones, ["cutout"], p=0.0), ones)
    with pytest.raises(ValueError, match="saturation"):
        diff_augment(ones, ["saturation"])


def test_ada_probability_follows_the_overfitting_heuristic():
    ada = AdaptiveProbability(target=0.6, images_to_full=64, interval=2)
    for _ in range(4):
        ada.update(torch.full((16,), 3.0))  # D is sure every real image is real: r_t = 1 > 0.6
    assert ada.p.item() == pytest.approx(1.0)  # 64 images seen: from 0 to 1, clamped
    for _ in range(2):
        ada.update(torch.full((16,), -1.0))  # r_t = -1 < 0.6
    assert ada.p.item() == pytest.approx(0.5)
    assert "p" in dict(ada.named_buffers())  # checkpointed with the model


def test_ada_needs_operations():
    with pytest.raises(ConfigError, match="diffaugment is empty"):
        DCGAN(image_size=32, ada_target=0.6)


def test_an_old_plain_dcgan_checkpoint_still_loads(tmp_path):
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4)
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, torch.utils.data.DataLoader(torch.rand(8, 1, 32, 32) * 2 - 1, batch_size=8))
    path = tmp_path / "old.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    old_hparams = (
        "image_size",
        "nz",
        "ngf",
        "ndf",
        "lr",
        "lr_g",
        "lr_d",
        "beta1",
        "beta2",
        "real_label",
        "init_std",
        "channels_last",
        "compile",
    )
    checkpoint["hyper_parameters"] = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in old_hparams}
    torch.save(checkpoint, path)
    loaded = DCGAN.load_from_checkpoint(path)
    assert loaded.hparams.loss == "bce" and loaded.generator_ema is None
    z = torch.randn(3, 8)
    assert torch.equal(loaded.generate(z), model.generate(z))


def test_compile_refuses_a_gradient_penalty():
    with pytest.raises(ConfigError, match="double backward"):
        DCGAN(image_size=32, r1_gamma=0.1, compile="default")


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_compile_refuses_cuda_graphs_which_overwrite_the_discriminators_outputs(mode):
    with pytest.raises(ConfigError, match="model.compile=default"):
        DCGAN(image_size=32, compile=mode)
