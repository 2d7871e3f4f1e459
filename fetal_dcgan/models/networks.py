"""DCGAN generator and discriminator (Radford et al. 2016) for square one-channel images.

Both networks grow by one up/down-sampling block per doubling of the image size, so one
knob (``image_size``) covers DCGAN64, DCGAN128 and DCGAN256. The discriminator returns
logits: the loss applies the sigmoid, which is stable under mixed precision.
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
        width = ngf * 2 ** depth
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(depth):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.nz = nz
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.nz, 1, 1))


class Discriminator(nn.Module):
    """images (N, channels, S, S) -> real/fake logits (N,)."""

    def __init__(self, image_size: int = 64, ndf: int = 64, channels: int = 1):
        super().__init__()
        depth = _depth(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(depth):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).flatten()


def init_dcgan_weights(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialisation: convolutions N(0, std), BatchNorm weight N(1, std), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, std)
        nn.init.zeros_(module.bias)
