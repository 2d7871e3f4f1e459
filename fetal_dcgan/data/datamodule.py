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
from fetal_dcgan.data.subsets import REFERENCE_MODES, REFERENCE_SPLITS, reference_indices, set_aside, training_indices
from fetal_dcgan.errors import ConfigError, DataError
from fetal_dcgan.imaging.psnr import near_copy_pairs
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
    An epoch is one pass over the images, or, with ``epoch_images``, that many images from
    back-to-back random passes (the same length for every n: epochs then count images seen).
    """

    def __init__(self, images: torch.Tensor, batch_size: int, epoch_images: int | None = None):
        self.images, self.batch_size = images, batch_size
        self.epoch_images = epoch_images or len(images)

    def __len__(self) -> int:
        return math.ceil(self.epoch_images / self.batch_size)

    def __iter__(self):
        passes = math.ceil(self.epoch_images / len(self.images))
        order = torch.cat(
            [
                torch.randperm(len(self.images), device=self.images.device)  # no host copy, no sync
                for _ in range(passes)
            ]
        )[: self.epoch_images]
        for start in range(0, len(order), self.batch_size):
            yield self.images[order[start : start + self.batch_size]]


def check_reference(mode: str, split: str, training_split: str) -> None:
    """The reference settings name a mode and a split, and the split is not the one trained on."""
    if mode not in REFERENCE_MODES:
        raise ConfigError(
            f"data.reference={mode!r}: use held_out (never training data of any cell), independent "
            "(the paper's: the same for every n, overlaps training) or disjoint (never a training "
            "image of that run)."
        )
    if split not in REFERENCE_SPLITS:
        raise ConfigError(
            f"data.reference_split={split!r}: use test (the source's test split) or train (whole "
            "fetuses of the training split set aside)."
        )
    if mode == "held_out" and split == "test" and training_split == "test":
        raise ConfigError(
            "data.split=test trains on the test split, so it cannot also hold the reference: set "
            "data.reference_split=train or train on data.split=train."
        )


class UltrasoundDataModule(L.LightningDataModule):
    """Serves a seeded subset of n real images, augmented on the training device.

    Images are held as uint8 (N, 1, S, S) and become floats in [-1, 1] only after the
    batch reaches the device; ``reference`` holds the non-augmented real images that
    synthetic sets are scored against.
    """

    def __init__(
        self,
        source: str = "phantom",
        root: str | None = None,
        split: str = "train",
        phantom: dict | None = None,
        image_size: int = 64,
        fit: str = "pad",
        n: int | None = None,
        seed: int = 0,
        reference_n: int = 800,
        batch_size: int = 64,
        augment: dict | None = None,
        cache_dir: str | None = None,
        group_by: str = "fetus",
        reference: str = "held_out",
        reference_split: str | None = None,
        reference_seed: int = 0,
        resize: str = "antialias",
        epoch_kimg: float | None = None,
        near_copy_db: float | None = None,
    ):
        super().__init__()
        if reference_split is None:  # the source's test split where it has one
            reference_split = "test" if source in ("phantom", "hc18") else "train"
        check_settings(image_size, fit, resize)
        check_reference(reference, reference_split, split)
        self.source, self.root, self.split = source, root, split
        self.phantom = dict(phantom or {})
        self.image_size, self.fit, self.resize = image_size, fit, resize
        self.n, self.seed, self.reference_n = n, seed, reference_n
        self.group_by, self.reference_mode = group_by, reference
        self.reference_split, self.reference_seed = reference_split, reference_seed
        self.batch_size = batch_size
        if epoch_kimg is not None and not epoch_kimg * 1000 >= 1:
            raise ConfigError(
                f"data.epoch_kimg={epoch_kimg}: give the thousands of images an epoch shows (e.g. 1.0), "
                "or null for one pass over the training images."
            )
        self.epoch_images = None if epoch_kimg is None else round(epoch_kimg * 1000)
        self.near_copy_db = near_copy_db
        self.augment = {"hflip": True, "degrees": 10.0, "interpolation": "nearest", **(augment or {})}
        if self.augment["interpolation"] not in INTERPOLATIONS:
            raise ConfigError(
                f"data.augment.interpolation={self.augment['interpolation']!r}: use one of "
                f"{', '.join(INTERPOLATIONS)} (nearest keeps speckle; the paper's notebook used it)."
            )
        self.cache_dir = cache_dir
        self.files: list[Path] = []
        self.train_files: list[Path] = []
        self.reference_files: list[Path] = []
        self.train_images: torch.Tensor | None = None
        self.reference: torch.Tensor | None = None
        self.held_out: torch.Tensor | None = None
        self.train_groups: torch.Tensor | None = None  # fetus number of each training image
        self.reference_in_training = 0  # reference images that are also training images

    def discover(self, split: str | None = None) -> list[Path]:
        """Every image file of the configured source's ``split`` (default ``data.split``), sorted."""
        split = split or self.split
        if self.source == "phantom":
            return discover("phantom", cache_dir=self.cache_dir, split=split, **self.phantom)
        if self.source == "hc18":
            return discover("hc18", root=self.root, split=split)
        if split != "train":
            raise DataError(
                f"data={self.source} has no {split} split to take the reference from: set "
                "data.reference_split=train (whole fetuses set aside before any training subset is drawn)."
            )
        return discover(self.source, root=self.root)

    def setup(self, stage: str | None = None) -> None:
        if self.train_images is not None:
            return
        self.files = self.discover()
        images = load_images(self.files, self.image_size, self.fit, self.cache_dir, resize=self.resize)
        self._report_duplicates(images)
        groups = groups_of(self.files, self.group_by)
        pool, reference_files, ref_idx = self._reference(groups)
        pool_groups = None if groups is None else [groups[i] for i in pool]
        if self.n is not None and self.n > len(pool) and len(pool) < len(self.files):
            raise DataError(
                f"data.n={self.n} but only {len(pool)} of the {len(self.files)} images remain to train on "
                f"once data.reference_n={self.reference_n} are set aside (data.reference=held_out, "
                f"data.reference_split=train): lower data.n to at most {len(pool)} or data.reference_n, "
                "or take the reference from a test split (data.reference_split=test)."
            )
        train_idx = pool[training_indices(len(pool), self.n, self.seed, pool_groups)]
        self.train_files = [self.files[i] for i in train_idx]
        self.train_images = images[torch.from_numpy(train_idx)]
        labels = np.asarray(groups if groups is not None else [str(p) for p in self.files], dtype=object)
        self.train_groups = torch.from_numpy(np.unique(labels[train_idx].astype(str), return_inverse=True)[1])
        # Reference images of fetuses the generator never trains on: the memorisation audit's yardstick.
        unseen = np.arange(len(ref_idx))  # another split: other fetuses
        if reference_files is self.files:
            unseen = np.flatnonzero(~np.isin(labels[ref_idx], labels[train_idx]))
            self.reference_files, self.reference = [self.files[i] for i in ref_idx], images[torch.from_numpy(ref_idx)]
        else:
            self.reference_files = [reference_files[i] for i in ref_idx]
            self.reference = load_images(
                self.reference_files, self.image_size, self.fit, self.cache_dir, resize=self.resize
            )
        self.reference_in_training = len(set(map(str, self.reference_files)) & set(map(str, self.train_files)))
        self.held_out = self.reference[torch.from_numpy(unseen)]
        log.info(
            "Data: %d images from %s; training on %d, reference set of %d (%s; %d of them training images), "
            "%dx%d px (fit=%s, resize=%s).",
            len(self.files),
            self.source,
            len(self.train_files),
            len(self.reference_files),
            self.reference_mode,
            self.reference_in_training,
            self.image_size,
            self.image_size,
            self.fit,
            self.resize,
        )

    def reference_paths(self) -> list[Path]:
        """The reference set's files, found without reading an image."""
        self.files = self.files or self.discover()
        _, files, indices = self._reference(groups_of(self.files, self.group_by))
        return [files[i] for i in indices]

    def _reference(self, groups: list | None) -> tuple[np.ndarray, list[Path], np.ndarray]:
        """(training pool, the files the reference indexes, the reference's indices into them)."""
        size = len(self.files)
        if self.reference_mode == "held_out" and self.reference_split == "test":
            files = self.discover(self.reference_split)
            if self.reference_n > len(files):
                raise DataError(
                    f"data.reference_n={self.reference_n} but the {self.source} test split has "
                    f"{len(files)} images: set data.reference_n to at most {len(files)}, or set whole "
                    "fetuses aside from the training split instead (data.reference_split=train)."
                )
            test_groups = groups_of(files, self.group_by)
            ref = training_indices(len(files), self.reference_n, self.reference_seed, test_groups)
            return np.arange(size), files, np.sort(ref)
        if self.reference_mode == "held_out":
            pool, ref = set_aside(size, self.reference_n, self.reference_seed, groups)
            return pool, self.files, ref
        seed = self.reference_seed if self.reference_mode == "independent" else self.seed
        train_n = size if self.n is None else self.n
        ref = reference_indices(size, self.reference_n, seed, self.reference_mode, train_n, groups)
        if len(ref) < self.reference_n:
            log.warning(
                "data.reference_n=%d but the dataset has %d images: the reference set uses all of them.",
                self.reference_n,
                len(ref),
            )
        return np.arange(size), self.files, ref

    def _report_duplicates(self, images: torch.Tensor) -> None:
        """Log identical and near-identical images (PSNR >= ``near_copy_db`` at the training
        size): they weigh twice in training and can sit on both sides of a split unless grouped."""
        identical = duplicate_groups(images)
        if identical:
            log.warning(
                "%d groups of images are identical at %d px (kept; remove them from the data if unwanted): %s",
                len(identical),
                self.image_size,
                "; ".join(" = ".join(self.files[i].name for i in g) for g in identical[:10]),
            )
        near = [] if self.near_copy_db is None else near_copy_pairs(images, self.near_copy_db)
        if near:
            log.warning(
                "%d pairs of different images are near-identical (PSNR >= %g dB at %d px), e.g. %s",
                len(near),
                self.near_copy_db,
                self.image_size,
                "; ".join(f"{self.files[i].name} ~ {self.files[j].name}" for i, j in near[:10]),
            )

    def write_manifest(self, run_dir: str | Path) -> None:
        """Record which source files were used: ``subset.txt`` (training), ``reference.txt``."""
        layout = RunLayout(run_dir)
        atomic_write_text("".join(f"{p}\n" for p in self.train_files), layout.subset)
        atomic_write_text("".join(f"{p}\n" for p in self.reference_files), layout.reference)

    def train_dataloader(self) -> ShuffledBatches:
        """The training subset moved once to the trainer's device (4 MB at 64 px, n = 999);
        an epoch is ``data.epoch_kimg`` thousand images when set, else one pass."""
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        return ShuffledBatches(self.train_images.to(device), self.batch_size, self.epoch_images)

    def on_after_batch_transfer(self, batch: torch.Tensor, dataloader_idx: int) -> torch.Tensor:
        images = to_unit(batch)
        if self.trainer is not None and self.trainer.training:
            images = augment(images, **self.augment)
        return to_signed(images)
