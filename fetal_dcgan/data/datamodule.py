"""LightningDataModule: discover, preprocess (cached), choose subsets, augment on device."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch

from fetal_dcgan.data.augment import INTERPOLATIONS, augment, to_signed, to_unit
from fetal_dcgan.data.preprocess import check_settings, load_images
from fetal_dcgan.data.sources import discover, groups_of
from fetal_dcgan.data.subsets import reference_indices, training_indices
from fetal_dcgan.errors import ConfigError
from fetal_dcgan.metrics.diversity import near_copy_pairs
from fetal_dcgan.runs import RunLayout
from fetal_dcgan.utils import atomic_write_text

log = logging.getLogger(__name__)


def duplicate_groups(images: torch.Tensor) -> list[list[int]]:
    """Indices of images that are pixel-identical after preprocessing, in groups of 2 or more.

    HC18 itself has one (392_2HC.png is a byte copy of 392_HC.png); a duplicate weighs
    twice in training and can leak between a training subset and the reference set.
    """
    _, inverse, counts = torch.unique(images.flatten(1), dim=0, return_inverse=True, return_counts=True)
    groups: dict[int, list[int]] = {}
    for index, group in enumerate(inverse.tolist()):
        if counts[group] > 1:
            groups.setdefault(group, []).append(index)
    return sorted(groups.values())


class ShuffledBatches:
    """Batches of a resident uint8 tensor in a new random order each epoch.

    The images stay on the training device and a batch is one gather with an index that
    is already there: no collation, no host-to-device copy and no host sync per step. The
    order comes from torch's generator of that device, so ``seed_everything`` fixes it.
    """

    def __init__(self, images: torch.Tensor, batch_size: int):
        self.images, self.batch_size = images, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.images), device=self.images.device)  # no host copy, no sync
        for start in range(0, len(order), self.batch_size):
            yield self.images[order[start:start + self.batch_size]]


class UltrasoundDataModule(L.LightningDataModule):
    """Serves a seeded subset of n real images, augmented on the training device.

    Images are held as uint8 (N, 1, S, S) and become floats in [-1, 1] only after the
    batch reaches the device; ``reference`` holds the non-augmented real images that
    synthetic sets are scored against.
    """

    def __init__(self, source: str = "phantom", root: str | None = None, split: str = "train",
                 phantom: dict | None = None, image_size: int = 64, fit: str = "pad",
                 n: int | None = None, seed: int = 0, reference_n: int = 800, batch_size: int = 64,
                 augment: dict | None = None, cache_dir: str | None = None, group_by: str = "fetus",
                 reference: str = "independent", near_copy_db: float | None = None):
        super().__init__()
        check_settings(image_size, fit)
        self.source, self.root, self.split = source, root, split
        self.phantom = dict(phantom or {})
        self.image_size, self.fit = image_size, fit
        self.n, self.seed, self.reference_n = n, seed, reference_n
        self.group_by, self.reference_mode = group_by, reference
        self.batch_size = batch_size
        self.near_copy_db = near_copy_db
        self.augment = {"hflip": True, "degrees": 10.0, "interpolation": "nearest", **(augment or {})}
        if self.augment["interpolation"] not in INTERPOLATIONS:
            raise ConfigError(f"data.augment.interpolation={self.augment['interpolation']!r}: use one of "
                              f"{', '.join(INTERPOLATIONS)} (nearest keeps speckle; the paper's notebook used it).")
        self.cache_dir = cache_dir
        self.files: list[Path] = []
        self.train_files: list[Path] = []
        self.reference_files: list[Path] = []
        self.train_images: torch.Tensor | None = None
        self.reference: torch.Tensor | None = None
        self.held_out: torch.Tensor | None = None
        self.reference_in_training = 0  # reference images that are also training images

    def discover(self) -> list[Path]:
        """Every image file of the configured source, sorted."""
        if self.source == "phantom":
            return discover("phantom", cache_dir=self.cache_dir, **self.phantom)
        if self.source == "hc18":
            return discover("hc18", root=self.root, split=self.split)
        return discover(self.source, root=self.root)

    def setup(self, stage: str | None = None) -> None:
        if self.train_images is not None:
            return
        self.files = self.discover()
        groups = groups_of(self.files, self.group_by)
        train_idx = training_indices(len(self.files), self.n, self.seed, groups)
        ref_idx = reference_indices(len(self.files), self.reference_n, self.seed, self.reference_mode,
                                    len(train_idx), groups)
        if len(ref_idx) < self.reference_n:
            log.warning("data.reference_n=%d but the dataset has %d images: the reference set uses all of them.",
                        self.reference_n, len(ref_idx))
        images = load_images(self.files, self.image_size, self.fit, self.cache_dir)
        self._report_duplicates(images)
        self.train_files = [self.files[i] for i in train_idx]
        self.reference_files = [self.files[i] for i in ref_idx]
        self.train_images = images[torch.from_numpy(train_idx)]
        self.reference = images[torch.from_numpy(ref_idx)]
        self.reference_in_training = int(np.isin(ref_idx, train_idx).sum())
        # Reference images of fetuses the generator never trains on: the memorisation audit's yardstick.
        labels = np.asarray(groups if groups is not None else [str(p) for p in self.files], dtype=object)
        self.held_out = images[torch.from_numpy(ref_idx[~np.isin(labels[ref_idx], labels[train_idx])])]
        log.info("Data: %d images from %s; training on %d, reference set of %d (%s; %d of them training images), "
                 "%dx%d px (fit=%s).", len(self.files), self.source, len(self.train_files), len(self.reference_files),
                 self.reference_mode, self.reference_in_training, self.image_size, self.image_size, self.fit)

    def _report_duplicates(self, images: torch.Tensor) -> None:
        """Log identical and near-identical images (PSNR >= ``near_copy_db`` at the training
        size): they weigh twice in training and can sit on both sides of a split unless grouped."""
        identical = duplicate_groups(images)
        if identical:
            log.warning("%d groups of images are identical at %d px (kept; remove them from the data if unwanted): "
                        "%s", len(identical), self.image_size,
                        "; ".join(" = ".join(self.files[i].name for i in g) for g in identical[:10]))
        near = [] if self.near_copy_db is None else near_copy_pairs(images, self.near_copy_db)
        if near:
            log.warning("%d pairs of different images are near-identical (PSNR >= %g dB at %d px), e.g. %s",
                        len(near), self.near_copy_db, self.image_size,
                        "; ".join(f"{self.files[i].name} ~ {self.files[j].name}" for i, j in near[:10]))

    def write_manifest(self, run_dir: str | Path) -> None:
        """Record which source files were used: ``subset.txt`` (training), ``reference.txt``."""
        layout = RunLayout(run_dir)
        atomic_write_text("".join(f"{p}\n" for p in self.train_files), layout.subset)
        atomic_write_text("".join(f"{p}\n" for p in self.reference_files), layout.reference)

    def train_dataloader(self) -> ShuffledBatches:
        """The training subset moved once to the trainer's device (4 MB at 64 px, n = 999)."""
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        return ShuffledBatches(self.train_images.to(device), self.batch_size)

    def on_after_batch_transfer(self, batch: torch.Tensor, dataloader_idx: int) -> torch.Tensor:
        images = to_unit(batch)
        if self.trainer is not None and self.trainer.training:
            images = augment(images, **self.augment)
        return to_signed(images)
