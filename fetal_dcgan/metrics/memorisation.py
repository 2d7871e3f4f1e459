"""Memorisation audit: is a synthetic image a (flipped, slightly rotated) training image?

Every synthetic image is compared with every training image in each of its training-time
variants (mirror x rotations of -10, -5, 0, 5, 10 degrees, black corners) by normalised
cross-correlation (NCC, Pearson r of the pixels; 1 = identical up to brightness and
contrast), as one matrix product. A synthetic image counts as a copy when its NCC to the
nearest training variant exceeds what distinct real images reach: the 95th percentile of
the same nearest-NCC for held-out real images (reference images not used in training),
or, without 20 of those, for the training images against the other training images.
``copy_ratio`` is the share of such synthetic images: about 0.05 for new real images,
near 1 for copies. ``copy_ratio_features`` repeats the audit in a feature space (Inception
when its weights are present, else the fixed random network), which also catches copies
that moved or changed contrast more than the pixel comparison tolerates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from fetal_dcgan.data.augment import flip_rotate, to_unit

ROTATIONS_DEG = (-10.0, -5.0, 0.0, 5.0, 10.0)
CALIBRATION_QUANTILE = 0.95
MIN_HELD_OUT = 20


def _standardise(images: torch.Tensor) -> torch.Tensor:
    """Rows of zero mean and unit norm, so a dot product is the NCC (constant images: 0)."""
    x = images.flatten(1).float()
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def training_variants(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All flip/rotation variants of uint8 training images, and the source index of each."""
    x = to_unit(train)
    variants, index = [], []
    for flip in (False, True):
        for degrees in ROTATIONS_DEG:
            angles = torch.full((len(x),), math.radians(degrees), device=x.device)
            variants.append(flip_rotate(x, angles, torch.full((len(x),), flip, device=x.device)))
            index.append(torch.arange(len(x), device=x.device))
    return torch.cat(variants), torch.cat(index)


def nearest_ncc(query: torch.Tensor, bank: torch.Tensor, bank_index: torch.Tensor,
                exclude: torch.Tensor | None = None, block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Max NCC (centred cosine) of each query row to the rows of a standardised bank, and
    the training index it came from; rows are images or feature vectors."""
    q = _standardise(query)
    best, where = np.empty(len(q)), np.empty(len(q), np.int64)
    for start in range(0, len(q), block):
        sims = q[start:start + block] @ bank.T
        if exclude is not None:  # leave-one-out: not the query's own variants
            own = exclude[start:start + block, None] == bank_index[None, :]
            sims = sims.masked_fill(own, -2.0)
        values, columns = sims.max(1)
        best[start:start + len(values)] = values.cpu().numpy()
        where[start:start + len(values)] = bank_index[columns].cpu().numpy()
    return best, where


@dataclass
class Space:
    """The training variants in one space (pixels or features), calibrated on real images."""

    bank: torch.Tensor        # standardised rows
    index: torch.Tensor       # training image of each row
    threshold: float          # similarity above which a synthetic image counts as a copy
    calibration_mean: float

    def audit(self, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
        """Nearest similarity and training index of each row, and the share above threshold."""
        similarity, nearest = nearest_ncc(rows, self.bank, self.index)
        return similarity, nearest, float((similarity > self.threshold).mean())


@dataclass
class TrainingBank:
    """Everything about the training side of the audit: built once, used for every set."""

    pixels: Space
    features: Space | None
    calibration: str


def _space(bank_rows: torch.Tensor, index: torch.Tensor, train_rows: torch.Tensor,
           held_out_rows: torch.Tensor | None) -> Space:
    bank = _standardise(bank_rows)
    if held_out_rows is not None:
        calibration = nearest_ncc(held_out_rows, bank, index)[0]
    else:
        own = torch.arange(len(train_rows), device=index.device)
        calibration = nearest_ncc(train_rows, bank, index, exclude=own)[0]
    return Space(bank, index, float(np.quantile(calibration, CALIBRATION_QUANTILE)), float(calibration.mean()))


def training_bank(train: torch.Tensor, held_out: torch.Tensor | None = None,
                  features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> TrainingBank:
    """Every flip/rotation variant of the training images, in pixels and, with ``features``
    (uint8 images -> (N, d)), in that feature space, with the copy thresholds of each; on
    the device of ``train`` (``features`` must return rows there too)."""
    if held_out is not None and len(held_out) < MIN_HELD_OUT:
        held_out = None  # too few to calibrate on: the training images calibrate instead
    variants, index = training_variants(train)
    pixels = _space(variants, index, to_unit(train), None if held_out is None else to_unit(held_out))
    space = None
    if features is not None:
        space = _space(features(variants.mul(255).round().to(torch.uint8)), index, features(train),
                       None if held_out is None else features(held_out))
    source = "training images, leave-one-out" if held_out is None else "held-out real images"
    return TrainingBank(pixels, space, source)


def memorisation(fake: torch.Tensor, bank: TrainingBank,
                 features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict:
    """Copy ratio of a synthetic set in pixel space and, when the bank has them, in features."""
    similarity, nearest, ratio = bank.pixels.audit(to_unit(fake))
    out = {
        "scalars": {"copy_ratio": ratio, "copy_threshold_ncc": bank.pixels.threshold,
                    "nearest_train_ncc_mean": float(similarity.mean()),
                    "calibration_ncc_mean": bank.pixels.calibration_mean},
        "per_image": {"nearest_train_ncc": similarity, "nearest_train_index": nearest},
    }
    if bank.features is not None and features is not None:
        similarity, nearest, ratio = bank.features.audit(features(fake))
        out["scalars"]["copy_ratio_features"] = ratio
        out["per_image"].update(nearest_train_feature_sim=similarity, nearest_train_feature_index=nearest)
    return out


def closest_pairs_sheet(fake: torch.Tensor, train: torch.Tensor, ncc: np.ndarray, nearest: np.ndarray,
                        path, pairs: int = 16, scale: int = 3):
    """A PNG of the synthetic images closest to a training image, each beside that image
    (left: synthetic, right: training), most similar first, for a person to judge."""
    from PIL import Image

    order = np.argsort(-ncc)[:pairs]
    h, w = fake.shape[-2:]
    sheet = np.full((len(order) * (h + 2), 2 * w + 6), 255, np.uint8)
    for row, i in enumerate(order):
        top = row * (h + 2)
        sheet[top:top + h, :w] = fake[i, 0].numpy()
        sheet[top:top + h, w:w + 6] = 0  # a pair reads as one strip
        sheet[top:top + h, w + 6:] = train[nearest[i], 0].numpy()
    columns = 4
    rows = -(-len(order) // columns)
    block_h = rows * (h + 2)
    tiled = np.full((block_h, columns * (2 * w + 16)), 255, np.uint8)
    for c in range(columns):
        part = sheet[c * block_h:(c + 1) * block_h]
        tiled[:len(part), c * (2 * w + 16):c * (2 * w + 16) + 2 * w + 6] = part
    image = Image.fromarray(tiled)
    image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST).save(path)
    return path
