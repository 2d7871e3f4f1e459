"""Diversity of a set, to detect mode collapse.

``ms_ssim``: mean MS-SSIM over random pairs of different images of the same set
(torchmetrics' arithmetic, ``imaging.ms_ssim``; 3 scales with the first three of Wang et
al.'s weights, since 64 px images are too small for 5, and 2 below 41 px, renormalised to
sum to 1 as Wang et al.'s five do, so the score stays on the scale of one SSIM; ReLU on
negative terms). Higher means less diverse; compare with
the reference set's value. ``duplicate_rate``: share of images with a near-copy elsewhere
in the set (PSNR >= ``duplicate_psnr_db``, 40 dB by default: an RMS difference below 2.6
grey levels), from the exact all-pairs PSNR. ``collapse`` when the synthetic set is clearly
less diverse than the real one: MS-SSIM higher by more than ``collapse_margin`` or more
than ``collapse_duplicates`` near-duplicates (``conf/metrics``: ``diversity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fetal_dcgan.imaging.ms_ssim import ms_ssim_of_pairs
from fetal_dcgan.imaging.psnr import psnr_to_the_others
from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.registry import SHARE, Key, register_metric
from fetal_dcgan.rules import int_at_least, number_in, setting

MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001)  # Wang et al.'s first three scale weights


def ms_ssim_betas(size: int) -> tuple[float, ...]:
    """Up to 3 scales, fewer for images too small for the 11-pixel window at every scale;
    the weights of the scales used sum to 1 (truncating Wang et al.'s five would leave 0.63,
    which raises every score towards 1 and shrinks the gap the collapse flag reads)."""
    scales = max([k for k in range(1, len(MS_SSIM_BETAS) + 1) if size > 10 * 2 ** (k - 1)], default=1)
    total = sum(MS_SSIM_BETAS[:scales])
    return tuple(beta / total for beta in MS_SSIM_BETAS[:scales])


def mean_pairwise_ms_ssim(images: torch.Tensor, pairs: int, seed: int = 0) -> float:
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
    return float(ms_ssim_of_pairs(images, i, j, ms_ssim_betas(min(images.shape[-2:]))).mean())


def duplicate_rate(images: torch.Tensor, threshold_db: float) -> float:
    """Share of images that have a near-copy (PSNR >= threshold) elsewhere in the set."""
    if len(images) < 2:
        return float("nan")
    has_copy = np.zeros(len(images), bool)
    for start, values in psnr_to_the_others(images):
        has_copy[start : start + len(values)] = (values >= threshold_db).any(1).cpu().numpy()
    return float(has_copy.mean())


def set_diversity(images: torch.Tensor, pairs: int, threshold_db: float, seed: int = 0) -> dict[str, float]:
    """Mean pairwise MS-SSIM and duplicate rate of one set, on the images' device."""
    return {
        "ms_ssim": mean_pairwise_ms_ssim(images, pairs, seed),
        "duplicate_rate": duplicate_rate(images, threshold_db),
    }


def diversity(fake: dict[str, float], real: dict[str, float], margin: float, duplicates: float) -> dict:
    """The synthetic set's ``set_diversity`` beside the reference set's, and the collapse flag:
    MS-SSIM above the reference's by more than ``margin``, or a duplicate rate above ``duplicates``."""
    collapse = fake["ms_ssim"] - real["ms_ssim"] > margin or fake["duplicate_rate"] > duplicates
    return {
        "scalars": {
            "ms_ssim_fake": fake["ms_ssim"],
            "ms_ssim_real": real["ms_ssim"],
            "duplicate_rate": fake["duplicate_rate"],
            "duplicate_rate_real": real["duplicate_rate"],
            "collapse": float(collapse),
        }
    }


@dataclass
class DiversityOptions:
    ms_ssim_pairs: int = setting(2000, int_at_least(1), "2000", "random pairs within a set")
    duplicate_psnr_db: float = setting(
        40.0,
        number_in(0, 200, low_open=True),
        "40",
        "a near-copy: PSNR at least this (RMS difference below 2.6 grey levels)",
    )
    collapse_margin: float = setting(
        0.1, number_in(0, 1), "0.1", "collapse: MS-SSIM above the reference's by more than this ..."
    )
    collapse_duplicates: float = setting(0.05, number_in(0, 1), "0.05", "... or more than this share of near-copies")


@register_metric(
    "diversity",
    "diversity within the synthetic set against the reference set's (mode collapse)",
    (
        Key(
            "ms_ssim_fake",
            "mean MS-SSIM over random pairs within S; higher = less diverse",
            better="reference",
            plotted=True,
            reference_key="ms_ssim_real",
            bounds=SHARE,
        ),
        Key("ms_ssim_real", "the same within R", role="reference"),
        Key(
            "duplicate_rate",
            "share of synthetic images with a near-copy in S",
            better="lower",
            reference_key="duplicate_rate_real",
            bounds=SHARE,
        ),
        Key("duplicate_rate_real", "the same within R", role="reference"),
        Key(
            "collapse",
            "1 when S is clearly less diverse than R (a flag to look at the images; not tested as a score)",
            better="lower",
            role="diagnostic",
        ),
    ),
    options=DiversityOptions,
)
def _diversity(ctx: ScoringContext) -> dict:
    o = ctx.options
    pairs, db = o.ms_ssim_pairs, o.duplicate_psnr_db
    real = ctx.reference(
        "diversity",
        lambda: set_diversity(ctx.real.to(ctx.device), pairs, db, ctx.seed),
        f"ms-ssim-{pairs}-pairs-{MS_SSIM_BETAS}-normalised-seed-{ctx.seed}-dup-{db}dB",
    )
    fake = set_diversity(ctx.fake.to(ctx.device), pairs, db, ctx.seed)
    return diversity(fake, real, o.collapse_margin, o.collapse_duplicates)
