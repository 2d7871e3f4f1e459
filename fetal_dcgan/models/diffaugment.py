"""Differentiable augmentation of the discriminator's inputs, fixed or adaptive.

DiffAugment (Zhao et al. 2020) transforms every image the discriminator sees, real and
generated alike, with the same differentiable operations, so the generator learns through
them and the augmentation cannot leak into what it generates; snapshots never pass
through it. Operations (on images in [-1, 1]), as in the authors' code: ``brightness``
(add U(-0.5, 0.5)), ``contrast`` (scale deviations from the image mean by U(0.5, 1.5)),
``translation`` (shift by up to 1/8 of the size, zero fill) and ``cutout`` (zero a square
of half the size); colour saturation has no meaning for one channel and is left out.
Each image gets its own random draw and each operation is applied with probability p
(1 for plain DiffAugment). ``AdaptiveProbability`` tunes p as ADA does (Karras et al.
2020): it raises p while the overfitting heuristic r_t = E[sign(D(real))] exceeds the
target and lowers it otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

OPERATIONS = ("brightness", "contrast", "translation", "cutout")


def _brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def _contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy).clamp(-1, h)  # -1 and h: the zero border
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx).clamp(-1, w)
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows + 1, cols + 1].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    top, left = cy - ch // 2, cx - cw // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside)[:, None].to(x.dtype)


_FUNCTIONS = {"brightness": _brightness, "contrast": _contrast, "translation": _translation, "cutout": _cutout}


def diff_augment(
    x: torch.Tensor, operations: list[str] | tuple[str, ...], p: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """``operations`` in order, each to a random share ``p`` of the images (gradients flow through)."""
    for name in operations:
        if name not in _FUNCTIONS:
            raise ValueError(f"DiffAugment operation {name!r}: use any of {', '.join(OPERATIONS)}.")
        if isinstance(p, (int, float)) and p >= 1:
            x = _FUNCTIONS[name](x)
        elif float(p) > 0:
            chosen = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p).to(x.dtype)
            x = chosen * _FUNCTIONS[name](x) + (1 - chosen) * x
    return x


class AdaptiveProbability(nn.Module):
    """ADA's p: every ``interval`` discriminator steps, moved by sign(r_t - target) times
    the share of ``images_to_full`` images seen since the last move (a buffer, so
    checkpoints keep it)."""

    def __init__(self, target: float = 0.6, images_to_full: int = 100_000, interval: int = 4):
        super().__init__()
        self.target, self.images_to_full, self.interval = target, images_to_full, interval
        self.register_buffer("p", torch.zeros(()))
        self.register_buffer("signs", torch.zeros(2))  # running sum of sign(D(real)), and its count
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor) -> None:
        self.signs += torch.stack([real_logits.sign().sum(), real_logits.new_tensor(real_logits.numel())]).float()
        self.steps += 1
        if int(self.steps) % self.interval == 0:
            r_t = self.signs[0] / self.signs[1].clamp(min=1)
            step = self.signs[1] / self.images_to_full
            self.p.copy_((self.p + torch.sign(r_t - self.target) * step).clamp(0, 1))
            self.signs.zero_()

    @property
    def r_t(self) -> float:
        return float(self.signs[0] / self.signs[1].clamp(min=1))
