"""DCGAN generator and discriminator (Radford et al. 2016) for square one-channel images.

Both networks grow by one up/down-sampling block per doubling of the image size, so one
knob (``image_size``) covers DCGAN64, DCGAN128 and DCGAN256. The discriminator returns
logits: the loss applies the sigmoid, which is stable under mixed precision. Its
normalisation is the paper's BatchNorm, spectral normalisation of every convolution
(Miyato et al. 2018; torch's parametrization, no BatchNorm) or none; ``minibatch_std``
adds ProGAN's minibatch standard deviation map before the last layer (Karras et al. 2018),
which lets it see a batch's lack of variety.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fetal_dcgan.utils import check_image_size


def _depth(image_size: int) -> int:
    """Number of stride-2 blocks between 4x4 and the image, besides the last layer."""
    return int(math.log2(check_image_size(image_size))) - 3


class Generator(nn.Module):
    """z (N, nz) or (N, nz, 1, 1) -> images (N, channels, S, S) in [-1, 1]."""

    def __init__(self, image_size: int = 64, nz: int = 100, ngf: int = 64, channels: int = 1):
        super().__init__()
        depth = _depth(image_size)
        width = ngf * 2**depth
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(depth):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.nz = nz
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


D_NORMS = ("batch", "spectral", "none")


class MinibatchStdDev(nn.Module):
    """Appends one feature map: the standard deviation of each feature over the batch,
    averaged (ProGAN), so a batch of near-copies looks different from a real batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = x.float().std(0, unbiased=False).add(1e-8).mean() if len(x) > 1 else x.new_zeros(())
        return torch.cat([x, std.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])], 1)


class Discriminator(nn.Module):
    """images (N, channels, S, S) -> real/fake logits (N,)."""

    def __init__(
        self, image_size: int = 64, ndf: int = 64, channels: int = 1, norm: str = "batch", minibatch_std: bool = False
    ):
        super().__init__()
        if norm not in D_NORMS:
            raise ValueError(f"norm={norm!r}: use one of {', '.join(D_NORMS)}.")
        wrap = nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda conv: conv)
        depth = _depth(image_size)
        layers: list[nn.Module] = [wrap(nn.Conv2d(channels, ndf, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(depth):
            layers += [wrap(nn.Conv2d(width, width * 2, 4, 2, 1, bias=False))]
            layers += [nn.BatchNorm2d(width * 2)] if norm == "batch" else []
            layers += [nn.LeakyReLU(0.2, True)]
            width *= 2
        if minibatch_std:
            layers += [MinibatchStdDev()]
        layers += [wrap(nn.Conv2d(width + int(minibatch_std), 1, 4, 1, 0, bias=False))]
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).flatten()


def init_dcgan_weights(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialisation: convolutions N(0, std), BatchNorm weight N(1, std), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        spectral = nn.utils.parametrize.is_parametrized(module, "weight")
        nn.init.normal_(module.parametrizations.weight.original if spectral else module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, std)
        nn.init.zeros_(module.bias)
