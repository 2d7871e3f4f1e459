"""Memorisation audit: is a synthetic image a (flipped, slightly rotated) training image?

Every synthetic image is compared with every training image in each of its training-time
variants (mirror x rotations of -d, -d/2, 0, d/2, d degrees for training's rotation range
d = ``data.augment.degrees``, black corners) by normalised cross-correlation (NCC, Pearson
r of the pixels; 1 = identical up to brightness and contrast), as one matrix product. A
synthetic image counts as a copy when its NCC to the nearest training variant exceeds
what distinct real images reach: the ``quantile`` (0.95) of the same nearest-NCC for
held-out real images (reference images not used in training), or, without
``min_held_out`` (20) of those, for the training images against the training images of
other fetuses (leave-one-fetus-out: a repeat scan of the same head is not a distinct image).
``copy_ratio`` is the share of such synthetic images: about 0.05 for new real images,
near 1 for copies. ``copy_ratio_features`` repeats the audit in a feature space (Inception
when its weights are present, else the fixed random network), which also catches copies
that moved or changed contrast more than the pixel comparison tolerates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fetal_dcgan.data.augment import flip_rotate, to_unit
from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import SpaceOptions
from fetal_dcgan.metrics.registry import SHARE, Key, register_figure, register_metric
from fetal_dcgan.rules import int_at_least, number_in, setting


def rotations(degrees: float) -> tuple[float, ...]:
    """The audited rotations for training's range [-degrees, degrees]: its ends, halves and 0."""
    return tuple(sorted({-degrees, -degrees / 2, 0.0, degrees / 2, degrees}))


def _standardise(images: torch.Tensor) -> torch.Tensor:
    """Rows of zero mean and unit norm, so a dot product is the NCC (constant images: 0)."""
    x = images.flatten(1).float()
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def training_variants(train: torch.Tensor, degrees: float) -> tuple[torch.Tensor, torch.Tensor]:
    """All flip/rotation variants of uint8 training images, and the source index of each."""
    x = to_unit(train)
    variants, index = [], []
    for flip in (False, True):
        for degrees in rotations(degrees):
            angles = torch.full((len(x),), math.radians(degrees), device=x.device)
            variants.append(flip_rotate(x, angles, torch.full((len(x),), flip, device=x.device)))
            index.append(torch.arange(len(x), device=x.device))
    return torch.cat(variants), torch.cat(index)


def nearest_ncc(
    query: torch.Tensor,
    bank: torch.Tensor,
    bank_index: torch.Tensor,
    exclude: torch.Tensor | None = None,
    block: int = 256,
    bank_groups: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Max NCC (centred cosine) of each query row to the rows of a standardised bank, and
    the training index it came from; rows are images or feature vectors. ``exclude``: the
    group of each query, whose bank rows (``bank_groups``, default ``bank_index``) are skipped."""
    bank_groups = bank_index if bank_groups is None else bank_groups
    q = _standardise(query)
    best, where = np.empty(len(q)), np.empty(len(q), np.int64)
    for start in range(0, len(q), block):
        sims = q[start : start + block] @ bank.T
        if exclude is not None:  # leave-one-out: not the query's own variants
            own = exclude[start : start + block, None] == bank_groups[None, :]
            sims = sims.masked_fill(own, -2.0)
        values, columns = sims.max(1)
        best[start : start + len(values)] = values.cpu().numpy()
        where[start : start + len(values)] = bank_index[columns].cpu().numpy()
    return best, where


@dataclass
class Space:
    """The training variants in one space (pixels or features), calibrated on real images."""

    bank: torch.Tensor  # standardised rows
    index: torch.Tensor  # training image of each row
    threshold: float  # similarity above which a synthetic image counts as a copy
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


def _space(
    bank_rows: torch.Tensor,
    index: torch.Tensor,
    train_rows: torch.Tensor,
    held_out_rows: torch.Tensor | None,
    quantile: float,
    groups: torch.Tensor,
) -> Space:
    bank = _standardise(bank_rows)
    if held_out_rows is not None:
        calibration = nearest_ncc(held_out_rows, bank, index)[0]
    else:
        calibration = nearest_ncc(train_rows, bank, index, exclude=groups, bank_groups=groups[index])[0]
    return Space(bank, index, float(np.quantile(calibration, quantile)), float(calibration.mean()))


def training_bank(
    train: torch.Tensor,
    held_out: torch.Tensor | None = None,
    features: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    degrees: float,
    quantile: float,
    min_held_out: int,
    groups: torch.Tensor | None = None,
) -> TrainingBank:
    """Every flip/rotation variant (``degrees``: training's rotation range) of the training
    images, in pixels and, with ``features`` (uint8 images -> (N, d)), in that feature space,
    with the copy thresholds of each (the ``quantile`` of real images' nearest NCC); on the
    device of ``train`` (``features`` must return rows there too). ``groups``: the fetus of
    each training image, left out with it when the training images calibrate."""
    if held_out is not None and len(held_out) < min_held_out:
        held_out = None  # too few to calibrate on: the training images calibrate instead
    variants, index = training_variants(train, degrees)
    groups = torch.arange(len(train)) if groups is None else torch.as_tensor(groups)
    groups = groups.to(index.device)
    pixels = _space(variants, index, to_unit(train), None if held_out is None else to_unit(held_out), quantile, groups)
    space = None
    if features is not None:
        space = _space(
            features(variants.mul(255).round().to(torch.uint8)),
            index,
            features(train),
            None if held_out is None else features(held_out),
            quantile,
            groups,
        )
    source = "training images, leave-one-fetus-out" if held_out is None else "held-out real images"
    return TrainingBank(pixels, space, source)


def memorisation(
    fake: torch.Tensor, bank: TrainingBank, features: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> dict:
    """Copy ratio of a synthetic set in pixel space and, when the bank has them, in features."""
    similarity, nearest, ratio = bank.pixels.audit(to_unit(fake))
    out = {
        "scalars": {
            "copy_ratio": ratio,
            "copy_threshold_ncc": bank.pixels.threshold,
            "nearest_train_ncc_mean": float(similarity.mean()),
            "calibration_ncc_mean": bank.pixels.calibration_mean,
        },
        "per_image": {"nearest_train_ncc": similarity, "nearest_train_index": nearest},
    }
    if bank.features is not None and features is not None:
        similarity, nearest, ratio = bank.features.audit(features(fake))
        out["scalars"]["copy_ratio_features"] = ratio
        out["per_image"].update(nearest_train_feature_sim=similarity, nearest_train_feature_index=nearest)
    return out


def training_rotations(meaning: str):
    """The setting of training's rotation range, whose variants a training-side audit measures against."""
    return setting(10, number_in(0, 180), "${data.augment.degrees}", meaning)


@dataclass
class MemorisationOptions(SpaceOptions):
    degrees: Any = training_rotations("audited rotations: -d, -d/2, 0, d/2, d (training's range)")
    quantile: float = setting(
        0.95,
        number_in(0, 1, low_open=True),
        "0.95",
        "copy threshold: this quantile of real images' nearest-NCC to training",
    )
    min_held_out: int = setting(
        20, int_at_least(2), "20", "fewer held-out real images: calibrate on training images, leave-one-out"
    )


@register_metric(
    "memorisation",
    "memorisation audit: synthetic images that are copies of training images",
    (
        Key(
            "copy_ratio",
            "share of synthetic images closer (NCC) to a training image than real images get",
            better="lower",
            plotted=True,
            bounds=SHARE,
        ),
        Key(
            "copy_threshold_ncc",
            "the NCC above which an image counts as a copy (calibrated on real images)",
            role="reference",
        ),
        Key(
            "nearest_train_ncc_mean",
            "mean NCC of each synthetic image to its nearest training variant",
            better="lower",
            bounds=(-1.0, 1.0),
        ),
        Key("calibration_ncc_mean", "the same mean for the calibration images", role="reference"),
        Key("copy_ratio_features", "copy_ratio in feature space", better="lower", bounds=SHARE),
        Key("nearest_train_ncc", "NCC of the image to its nearest training variant", level="image", role="diagnostic"),
        Key("nearest_train_index", "index of that training image", level="image", role="diagnostic"),
        Key("nearest_train_feature_sim", "the same in feature space", level="image", role="diagnostic"),
        Key(
            "nearest_train_feature_index",
            "index of that training image in feature space",
            level="image",
            role="diagnostic",
        ),
    ),
    options=MemorisationOptions,
)
def _memorisation(ctx: ScoringContext) -> dict:
    train = ctx.need_train("the memorisation audit")
    space, device, o = ctx.space(), ctx.device, ctx.options

    def features(images: torch.Tensor) -> torch.Tensor:  # training side: kept for the run, shared with `copying`
        return ctx.features(space, images, persist=False).to(device)

    bank = ctx.store.get(  # the training side is the same for every snapshot of a run
        "memorisation",
        (train, ctx.held_out, ctx.train_groups),
        lambda: training_bank(
            train.to(device),
            None if ctx.held_out is None else ctx.held_out.to(device),
            features,
            degrees=float(o.degrees),
            quantile=o.quantile,
            min_held_out=o.min_held_out,
            groups=ctx.train_groups,
        ),
        f"{space}-{o}",
        persist=False,
    )
    out = memorisation(ctx.fake.to(device), bank, lambda fake: ctx.features(space).to(device))  # the set's own
    out["status"] = f"ok: calibrated on {bank.calibration}; features: {ctx.label(space)}"
    return out


def closest_pairs_sheet(
    fake: torch.Tensor, train: torch.Tensor | None, per_image: dict, path, pairs: int = 16, scale: int = 3
):
    """A PNG of the synthetic images closest to a training image, each beside that image
    (left: synthetic, right: training), most similar first, for a person to judge; None
    when the audit did not run (``per_image``: a scored set's per-image values)."""
    from PIL import Image

    if train is None or "nearest_train_ncc" not in per_image:
        return None
    ncc, nearest = per_image["nearest_train_ncc"], per_image["nearest_train_index"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    order = np.argsort(-ncc)[:pairs]
    h, w = fake.shape[-2:]
    sheet = np.full((len(order) * (h + 2), 2 * w + 6), 255, np.uint8)
    for row, i in enumerate(order):
        top = row * (h + 2)
        sheet[top : top + h, :w] = fake[i, 0].numpy()
        sheet[top : top + h, w : w + 6] = 0  # a pair reads as one strip
        sheet[top : top + h, w + 6 :] = train[nearest[i], 0].numpy()
    columns = 4
    rows = -(-len(order) // columns)
    block_h = rows * (h + 2)
    tiled = np.full((block_h, columns * (2 * w + 16)), 255, np.uint8)
    for c in range(columns):
        part = sheet[c * block_h : (c + 1) * block_h]
        tiled[: len(part), c * (2 * w + 16) : c * (2 * w + 16) + 2 * w + 6] = part
    image = Image.fromarray(tiled)
    image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST).save(path)
    return path


@register_figure("memorisation", "closest_to_training")
def _closest_sheet(fake: torch.Tensor, train: torch.Tensor | None, result, path):
    return closest_pairs_sheet(fake, train, result.per_image, path)
