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
