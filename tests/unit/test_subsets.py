"""Seeded nested subsets and an n-independent reference set."""

from __future__ import annotations

import numpy as np
import pytest

from fetal_dcgan.data.subsets import reference_indices, training_indices
from fetal_dcgan.errors import DataError


def test_subsets_are_nested_and_seeded():
    sizes = [100, 300, 500, 800, 999]
    subsets = [set(training_indices(999, n, seed=3)) for n in sizes]
    for small, large in zip(subsets, subsets[1:]):
        assert small < large
    assert [len(s) for s in subsets] == sizes
    np.testing.assert_array_equal(training_indices(999, 100, 3), training_indices(999, 100, 3))
    assert set(training_indices(999, 100, 4)) != subsets[0]
    assert len(training_indices(999, None, 0)) == 999


def test_reference_does_not_depend_on_n_and_is_clamped():
    ref = reference_indices(999, 800, seed=0)
    assert len(set(ref)) == 800
    np.testing.assert_array_equal(reference_indices(999, 800, 0), ref)
    assert len(reference_indices(50, 800, 0)) == 50


@pytest.mark.parametrize("n", [0, -1, 1000])
def test_n_out_of_range_says_how_many(n):
    with pytest.raises(DataError, match=r"data.n=.*dataset of 999 images.*between 1 and 999"):
        training_indices(999, n, 0)


def test_one_image_per_group_is_the_plain_permutation():
    """Grouping changes nothing for data without repeat scans (the phantom): same subsets."""
    groups = [f"img{i}" for i in range(999)]
    expected = np.random.default_rng([3, 0]).permutation(999)[:300]
    np.testing.assert_array_equal(training_indices(999, 300, 3, groups), expected)
    np.testing.assert_array_equal(training_indices(999, 300, 3), expected)


def test_groups_stay_together_and_subsets_stay_nested():
    rng = np.random.default_rng(0)
    groups = [f"fetus {g}" for g in rng.integers(0, 300, 999)]
    order = training_indices(999, None, 5, groups)
    labels = np.array(groups)[order]
    changes = (labels[1:] != labels[:-1]).sum()
    assert changes == len(set(groups)) - 1  # each fetus's scans are contiguous in the order
    small, large = set(training_indices(999, 100, 5, groups)), set(training_indices(999, 500, 5, groups))
    assert small < large


def test_disjoint_reference_is_the_same_for_every_n_and_never_training():
    groups = [f"fetus {i // 2}" for i in range(400)]  # every fetus scanned twice
    reference = reference_indices(400, 150, 1, "disjoint", train_n=250, groups=groups)
    for n in (10, 100, 250):
        train = training_indices(400, n, 1, groups)
        np.testing.assert_array_equal(reference_indices(400, 150, 1, "disjoint", n, groups), reference)
        assert not set(np.array(groups)[train]) & set(np.array(groups)[reference])
    with pytest.raises(DataError, match=r"data.reference=disjoint needs .* leaves 148 .* at most 148"):
        reference_indices(400, 150, 1, "disjoint", train_n=251, groups=groups)  # 251 splits a fetus
    with pytest.raises(DataError, match="independent"):
        reference_indices(400, 150, 1, "bogus")
