"""PSNR between every pair of two uint8 image batches, and near-identical pairs within one.

All pair MSEs come from one float64 matrix product, ||s||^2 + ||r||^2 - 2 s.r, which is
exact for 8-bit images (every term is an integer below 2^53), so no loop over pairs.
"""

from __future__ import annotations

import numpy as np
import torch


def pairwise_mse(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(len(fake), len(real)) mean squared errors of uint8 image batches (N, ...)."""
    s = fake.flatten(1).double()
    r = real.flatten(1).double()
    sq = (s * s).sum(1)[:, None] + (r * r).sum(1)[None, :] - 2.0 * (s @ r.T)
    return sq.clamp_(min=0) / s.shape[1]


def psnr_from_mse(mse: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """10 log10(range^2 / MSE), +inf where MSE is 0."""
    return 10.0 * torch.log10(data_range**2 / mse)


def pairwise_psnr(fake: torch.Tensor, real: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """(len(fake), len(real)) PSNR in dB of every synthetic-reference pair."""
    return psnr_from_mse(pairwise_mse(fake, real), data_range)


def psnr_to_the_others(images: torch.Tensor, block: int = 1024):
    """(start, PSNR of images[start:start + block] against every image, -inf against itself)."""
    for start in range(0, len(images), block):
        values = pairwise_psnr(images[start : start + block], images)
        rows = torch.arange(len(values), device=values.device)
        values[rows, rows + start] = -np.inf  # not itself
        yield start, values


def near_copy_pairs(images: torch.Tensor, threshold_db: float) -> list[tuple[int, int]]:
    """Pairs (i < j) of images that differ but are within ``threshold_db`` PSNR of each other."""
    pairs = []
    for start, values in psnr_to_the_others(images):
        rows, cols = torch.nonzero((values >= threshold_db) & torch.isfinite(values), as_tuple=True)
        pairs += [(start + i, j) for i, j in zip(rows.tolist(), cols.tolist()) if start + i < j]
    return pairs
