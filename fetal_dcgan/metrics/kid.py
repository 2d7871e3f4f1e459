"""Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel.

The maths is torch-fidelity's ``kid_features_to_metric`` (100 random subsets, kernel
(x.y / d + 1)^3). The subset size is clamped to the smaller set, since a study's sets
of 800 are below the usual 1000.
"""

from __future__ import annotations

import torch
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

from fetal_dcgan.metrics.features import MetricUnavailable


def kernel_inception_distance(fake_features: torch.Tensor, real_features: torch.Tensor, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """Mean and standard deviation of the MMD^2 estimates over ``subsets`` random subsets."""
    size = min(subset_size, len(fake_features), len(real_features))
    if size < 2:
        raise MetricUnavailable("KID needs at least 2 images in each set.")
    out = kid_features_to_metric(fake_features.double().cpu(), real_features.double().cpu(), kid_subsets=subsets,
                                 kid_subset_size=size, rng_seed=seed, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])
