"""Seeded, nested choices of images, optionally keeping each fetus's scans together.

A training subset of size n is the first n entries of one seeded permutation of the
dataset, so for a fixed seed the 100 images are inside the 300, inside the 500, ... and a
sweep over n only ever adds images. With groups (``data.group_by=fetus``: HC18's repeat
scans ``NNN_kHC.png`` belong to fetus NNN) the permutation orders whole groups, so a fetus's
scans sit side by side; with one image per group it is the plain permutation.

The reference set is ``held_out`` (images no cell of a sweep ever trains on: a test split,
or whole groups set aside before any training subset is drawn, both drawn with
``data.reference_seed`` so every replicate shares them), ``independent`` (its own
permutation of the training split, the same for every n; it overlaps the training subset
more as n grows: the paper's design) or ``disjoint`` (the last images of the training
permutation: never a training image of that run, as long as n + reference_n fits).
"""

from __future__ import annotations

import numpy as np

from fetal_dcgan.errors import DataError

REFERENCE_MODES = ("held_out", "independent", "disjoint")
#: Where a held-out reference comes from: the source's test split, or whole groups of the training split.
REFERENCE_SPLITS = ("test", "train")


def _group_ids(size: int, groups: list | None) -> np.ndarray:
    """Group number of every image, numbered by first appearance (one group an image if None)."""
    if groups is None:
        return np.arange(size)
    if len(groups) != size:
        raise ValueError(f"{len(groups)} group labels for {size} images.")
    _, first, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # label order -> order of first appearance
    return rank[inverse.ravel()]


def _permutation(size: int, seed: int, stream: int, groups: list | None = None) -> np.ndarray:
    """A seeded permutation of the images in which each group's images are contiguous."""
    ids = _group_ids(size, groups)
    order = np.random.default_rng([seed, stream]).permutation(ids.max() + 1 if size else 0)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return np.argsort(position[ids], kind="stable")  # groups in permuted order, members in file order


def training_indices(size: int, n: int | None, seed: int, groups: list | None = None) -> np.ndarray:
    """Indices of the n training images (all of them when n is None), nested in n."""
    if n is None:
        n = size
    if not 1 <= n <= size:
        raise DataError(
            f"data.n={n} cannot be chosen from a dataset of {size} images: "
            f"set data.n between 1 and {size} (or null for all of them)."
        )
    return _permutation(size, seed, 0, groups)[:n]


def reference_indices(
    size: int, n: int, seed: int, mode: str = "independent", train_n: int | None = None, groups: list | None = None
) -> np.ndarray:
    """Indices of the non-augmented reference images: at most ``size`` of them when
    ``independent``; with ``disjoint``, ``n`` images that share no group with the first
    ``train_n`` training images, or a DataError that says how to fit them."""
    if n < 1:
        raise DataError(f"data.reference_n={n}: the reference set needs at least one image.")
    if mode not in ("independent", "disjoint"):
        raise DataError(
            f"data.reference={mode!r}: use held_out (never training data of any cell), independent "
            "(the paper's: the same for every n, overlaps training) or disjoint (never a training "
            "image of that run)."
        )
    if mode == "independent":
        return _permutation(size, seed, 1)[: min(n, size)]
    train_n = size if train_n is None else train_n
    order = _permutation(size, seed, 0, groups)
    reference = order[size - n :] if n <= size else order
    ids = _group_ids(size, groups)
    if n > size or np.isin(ids[reference], ids[order[:train_n]]).any():
        free = size - train_n - (0 if groups is None else _split_group_tail(ids, order, train_n))
        raise DataError(
            f"data.reference=disjoint needs data.n + data.reference_n <= {size} images "
            f"(whole groups): data.n={train_n} leaves {max(free, 0)} for a reference set of {n}. "
            f"Lower data.reference_n to at most {max(free, 0)} (or data.n), or use "
            "data.reference=independent."
        )
    return reference


def set_aside(size: int, n: int, seed: int, groups: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pool, reference): ``n`` images set aside for the reference by a seeded permutation of
    whole groups of their own (stream 3), and the pool that training subsets are drawn from.
    The rest of a group the cut splits joins neither side, so no fetus is on both."""
    if not 1 <= n < size:
        raise DataError(
            f"data.reference_n={n} cannot be set aside from {size} images and leave any to train on: "
            f"lower data.reference_n below {size}, or take the reference from a test split "
            "(data.reference_split=test)."
        )
    order = _permutation(size, seed, 3, groups)
    reference = order[:n]
    ids = _group_ids(size, groups)
    pool = order[n:][~np.isin(ids[order[n:]], ids[reference])]
    return np.sort(pool), np.sort(reference)


def _split_group_tail(ids: np.ndarray, order: np.ndarray, train_n: int) -> int:
    """Images after the training prefix that belong to a group the prefix has begun."""
    return int(np.isin(ids[order[train_n:]], ids[order[:train_n]]).sum())


def held_out_split(size: int, share: float, seed: int, groups: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices to train on and to hold out (about ``share`` of the images, whole groups:
    a fetus's repeat scans never on both sides), from a seeded permutation of its own."""
    order = _permutation(size, seed, 2, groups)
    cut = size - max(1, round(share * size))
    cut += _split_group_tail(_group_ids(size, groups), order, cut) if cut > 0 else 0
    if not 0 < cut < size:
        raise DataError(
            f"A held-out share of {share} of {size} images leaves no images on one side: "
            "use more images or another share."
        )
    return np.sort(order[:cut]), np.sort(order[cut:])
