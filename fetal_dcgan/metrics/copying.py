"""Data-copying tests in a feature space: C_T and authenticity.

The generator learned from the training images as training showed them: mirrored and
rotated within ``data.augment.degrees``. Both tests therefore measure distances to the
nearest of those variants (the memorisation audit's), so an augmented copy is as close as
a plain one; held-out real images are measured the same way.

C_T (Meehan, Chaudhuri and Dasgupta, AISTATS 2020) asks whether synthetic images lie closer
to the training images than new real images do. The training features are cut into cells
(k-means); in each cell the distances of held-out real images and of synthetic images to
their nearest training image of the cell are compared by the Mann-Whitney U statistic as a
z-score (with the authors' continuity correction); C_T averages the z of the cells that
hold at least ``min_cell_images`` synthetic images, each weighted by its share of the
held-out images. Near 0: as close to training as new real images; below -3: data copying
(the authors' threshold); well above 0: farther than real images (underfitting).

Authenticity (Alaa et al., ICML 2022): a synthetic image is authentic when it is farther
from its nearest training image than that training image is from its own nearest other
training image; ``authenticity`` is the authentic share. Held-out real images give the
reference value (0 for copies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from scipy.stats import mannwhitneyu

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import MetricUnavailable, SpaceOptions
from fetal_dcgan.metrics.memorisation import training_rotations, training_variants
from fetal_dcgan.metrics.registry import SHARE, Key, register_metric
from fetal_dcgan.rules import int_at_least, setting


def nearest(query: torch.Tensor, bank: torch.Tensor, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of each query row to its nearest bank row, and that row's index
    (``exclude_self``: query is bank, and a row's nearest other row is wanted)."""
    d = torch.cdist(query.double(), bank.double())
    if exclude_self:
        d.fill_diagonal_(math.inf)
    dist, index = d.min(1)
    return dist.cpu().numpy(), index.cpu().numpy()


def training_cells(train: np.ndarray, cells: int, seed: int) -> np.ndarray:
    """k-means centroids of the training features (k = ``cells``, at most one per image)."""
    k = min(cells, len(train))
    centroids, _ = kmeans2(train.astype(np.float64), k, seed=seed, minit="++")
    return centroids


def cell_of(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The nearest centroid of each row (squared distances expanded: no n x k x d array)."""
    return ((centroids**2).sum(1)[None, :] - 2 * x @ centroids.T).argmin(1)


def z_u(fake_dist: np.ndarray, real_dist: np.ndarray) -> float:
    """Mann-Whitney U of the synthetic distances against the real ones, z-scored under the
    null with the continuity correction of Meehan et al.'s code (no tie correction)."""
    m, n = len(fake_dist), len(real_dist)
    u = mannwhitneyu(fake_dist, real_dist, alternative="less").statistic
    return float((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))


@dataclass
class CopyingTest:
    z: float  # C_T
    cells: int  # cells that entered it
    cell_z: np.ndarray  # z of every cell (NaN: too few synthetic or no held-out images)


@dataclass
class VariantBank:
    """Features of every training variant, the training image each comes from, and each
    training image's cell and distance to the nearest variant of another training image."""

    features: torch.Tensor
    source: torch.Tensor
    cell: np.ndarray
    nearest_other: np.ndarray

    def nearest(self, query: torch.Tensor, cell: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distance of each query row to its nearest variant (of the cell's images), and that variant's image."""
        in_cell = np.ones(len(self.source), bool) if cell is None else self.cell[self.source.numpy()] == cell
        rows = torch.from_numpy(np.flatnonzero(in_cell))
        dist, index = nearest(query, self.features[rows])
        return dist, self.source[rows][index].numpy()


def variant_bank(
    train: torch.Tensor, variants: torch.Tensor, source: torch.Tensor, centroids: np.ndarray
) -> VariantBank:
    """``train``: features of the training images; ``variants``: of their augmented variants."""
    d = torch.cdist(train.double(), variants.double())
    d[source[None, :] == torch.arange(len(train))[:, None]] = math.inf
    return VariantBank(variants, source, cell_of(train.cpu().numpy(), centroids), d.min(1).values.cpu().numpy())


def c_t(
    bank: VariantBank, held_out: torch.Tensor, fake: torch.Tensor, centroids: np.ndarray, min_cell_images: int
) -> CopyingTest:
    """C_T of ``fake`` against the training bank with ``held_out`` as the new real images (features, rows)."""
    cell_h, cell_f = cell_of(held_out.cpu().numpy(), centroids), cell_of(fake.cpu().numpy(), centroids)
    k = len(centroids)
    cell_z = np.full(k, np.nan)
    for cell in range(k):
        in_h, in_f = np.flatnonzero(cell_h == cell), np.flatnonzero(cell_f == cell)
        if len(in_f) < min_cell_images or len(in_h) == 0 or not (bank.cell == cell).any():
            continue
        cell_z[cell] = z_u(bank.nearest(fake[in_f], cell)[0], bank.nearest(held_out[in_h], cell)[0])
    used = ~np.isnan(cell_z)
    weights = np.bincount(cell_h, minlength=k)[used] / len(held_out)
    z = float(weights @ cell_z[used] / weights.sum()) if used.any() and weights.sum() > 0 else math.nan
    return CopyingTest(z, int(used.sum()), cell_z)


def authentic(query: torch.Tensor, bank: VariantBank) -> np.ndarray:
    """Whether each query row is farther from its nearest training image than that image is from its own."""
    dist, image = bank.nearest(query)
    return dist > bank.nearest_other[image]


@dataclass
class CopyingOptions(SpaceOptions):
    degrees: Any = training_rotations("training's rotations: the variants measured against")
    cells: int = setting(10, int_at_least(1), "10", "k-means cells of the training features for C_T")
    min_cell_images: int = setting(
        20, int_at_least(1), "20", "a cell enters C_T when it holds at least this many synthetic images (the authors')"
    )


@register_metric(
    "copying",
    "data-copying tests in a feature space: C_T (Meehan et al. 2020) and authenticity (Alaa et al. 2022)",
    (
        Key(
            "ct_z",
            "C_T: z of the synthetic-to-training against held-out-to-training distances, per cell, averaged; "
            "below -3: copying, near 0: as new real images",
            better="higher",
        ),
        Key("ct_cells", "cells that entered C_T", role="diagnostic"),
        Key(
            "authenticity",
            "share of synthetic images farther from their nearest training image than it is from its own nearest",
            better="reference",
            reference_key="authenticity_real",
            bounds=SHARE,
        ),
        Key("authenticity_real", "the same for held-out real images", role="reference"),
        Key("authentic", "1 when the image is authentic", level="image", role="diagnostic"),
    ),
    options=CopyingOptions,
)
def _copying(ctx: ScoringContext) -> dict:
    train = ctx.need_train("the data-copying tests")
    if ctx.held_out is None or len(ctx.held_out) < 2:
        raise MetricUnavailable("the data-copying tests need held-out real images (the run's reference set)")
    space, o = ctx.space(), ctx.options

    def build() -> tuple[VariantBank, np.ndarray]:
        features = ctx.features(space, train)
        centroids = training_cells(features.cpu().numpy(), o.cells, ctx.seed)
        variants, source = training_variants(train.to(ctx.device), float(o.degrees))
        extracted = ctx.features(space, variants.mul(255).round().to(torch.uint8), persist=False)  # as memorisation
        return variant_bank(features, extracted, source.cpu(), centroids), centroids

    bank, centroids = ctx.store.get("copying", (train,), build, f"{space}-{o}-{ctx.seed}", persist=False)
    held_out, fake = ctx.features(space, ctx.held_out), ctx.features(space)
    test = c_t(bank, held_out, fake, centroids, o.min_cell_images)
    fake_authentic = authentic(fake, bank)
    return {
        "scalars": {
            "ct_z": test.z,
            "ct_cells": test.cells,
            "authenticity": float(fake_authentic.mean()),
            "authenticity_real": float(authentic(held_out, bank).mean()),
        },
        "per_image": {"authentic": fake_authentic.astype(float)},
        "status": f"ok: features: {ctx.label(space)}; {test.cells} of {len(centroids)} cells in C_T",
    }
