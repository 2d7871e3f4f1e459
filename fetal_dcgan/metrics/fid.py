"""Frechet distance between Gaussian fits of two feature sets (FID with Inception features).

The reported value is torch-fidelity's maths (``fid_features_to_statistics`` and
``fid_statistics_to_metric``), run in float64. Bootstrap intervals recompute FD against
the same reference hundreds of times, and scipy's ``sqrtm`` of a 2048 x 2048 matrix takes
seconds, so ``FrechetReference`` factors the reference once and gets the trace term from
the eigenvalues of a symmetric matrix: tr sqrt(S1 S2) = sum sqrt(eig(A S1 A)), A = S2^1/2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

from fetal_dcgan.metrics.bootstrap import bootstrap_ci
from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import MetricUnavailable
from fetal_dcgan.metrics.registry import NONNEGATIVE, Key, ci_share, interval, register_metric


def _mean_and_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = features.mean(0)
    centred = features - mean
    return mean, centred.T @ centred / (len(features) - 1)


class FrechetReference:
    """FD of many feature sets against one reference set, on ``device``, in float64."""

    def __init__(self, real_features: torch.Tensor, device: str | torch.device = "cpu"):
        self.device = device
        self.mu, sigma = _mean_and_covariance(real_features.double().to(device))
        values, vectors = torch.linalg.eigh(sigma)
        self.sqrt_sigma = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
        self.trace = sigma.trace()

    def __call__(self, fake_features: torch.Tensor) -> float:
        mu, sigma = _mean_and_covariance(fake_features.double().to(self.device))
        eigenvalues = torch.linalg.eigvalsh(self.sqrt_sigma @ sigma @ self.sqrt_sigma)
        fd = (mu - self.mu).square().sum() + sigma.trace() + self.trace - 2 * eigenvalues.clamp(min=0).sqrt().sum()
        return float(fd)


def frechet_distance(fake_features: torch.Tensor, real_features: torch.Tensor) -> float:
    """FD between N(mu, Sigma) fits of (N, d) feature sets; each needs >= 2 rows."""
    if min(len(fake_features), len(real_features)) < 2:
        raise MetricUnavailable("FID needs at least 2 images in each set to estimate a covariance.")
    stats_fake = fid_features_to_statistics(fake_features.double().cpu())
    stats_real = fid_features_to_statistics(real_features.double().cpu())
    return float(fid_statistics_to_metric(stats_fake, stats_real, verbose=False)[KEY_METRIC_FID])


def bootstrap_fd(ctx: ScoringContext, fake: torch.Tensor, real: torch.Tensor, estimate: float) -> tuple[float, float]:
    """Bootstrap interval of FD over resamples of the synthetic features, against the
    reference factored once on the metrics device."""
    reference, fake = FrechetReference(real, ctx.device), fake.to(ctx.device)
    return bootstrap_ci(
        lambda i: reference(fake[torch.from_numpy(i).to(fake.device)]),
        len(fake),
        ctx.resamples(),
        ctx.seed,
        estimate=estimate,
    )


@dataclass
class FidOptions:
    ci_share: float = ci_share(0.25)  # each resample is an eigendecomposition of a 2048 x 2048 matrix


@register_metric(
    "fid",
    "Frechet Inception Distance (torch-fidelity's network and maths)",
    (
        Key(
            "fid",
            "Frechet distance between Gaussian fits of Inception pool3 features of S and R",
            better="lower",
            plotted=True,
            bounds=NONNEGATIVE,
        ),
        *interval("fid"),
    ),
    options=FidOptions,
)
def _fid(ctx: ScoringContext) -> dict:
    fake, real = ctx.features("inception"), ctx.features("inception", ctx.real)
    value = frechet_distance(fake, real)
    low, high = bootstrap_fd(ctx, fake, real, value)
    return {"scalars": {"fid": value, "fid_ci_low": low, "fid_ci_high": high}}
