"""Peak signal-to-noise ratio between every synthetic and every reference image.

All pair MSEs come from one float64 matrix product, ||s||^2 + ||r||^2 - 2 s.r, which is
exact for 8-bit images (every term is an integer below 2^53), so no loop over pairs.
Identical images have MSE 0 and PSNR +inf; means are taken over finite values and the
number of identical pairs is reported beside them.
"""

from __future__ import annotations

import torch

from fetal_dcgan.imaging.psnr import pairwise_psnr
from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.registry import NONNEGATIVE, Key, register_metric


def _finite_mean(values: torch.Tensor) -> float:
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if finite.numel() else float("nan")


def psnr(fake: torch.Tensor, real: torch.Tensor, data_range: float = 255.0, device: str | torch.device = "cpu") -> dict:
    """Set-level and per-synthetic-image PSNR (data range 255), computed on ``device``."""
    values = pairwise_psnr(fake.to(device), real.to(device), data_range)
    best, best_index = values.max(dim=1)
    return {
        "scalars": {
            "psnr_mean": _finite_mean(values),
            "psnr_best_mean": _finite_mean(best),
            "psnr_identical_pairs": int(torch.isinf(values).sum()),
        },
        "per_image": {"psnr_best": best.cpu().numpy(), "psnr_best_ref": best_index.cpu().numpy()},
    }


@register_metric(
    "psnr",
    "peak signal-to-noise ratio over all synthetic-reference pairs",
    (
        Key("psnr_mean", "mean PSNR over every pair (s, r) in S x R", better="higher", unit="dB", plotted=True),
        Key(
            "psnr_best_mean",
            "per synthetic image its best PSNR over R, averaged",
            better="higher",
            unit="dB",
            plotted=True,
        ),
        Key(
            "psnr_identical_pairs",
            "pairs with MSE 0 (infinite PSNR, left out of the means)",
            better="lower",
            unit="pairs",
            bounds=NONNEGATIVE,
        ),
        Key("psnr_best", "best PSNR of the image over R", level="image", better="higher", unit="dB"),
        Key("psnr_best_ref", "index in R of that best match", level="image", role="diagnostic"),
    ),
)
def _psnr(ctx: ScoringContext) -> dict:
    return psnr(ctx.fake, ctx.real, device=ctx.device)
