"""FD-infinity, the Vendi score and the RBF-kernel MMD against independent implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from vendi_score import vendi

from fetal_dcgan.metrics.fd_infinity import fd_infinity, subset_sizes
from fetal_dcgan.metrics.fid import frechet_distance
from fetal_dcgan.metrics.mmd import unbiased_mmd2
from fetal_dcgan.metrics.vendi import vendi_score


def _features(n: int, seed: int, dim: int = 6, scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, dim)) * scale)


def test_fd_infinity_is_the_authors_regression_of_torch_fidelitys_fd():
    fake, real = _features(200, 0, scale=1.2), _features(300, 1)
    ours, slope, sizes = fd_infinity(fake, real, points=6, smallest=0.25, seed=3)
    order = np.random.default_rng(3).permutation(len(fake))
    fds = [frechet_distance(fake[torch.from_numpy(order[:size])], real) for size in sizes]
    fit = LinearRegression().fit(1 / sizes.reshape(-1, 1), fds)
    assert ours == pytest.approx(fit.predict([[0.0]])[0], rel=1e-8)
    assert slope == pytest.approx(fit.coef_[0], rel=1e-8)
    assert list(subset_sizes(200, 6, 0.25)) == [50, 80, 110, 140, 170, 200]


def test_fd_infinity_is_nearer_the_true_distance_than_fd_of_the_set():
    """Two samples of one distribution: the true FD is 0; FD of 200 images is biased upwards."""
    real = _features(4000, 1)
    fds = [frechet_distance(_features(200, seed), real) for seed in range(2, 8)]
    infinite = [fd_infinity(_features(200, seed), real, 15, 0.25, 0)[0] for seed in range(2, 8)]
    assert abs(np.mean(infinite)) < 0.5 * np.mean(fds)


def test_vendi_is_the_vendi_score_package():
    for features in (_features(50, 0), _features(80, 1, dim=20), _features(1, 2).repeat(30, 1)):
        assert vendi_score(features) == pytest.approx(vendi.score_X(features.numpy()), rel=1e-9)
    assert vendi_score(_features(1, 2).repeat(30, 1)) == pytest.approx(1.0)


def test_mmd_is_the_unbiased_estimate_written_out():
    x, y, sigma = _features(12, 0).numpy(), _features(9, 1, scale=1.5).numpy(), 2.0

    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    xx = sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / (12 * 11)
    yy = sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / (9 * 8)
    xy = sum(k(a, b) for a in x for b in y) / (12 * 9)
    assert unbiased_mmd2(torch.from_numpy(x), torch.from_numpy(y), sigma) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_mmd_of_two_samples_of_one_distribution_is_near_zero_and_not_biased_up():
    values = [unbiased_mmd2(_features(100, s), _features(100, 100 + s), 2.0) for s in range(20)]
    assert abs(np.mean(values)) < 3 * np.std(values) / math.sqrt(20)
    assert unbiased_mmd2(_features(100, 0), _features(100, 1, scale=2.0), 2.0) > 10 * np.std(values)
