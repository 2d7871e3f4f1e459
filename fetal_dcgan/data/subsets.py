"""Seeded, nested choices of images.

A training subset of size n is the first n entries of one seeded permutation of the
dataset, so for a fixed seed the 100 images are inside the 300, inside the 500, ... and a
sweep over n only ever adds images. The reference set comes from an independent
permutation that does not depend on n, so every cell of a sweep is scored against the
same real images.
"""

from __future__ import annotations

import numpy as np

from fetal_dcgan.errors import DataError


def _permutation(size: int, seed: int, stream: int) -> np.ndarray:
    return np.random.default_rng([seed, stream]).permutation(size)


def training_indices(size: int, n: int | None, seed: int) -> np.ndarray:
    """Indices of the n training images (all of them when n is None), nested in n."""
    if n is None:
        n = size
    if not 1 <= n <= size:
        raise DataError(f"data.n={n} cannot be chosen from a dataset of {size} images: "
                        f"set data.n between 1 and {size} (or null for all of them).")
    return _permutation(size, seed, stream=0)[:n]


def reference_indices(size: int, n: int, seed: int) -> np.ndarray:
    """Indices of the non-augmented reference images, at most ``size`` of them."""
    if n < 1:
        raise DataError(f"data.reference_n={n}: the reference set needs at least one image.")
    return _permutation(size, seed, stream=1)[:min(n, size)]
