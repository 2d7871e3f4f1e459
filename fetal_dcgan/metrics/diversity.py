"""Diversity of a set, to detect mode collapse.

``ms_ssim``: mean MS-SSIM over random pairs of different images of the same set
(torchmetrics; 3 scales with the first three of Wang et al.'s weights, since 64 px images
are too small for 5, and 2 below 41 px, renormalised to sum to 1 as Wang et al.'s five do,
so the score stays on the scale of one SSIM; ReLU on negative terms). Higher means less diverse; compare with
the reference set's value. ``duplicate_rate``: share of images with a near-copy elsewhere
in the set (PSNR >= 40 dB, i.e. RMS difference below 2.6 grey levels), from the exact
all-pairs PSNR. ``collapse`` when the synthetic set is clearly less diverse than the real
one: MS-SSIM higher by more than ``COLLAPSE_MARGIN`` or over 5% near-duplicates.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from fetal_dcgan.metrics.psnr import pairwise_psnr

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001)
MS_SSIM_PAIRS = 2000
DUPLICATE_PSNR_DB = 40.0
COLLAPSE_MARGIN = 0.1
COLLAPSE_DUPLICATES = 0.05


def ms_ssim_betas(size: int) -> tuple[float, ...]:
    """Up to 3 scales, fewer for images too small for the 11-pixel window at every scale;
    the weights of the scales used sum to 1 (truncating Wang et al.'s five would leave 0.63,
    which raises every score towards 1 and shrinks the gap the collapse flag reads)."""
    scales = max([k for k in range(1, len(MS_SSIM_BETAS) + 1) if size > 10 * 2 ** (k - 1)], default=1)
    total = sum(MS_SSIM_BETAS[:scales])
    return tuple(beta / total for beta in MS_SSIM_BETAS[:scales])


def ms_ssim_pairs(a: torch.Tensor, b: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """MS-SSIM of image pairs (a[i], b[i]) of uint8 (N, 1, H, W)."""
    betas = ms_ssim_betas(min(a.shape[-2:]))
    out = []
    for start in range(0, len(a), batch_size):
        x = a[start:start + batch_size].float() / 255
        y = b[start:start + batch_size].float() / 255
        out.append(multiscale_structural_similarity_index_measure(
            x, y, data_range=1.0, betas=betas, normalize="relu", reduction="none"))
    return torch.cat(out)


def mean_pairwise_ms_ssim(images: torch.Tensor, pairs: int = MS_SSIM_PAIRS, seed: int = 0) -> float:
    """Mean MS-SSIM over ``pairs`` random pairs of distinct images (all pairs if fewer)."""
    n = len(images)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    if n * (n - 1) // 2 <= pairs:
        i, j = np.triu_indices(n, 1)
    else:
        i = rng.integers(0, n, pairs)
        j = (i + rng.integers(1, n, pairs)) % n  # never the same image
    i, j = torch.from_numpy(i).to(images.device), torch.from_numpy(j).to(images.device)
    return float(ms_ssim_pairs(images[i], images[j]).mean())


def _psnr_to_the_others(images: torch.Tensor, block: int = 1024):
    """(start, PSNR of images[start:start + block] against every image, -inf against itself)."""
    for start in range(0, len(images), block):
        values = pairwise_psnr(images[start:start + block], images)
        rows = torch.arange(len(values), device=values.device)
        values[rows, rows + start] = -np.inf  # not itself
        yield start, values


def duplicate_rate(images: torch.Tensor, threshold_db: float = DUPLICATE_PSNR_DB) -> float:
    """Share of images that have a near-copy (PSNR >= threshold) elsewhere in the set."""
    if len(images) < 2:
        return float("nan")
    has_copy = np.zeros(len(images), bool)
    for start, values in _psnr_to_the_others(images):
        has_copy[start:start + len(values)] = (values >= threshold_db).any(1).cpu().numpy()
    return float(has_copy.mean())


def near_copy_pairs(images: torch.Tensor, threshold_db: float = DUPLICATE_PSNR_DB) -> list[tuple[int, int]]:
    """Pairs (i < j) of images that differ but are within ``threshold_db`` PSNR of each other."""
    pairs = []
    for start, values in _psnr_to_the_others(images):
        rows, cols = torch.nonzero((values >= threshold_db) & torch.isfinite(values), as_tuple=True)
        pairs += [(start + i, j) for i, j in zip(rows.tolist(), cols.tolist()) if start + i < j]
    return pairs


def set_diversity(images: torch.Tensor, pairs: int = MS_SSIM_PAIRS, seed: int = 0) -> dict[str, float]:
    """Mean pairwise MS-SSIM and duplicate rate of one set, on the images' device."""
    return {"ms_ssim": mean_pairwise_ms_ssim(images, pairs, seed), "duplicate_rate": duplicate_rate(images)}


def diversity(fake: dict[str, float], real: dict[str, float]) -> dict:
    """The synthetic set's ``set_diversity`` beside the reference set's, and the collapse flag."""
    collapse = fake["ms_ssim"] - real["ms_ssim"] > COLLAPSE_MARGIN or fake["duplicate_rate"] > COLLAPSE_DUPLICATES
    return {"scalars": {"ms_ssim_fake": fake["ms_ssim"], "ms_ssim_real": real["ms_ssim"],
                        "duplicate_rate": fake["duplicate_rate"], "duplicate_rate_real": real["duplicate_rate"],
                        "collapse": float(collapse)}}
