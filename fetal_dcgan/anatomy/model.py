"""The head-measurement model: a MONAI U-Net trained on annotated scans, and its bundle.

``train_model`` trains it with Lightning on the annotated images of ``data`` at
``data.image_size`` (a held-out share of whole fetuses kept out), measures its accuracy on
the held-out images, and writes a bundle folder named after a hash of the images, masks
and settings: ``checkpoints/`` and ``tensorboard/`` while it trains (an interrupted run
resumes from ``checkpoints/last.ckpt``), then ``weights.pt`` and, last, ``model.json``
(settings, plausible-head ranges, accuracy), whose presence marks a complete bundle.
``MeasurementModel`` loads one and measures heads in any uint8 image set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lightning as L
import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric, HausdorffDistanceMetric
from monai.networks.nets import UNet
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from fetal_dcgan.anatomy.annotations import AnnotatedSet, annotated_set, read_filled_mask
from fetal_dcgan.anatomy.ellipse import PlausibleRange, fit_ellipses, hc_pixels, perimeter_mm, pixel_mm_at
from fetal_dcgan.data.augment import flip_rotate, to_unit
from fetal_dcgan.data.datamodule import UltrasoundDataModule
from fetal_dcgan.data.preprocess import load_images
from fetal_dcgan.data.sources import groups_of
from fetal_dcgan.data.subsets import held_out_split
from fetal_dcgan.imaging.digests import image_digests, images_digest
from fetal_dcgan.runs import TrainingFolder
from fetal_dcgan.utils import atomic_save, atomic_write_text

log = logging.getLogger(__name__)

#: Bump when training or measuring changes, so cached models are retrained.
MODEL_VERSION = 2
#: Settings of conf/anatomy that change the model (the others only say where and on what it runs).
MODEL_SETTINGS = (
    "seed",
    "held_out",
    "channels",
    "strides",
    "num_res_units",
    "epochs",
    "batch_size",
    "lr",
    "augment",
    "threshold",
    "min_pixels",
    "plausible",
)


def build_unet(channels, strides, num_res_units) -> UNet:
    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=1,
        channels=tuple(channels),
        strides=tuple(strides),
        num_res_units=int(num_res_units),
    )


class HeadSegmenter(L.LightningModule):
    """U-Net on uint8 scans -> head logits, trained with Dice + cross-entropy on the filled
    ellipse (a soft target at the edge: each pixel's covered share)."""

    def __init__(
        self,
        channels=(16, 32, 64, 128),
        strides=(2, 2, 2),
        num_res_units: int = 1,
        lr: float = 2e-3,
        hflip: bool = True,
        degrees: float = 10.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_unet(channels, strides, num_res_units)
        self.loss = DiceCELoss(sigmoid=True)
        self.dice = DiceMetric(include_background=True, reduction="mean")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_unit(images))

    def _augment(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One random flip and rotation per pair, applied to the scan and its mask alike."""
        n = len(images)
        angles = (torch.rand(n, device=self.device) * 2 - 1) * math.radians(self.hparams.degrees)
        flips = (torch.rand(n, device=self.device) < 0.5) & bool(self.hparams.hflip)
        x = flip_rotate(to_unit(images), angles, flips, "nearest")
        y = flip_rotate(to_unit(masks), angles, flips, "bilinear")
        return x, y

    def training_step(self, batch, batch_idx):
        x, y = self._augment(*batch)
        loss = self.loss(self.net(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        images, masks = batch
        logits = self(images)
        y = to_unit(masks)
        self.log("val/loss", self.loss(logits, y), prog_bar=True)
        self.dice((logits > 0).float(), (y > 0.5).float())

    def on_validation_epoch_end(self):
        self.log("val/dice", self.dice.aggregate().item(), prog_bar=True)
        self.dice.reset()

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)


@torch.inference_mode()
def head_probabilities(net: torch.nn.Module, images: torch.Tensor, device: str, batch_size: int) -> torch.Tensor:
    """Sigmoid of the network on uint8 images (N, 1, S, S), in batches, on the CPU."""
    net = net.to(device).eval()
    return (
        torch.cat(
            [
                torch.sigmoid(net(to_unit(images[i : i + batch_size].to(device)))).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )
        if len(images)
        else torch.empty(0, *images.shape[1:])
    )


class BundleLayout(TrainingFolder):
    """Where a model bundle keeps each thing; ``meta`` (model.json) is written last and marks
    the bundle complete."""

    META = "model.json"

    @classmethod
    def of(cls, path: str | Path) -> BundleLayout:
        """The bundle a folder or its model.json belongs to."""
        path = Path(path).expanduser()
        return cls(path.parent if path.name == cls.META else path)

    @property
    def meta(self) -> Path:
        return self.root / self.META

    @property
    def weights(self) -> Path:
        return self.root / "weights.pt"

    @property
    def trained_on(self) -> Path:
        """The images the network learned from, one digest a line."""
        return self.root / "trained_on.txt"

    def is_complete(self) -> bool:
        return self.meta.is_file()


@dataclass
class MeasurementModel:
    """A trained bundle: the network and what ``model.json`` says about it."""

    net: torch.nn.Module
    meta: dict
    path: Path

    @cached_property
    def trained_on(self) -> frozenset[str]:
        """Digests of the images the network learned from (``image_digests``)."""
        path = BundleLayout(self.path).trained_on
        return frozenset(path.read_text().split()) if path.is_file() else frozenset()

    def unseen(self, images: torch.Tensor) -> torch.Tensor:
        """Which of ``images`` the network never trained on (bool per image)."""
        seen = self.trained_on
        return torch.tensor([d not in seen for d in image_digests(images)], dtype=torch.bool)

    @property
    def plausible(self) -> PlausibleRange:
        r = self.meta["plausible"]
        return PlausibleRange(
            tuple(r["area"]), tuple(r["axis_ratio"]), tuple(r["cx"]), tuple(r["cy"]), r["min_fit_iou"]
        )

    def measure(self, images: torch.Tensor, device: str, batch_size: int) -> dict[str, np.ndarray]:
        """The head ellipse of each uint8 image, whether it is a plausible head, and HC as a
        share of the image width."""
        size = int(self.meta["image_size"])
        if images.shape[-1] != size:
            raise ValueError(f"The measurement model {self.path} measures {size} px images, not {images.shape[-1]} px.")
        probs = head_probabilities(self.net, images, device, batch_size)
        e = fit_ellipses(probs, self.meta["threshold"], self.meta["min_pixels"])
        e["plausible"] = self.plausible.contains(e, size)
        e["hc_per_width"] = hc_pixels(e) / size
        return e

    def describe(self) -> str:
        a = self.meta["accuracy"]
        return (
            f"model {self.meta['key'][:10]} ({self.meta['source']}, {self.meta['image_size']} px; held-out "
            f"Dice {a['dice']:.3f}, HC error median {a['hc_error_pct_median']:.1f} %"
            + (f" / {a['hc_abs_error_mm_mean']:.1f} mm mean" if np.isfinite(a["hc_abs_error_mm_mean"]) else "")
            + ")"
        )


def load_model(path: str | Path) -> MeasurementModel:
    """A bundle from its folder (or its model.json)."""
    bundle = BundleLayout.of(path)
    if not bundle.is_complete():
        raise FileNotFoundError(
            f"{bundle.root} is not a complete head-measurement model (no {BundleLayout.META}): train one with "
            "python -m fetal_dcgan.anatomy train."
        )
    meta = json.loads(bundle.meta.read_text())
    net = build_unet(**meta["network"])
    net.load_state_dict(torch.load(bundle.weights, map_location="cpu", weights_only=True))
    return MeasurementModel(net.eval(), meta, bundle.root)


def models_dir(folder: str | Path | None = None) -> Path:
    """Where measurement models are cached: ``folder``, else the anatomy cache under the
    default cache folder (``conf/anatomy``'s ``cache_dir`` for the default paths)."""
    from fetal_dcgan.utils import default_cache_dir

    return Path(folder if folder else Path(default_cache_dir()) / "anatomy").expanduser()


def find_model(
    models_dir: str | Path, image_size: int, fit: str | None = None, source: str | None = None
) -> Path | None:
    """The newest complete bundle under ``models_dir`` for ``image_size`` (and ``fit``),
    preferring one trained on ``source``; None when there is none."""
    root = Path(models_dir).expanduser()
    candidates = []
    for meta_path in root.glob(f"*/{BundleLayout.META}"):
        meta = json.loads(meta_path.read_text())
        current = meta.get("version") == MODEL_VERSION
        if current and meta["image_size"] == image_size and (fit is None or meta["fit"] == fit):
            candidates.append((meta["source"] == source, meta_path.stat().st_mtime, meta_path.parent))
    return max(candidates)[2] if candidates else None


def accuracy(
    probs: torch.Tensor,
    masks: torch.Tensor,
    annotated: AnnotatedSet,
    size: int,
    fit: str,
    ranges: PlausibleRange,
    threshold: float,
    min_pixels: int,
) -> dict:
    """How well the model measures held-out annotated images: Dice and 95th-percentile
    Hausdorff distance of the segmentation, HC error in mm (HC18's measure, where the pixel
    size is known) and in per cent, the share of images with a plausible head, and the
    HC error of the true masks' own ellipses at this size (the floor the resolution sets)."""
    pred, truth = (probs > threshold).float(), (masks > 127).float()
    dice = DiceMetric(include_background=True, reduction="none")(pred, truth).flatten().numpy()
    with warnings.catch_warnings():  # MONAI's Hausdorff distance calls one of its own deprecated arguments
        warnings.filterwarnings("ignore", message=r"monai\.metrics\.utils get_mask_edges", category=FutureWarning)
        hd = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")(pred, truth)
    hd = hd.flatten().numpy()
    e, t = fit_ellipses(probs, threshold, min_pixels), fit_ellipses(masks.float() / 255, 0.5, min_pixels)
    mm_x, mm_y = pixel_mm_at(annotated.sizes, annotated.pixel_mm, size, fit)
    hc_mm, floor_mm = perimeter_mm(e, mm_x, mm_y), perimeter_mm(t, mm_x, mm_y)
    truth_mm = annotated.hc_mm
    in_mm = bool(np.isfinite(truth_mm).any())
    if not in_mm:  # no CSV: the annotation's own ellipse is the truth, in pixels
        hc_mm, truth_mm = hc_pixels(e), hc_pixels(t)
        floor_mm = truth_mm
    error = np.abs(hc_mm - truth_mm)
    pct = 100 * error / truth_mm
    error_mm = error if in_mm else np.full_like(error, math.nan)

    def stat(f, x):
        x = x[np.isfinite(x)]
        return float(f(x)) if len(x) else math.nan

    return {
        "n": len(probs),
        "dice": stat(np.mean, dice),
        "hd95_px": stat(np.median, hd),
        "hc_abs_error_mm_mean": stat(np.mean, error_mm),
        "hc_abs_error_mm_median": stat(np.median, error_mm),
        "hc_error_pct_median": stat(np.median, pct),
        "hc_error_pct_mean": stat(np.mean, pct),
        "resolution_floor_pct_median": stat(np.median, 100 * np.abs(floor_mm - truth_mm) / truth_mm),
        "found_rate": float(ranges.contains(e, size).mean()),
        "measured_rate": float(e["found"].mean()),
    }


def _subset(a: AnnotatedSet, idx: np.ndarray) -> AnnotatedSet:
    return AnnotatedSet(
        [a.images[i] for i in idx], [a.masks[i] for i in idx], a.pixel_mm[idx], a.hc_mm[idx], a.sizes[idx]
    )


def bundle_key(images: torch.Tensor, masks: torch.Tensor, settings: dict, fit: str, group_by: str) -> str:
    payload = json.dumps(
        {
            "version": MODEL_VERSION,
            "images": images_digest(images),
            "masks": images_digest(masks),
            "fit": fit,
            "settings": settings,
            "group_by": group_by,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def measurement_files(datamodule: UltrasoundDataModule) -> list[Path]:
    """The training split less the run's reference images, so reference heads are always
    measured out of sample (with a held-out reference from a test split, nothing is left out)."""
    files = datamodule.discover()
    reference = set(map(str, datamodule.reference_paths()))
    kept = [f for f in files if str(f) not in reference]
    if len(kept) < len(files):
        log.info(
            "Head-measurement model: the %d reference images of this data config are left out of its "
            "training, so reference heads are measured out of sample.",
            len(files) - len(kept),
        )
    return kept


def train_model(cfg: DictConfig) -> MeasurementModel:
    """Train (or find in the cache) the measurement model for ``cfg.data`` at its image
    size with the settings ``cfg.anatomy``; returns the loaded bundle."""
    a = cfg.anatomy
    data = OmegaConf.to_container(cfg.data, resolve=True)
    data.pop("_target_", None)
    datamodule = UltrasoundDataModule(**data)
    size, fit = datamodule.image_size, datamodule.fit
    files = measurement_files(datamodule)
    annotated = annotated_set(files)
    images = load_images(files, size, fit, datamodule.cache_dir)
    masks = load_images(annotated.masks, size, fit, datamodule.cache_dir, read=read_filled_mask)
    settings = OmegaConf.to_container(a, resolve=True)
    settings = {k: settings[k] for k in MODEL_SETTINGS}
    key = bundle_key(images, masks, settings, fit, datamodule.group_by)
    bundle = BundleLayout(Path(a.cache_dir) / key)
    if bundle.is_complete():
        log.info("Head-measurement model found in the cache: %s", bundle.root)
        return load_model(bundle.root)

    train_idx, held_idx = held_out_split(len(files), a.held_out, a.seed, groups_of(files, datamodule.group_by))
    log.info(
        "Head-measurement model %s: %d images (%s, %d px, fit=%s), training on %d, holding out %d (whole fetuses).",
        key,
        len(files),
        datamodule.source,
        size,
        fit,
        len(train_idx),
        len(held_idx),
    )
    start = time.perf_counter()
    net = _fit(a, images, masks, train_idx, held_idx, bundle)
    about = {"key": key, "source": datamodule.source, "image_size": size, "fit": fit, "settings": settings}
    about["train_seconds"] = time.perf_counter() - start
    held_out = (images[held_idx], masks[held_idx], _subset(annotated, held_idx))
    _write_bundle(bundle, net, a, images[train_idx], masks[train_idx], held_out, about)
    return load_model(bundle.root)


def _fit(a: DictConfig, images, masks, train_idx: np.ndarray, held_idx: np.ndarray, bundle: BundleLayout):
    """The U-Net trained with Lightning (resuming an interrupted bundle); returns it on the CPU."""
    L.seed_everything(a.seed, workers=True)
    module = HeadSegmenter(a.channels, a.strides, a.num_res_units, a.lr, a.augment.hflip, a.augment.degrees)
    t_idx, h_idx = torch.from_numpy(train_idx), torch.from_numpy(held_idx)
    train_loader = DataLoader(
        TensorDataset(images[t_idx], masks[t_idx]),
        batch_size=a.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(a.seed),
    )
    held_loader = DataLoader(TensorDataset(images[h_idx], masks[h_idx]), batch_size=a.inference_batch_size)
    trainer = L.Trainer(
        max_epochs=a.epochs,
        accelerator=a.accelerator,
        devices=1,
        deterministic=True,
        default_root_dir=bundle.root,
        log_every_n_steps=5,
        logger=L.pytorch.loggers.TensorBoardLogger(bundle.root, name="tensorboard", version=""),
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(bundle.checkpoints, save_last=True, save_top_k=0)],
    )
    last = bundle.last_checkpoint
    if last.is_file():
        log.info("Resuming the head-measurement model from %s", last)
    trainer.fit(module, train_loader, held_loader, ckpt_path=last if last.is_file() else None)
    return module.net.cpu().eval()


def _write_bundle(
    bundle: BundleLayout,
    net: torch.nn.Module,
    a: DictConfig,
    train_images: torch.Tensor,
    train_masks: torch.Tensor,
    held_out: tuple[torch.Tensor, torch.Tensor, AnnotatedSet],
    about: dict,
) -> None:
    """Weights, the trained-on digests and, last, model.json with the plausible ranges (from
    the training heads) and the accuracy (on the held-out heads)."""
    size, fit = about["image_size"], about["fit"]
    ranges = PlausibleRange.of(
        fit_ellipses(train_masks.float() / 255), size, a.plausible.margin, a.plausible.min_fit_iou
    )
    held_images, held_masks, held_annotated = held_out
    probs = head_probabilities(net, held_images, "cpu", a.inference_batch_size)
    scores = accuracy(probs, held_masks, held_annotated, size, fit, ranges, a.threshold, a.min_pixels)
    atomic_save(net.state_dict(), bundle.weights)
    atomic_write_text("\n".join(image_digests(train_images)) + "\n", bundle.trained_on)
    meta = {
        "version": MODEL_VERSION,
        "key": about["key"],
        "source": about["source"],
        "image_size": size,
        "fit": fit,
        "network": {"channels": list(a.channels), "strides": list(a.strides), "num_res_units": a.num_res_units},
        "threshold": a.threshold,
        "min_pixels": a.min_pixels,
        "plausible": ranges.to_dict(),
        "n_train": len(train_images),
        "n_held_out": len(held_images),
        "train_seconds": about["train_seconds"],
        "settings": about["settings"],
        "accuracy": scores,
    }
    atomic_write_text(json.dumps(meta, indent=1), bundle.meta)  # last: marks the bundle complete
