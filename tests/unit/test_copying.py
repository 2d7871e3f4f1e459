"""C_T and authenticity against direct implementations, and on sets whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from fetal_dcgan.metrics.copying import authentic, c_t, cell_of, training_cells, variant_bank


def _gaussian(n: int, seed: int, dim: int = 8) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, dim)))


def _bank(train: torch.Tensor, shifts: int = 2, seed: int = 0):
    """Each training row and ``shifts - 1`` slightly moved variants of it, as the augmentations."""
    moved = [train + 0.05 * _gaussian(len(train), 100 + s, train.shape[1]) for s in range(shifts - 1)]
    variants, source = torch.cat([train, *moved]), torch.arange(len(train)).repeat(shifts)
    centroids = training_cells(train.numpy(), 5, seed)
    return variant_bank(train, variants, source, centroids), centroids, variants.numpy(), source.numpy()


def _c_t_by_hand(train, variants, source, held_out, fake, centroids, min_cell_images):
    """Meehan et al.'s C_T written out (scikit-learn's neighbours, U by counting pairs),
    with a training image's variants in its cell."""
    ct, ch, cf = (cell_of(x, centroids) for x in (train, held_out, fake))
    zs, weights = [], []
    for cell in range(len(centroids)):
        h, f = held_out[ch == cell], fake[cf == cell]
        if len(f) < min_cell_images or not len(h):
            continue
        nn = NearestNeighbors(n_neighbors=1).fit(variants[ct[source] == cell])
        lf, lh = nn.kneighbors(f)[0][:, 0], nn.kneighbors(h)[0][:, 0]
        u = (lf[:, None] > lh[None]).sum() + 0.5 * (lf[:, None] == lh[None]).sum()
        m, n = len(f), len(h)
        zs.append((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))
        weights.append(len(h) / len(held_out))
    return np.dot(weights, zs) / np.sum(weights)


def test_c_t_is_the_authors_statistic():
    train, held_out = _gaussian(300, 0), _gaussian(200, 1)
    fake = torch.cat([train[:100] + 0.01, _gaussian(100, 2) * 1.3])
    bank, centroids, variants, source = _bank(train)
    ours = c_t(bank, held_out, fake, centroids, 10)
    assert ours.cells >= 3
    expected = _c_t_by_hand(train.numpy(), variants, source, held_out.numpy(), fake.numpy(), centroids, 10)
    assert ours.z == pytest.approx(expected, rel=1e-10)


def test_authenticity_is_the_papers_rule_over_the_variants():
    train, query = _gaussian(100, 0), _gaussian(40, 3)
    bank, _, variants, source = _bank(train)
    to_variants = np.linalg.norm(train.numpy()[:, None] - variants[None], axis=-1)
    to_variants[source[None, :] == np.arange(len(train))[:, None]] = np.inf  # its own variants are not others
    dq = np.linalg.norm(query.numpy()[:, None] - variants[None], axis=-1)
    expected = dq.min(1) > to_variants.min(1)[source[dq.argmin(1)]]
    np.testing.assert_array_equal(authentic(query, bank), expected)


def test_copies_are_flagged_and_new_samples_are_not():
    train, held_out, new = _gaussian(400, 0), _gaussian(300, 1), _gaussian(300, 2)
    bank, centroids, _, _ = _bank(train)
    copies = c_t(bank, held_out, train[:300] + 1e-3, centroids, 20)
    fresh = c_t(bank, held_out, new, centroids, 20)
    assert copies.z < -3 < fresh.z < 3
    assert authentic(train[:300] + 1e-3, bank).mean() == 0
    assert 0.3 < authentic(new, bank).mean() < 0.9
