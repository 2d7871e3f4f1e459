"""The diffusion model's own parts, against formulas written out here: the DDIM step with the
noise re-derived from the clipped clean image (GLIDE's, improved-diffusion's), and the
weight average's warm-up."""

from __future__ import annotations

import pytest
import torch
from monai.networks.schedulers import DDIMScheduler
from torch.optim.swa_utils import AveragedModel

from fetal_dcgan.models.ddpm import ConsistentDDIMScheduler, warmed_up_ema


def _schedulers(steps: int = 50) -> tuple[DDIMScheduler, ConsistentDDIMScheduler]:
    pair = DDIMScheduler(num_train_timesteps=1000), ConsistentDDIMScheduler(num_train_timesteps=1000)
    for scheduler in pair:
        scheduler.set_timesteps(steps)
    return pair


def _glide_step(noise: torch.Tensor, t: int, prev: int, x: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM step as GLIDE writes it: clip x0, re-derive the noise, step."""
    a, a_prev = alphas[t].double(), (alphas[prev].double() if prev >= 0 else torch.tensor(1.0, dtype=torch.float64))
    x, noise = x.double(), noise.double()
    clean = ((x - (1 - a).sqrt() * noise) / a.sqrt()).clamp(-1, 1)
    noise = (x - a.sqrt() * clean) / (1 - a).sqrt()
    return a_prev.sqrt() * clean + (1 - a_prev).sqrt() * noise


@pytest.mark.parametrize("t", [999, 500, 20])
def test_the_ddim_step_re_derives_the_noise_from_the_clipped_clean_image(t):
    monai, ours = _schedulers()
    gen = torch.Generator().manual_seed(t)
    x, noise = torch.randn(4, 1, 8, 8, generator=gen), 1.3 * torch.randn(4, 1, 8, 8, generator=gen)
    prev = t - 1000 // 50
    stepped, _ = ours.step(noise, t, x)
    torch.testing.assert_close(stepped.double(), _glide_step(noise, t, prev, x, ours.alphas_cumprod), rtol=0, atol=1e-4)
    assert not torch.allclose(stepped, monai.step(noise, t, x)[0], atol=1e-3)  # where clipping acts, MONAI's differs


def test_where_nothing_is_clipped_the_step_is_monais():
    monai, ours = _schedulers()
    clean = 0.5 * torch.rand(2, 1, 8, 8) - 0.25
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a = ours.alphas_cumprod[400]
    x = a.sqrt() * clean + (1 - a).sqrt() * noise  # the model's noise is exact: x0 stays in [-1, 1]
    torch.testing.assert_close(ours.step(noise, 400, x)[0], monai.step(noise, 400, x)[0], rtol=0, atol=1e-5)


def test_the_weight_average_warms_up():
    net = torch.nn.Linear(3, 2)
    average = AveragedModel(net, avg_fn=warmed_up_ema(0.999), use_buffers=True)
    expected = None
    for k in range(30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        average.update_parameters(net)
        current = [p.detach().clone() for p in net.parameters()]
        rate = min(0.999, (1 + k) / (10 + k))  # k: updates before this one; the first copies
        expected = current if expected is None else [rate * e + (1 - rate) * c for e, c in zip(expected, current)]
    for got, want in zip(average.module.parameters(), expected):
        torch.testing.assert_close(got, want)
