"""Frechet distance between Gaussian fits of two feature sets (FID with Inception features).

The maths is torch-fidelity's (``fid_features_to_statistics`` and
``fid_statistics_to_metric``), run in float64.
"""

from __future__ import annotations

import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

from fetal_dcgan.metrics.features import MetricUnavailable


def frechet_distance(fake_features: torch.Tensor, real_features: torch.Tensor) -> float:
    """FD between N(mu, Sigma) fits of (N, d) feature sets; each needs >= 2 rows."""
    if min(len(fake_features), len(real_features)) < 2:
        raise MetricUnavailable("FID needs at least 2 images in each set to estimate a covariance.")
    stats_fake = fid_features_to_statistics(fake_features.double().cpu())
    stats_real = fid_features_to_statistics(real_features.double().cpu())
    return float(fid_statistics_to_metric(stats_fake, stats_real, verbose=False)[KEY_METRIC_FID])
