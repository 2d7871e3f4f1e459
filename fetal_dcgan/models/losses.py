"""GAN losses on discriminator logits, and the gradient penalties.

``bce``: the DCGAN paper's loss, with the non-saturating generator loss (-log D(G(z)))
and an optional one-sided smoothed real target. ``hinge``: Lim & Ye 2017 as used with
spectral normalisation (Miyato et al. 2018). ``wgan-gp``: the Wasserstein critic loss
with a gradient penalty on random interpolates (Gulrajani et al. 2017), which needs a
discriminator without BatchNorm. ``r1_penalty``: the R1 penalty on real images
(Mescheder et al. 2018), applied lazily by the caller.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge", "wgan-gp")


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """The discriminator's loss from its logits on real and on generated images."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(
            real, torch.full_like(real, real_label)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if kind == "wgan-gp":
        return fake.mean() - real.mean()
    raise ValueError(f"loss={kind!r}: use one of {', '.join(LOSSES)}.")


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss from the discriminator's logits on its images."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind in ("hinge", "wgan-gp"):
        return -fake.mean()
    raise ValueError(f"loss={kind!r}: use one of {', '.join(LOSSES)}.")


def _input_gradient_norms(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """||d outputs_i / d inputs_i||^2 per sample, kept in the graph (create_graph)."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.flatten(1).square().sum(1)


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma / 2 * E ||grad_x D(x)||^2 over real images ``real_inputs`` (which must require grad)."""
    return gamma / 2 * _input_gradient_norms(real_logits, real_inputs).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0
) -> torch.Tensor:
    """weight * E (||grad D(x_hat)|| - 1)^2 at random interpolates x_hat of real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    norms = _input_gradient_norms(critic(mixed), mixed).add(1e-12).sqrt()
    return weight * (norms - 1).square().mean()
