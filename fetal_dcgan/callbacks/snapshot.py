"""Snapshots at chosen epochs: a checkpoint and a set of synthetic PNG images.

A set is written into a hidden temporary folder and renamed to ``samples/epoch=NNNN``
only when every image is on disk, so a folder with that name is always a whole set.
Every set uses the same latent vectors (one seed), so sets differ only by the epoch.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.models.generator import ImageGenerator
from fetal_dcgan.runs import RunLayout

log = logging.getLogger(__name__)


def write_sample_set(
    module: ImageGenerator,
    out_dir: str | Path,
    n_images: int,
    seed: int,
    batch_size: int = 256,
    batchnorm: str = "batch",
    generator: str = "ema",
) -> Path:
    """Generate ``n_images`` with latents seeded by ``seed`` and write them as 8-bit PNGs.

    Every batch holds ``batch_size`` latents (the training batch size, in the configs): with
    ``batchnorm="batch"`` each image's BatchNorm statistics then come from a batch as large
    as in training. The last batch is filled up with extra latents whose images are dropped.
    The image latents are drawn first, so image i has the same latent whatever the batch size.
    A generator without batch statistics (``ImageGenerator.batch_statistics``) skips the
    filling. ``generator``: ``ema`` (the weight average, when the model keeps one) or ``raw``.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = torch.Generator().manual_seed(seed)
    latents = module.noise(n_images, generator=rng)
    padding = module.noise(-n_images % batch_size, generator=rng)
    for start in range(0, n_images, batch_size):
        count = min(batch_size, n_images - start)
        z = latents[start : start + count]
        if count < batch_size and module.batch_statistics:
            z = torch.cat([z, padding[: batch_size - count]])
        images = module.generate(z, batchnorm, generator)[:count].cpu().numpy()
        for offset, image in enumerate(images):
            Image.fromarray(np.ascontiguousarray(image[0])).save(tmp / f"{start + offset:04d}.png", compress_level=1)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


class SampleSnapshots(L.Callback):
    """At each epoch in ``epochs`` (1-based, the last epoch always included) save a
    weights-only checkpoint ``checkpoints/epoch=NNNN.ckpt`` and a sample set."""

    def __init__(
        self,
        dirpath: str,
        max_epochs: int,
        epochs: list[int] | None = None,
        n_images: int = 800,
        seed: int = 0,
        batch_size: int = 256,
        batchnorm: str = "batch",
        generator: str = "ema",
    ):
        if n_images < 1:
            raise ConfigError(f"sampling.n_images={n_images}: a sample set needs at least one image.")
        bad = [e for e in epochs or [] if not 1 <= e <= max_epochs]
        if bad:
            raise ConfigError(
                f"sampling.epochs {bad} fall outside 1..trainer.max_epochs={max_epochs}: "
                "remove them or raise trainer.max_epochs."
            )
        self.dirpath = Path(dirpath)
        self.max_epochs = max_epochs
        self.epochs = {*(epochs or []), max_epochs}
        self.n_images, self.seed, self.batch_size, self.batchnorm = n_images, seed, batch_size, batchnorm
        self.generator = generator
        self.seconds = 0.0  # time spent writing snapshots, for the sweep benchmark

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.max_epochs != self.max_epochs:
            raise ConfigError(
                f"SampleSnapshots was set up for {self.max_epochs} epochs but the trainer runs "
                f"{trainer.max_epochs}: pass the trainer's max_epochs."
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch not in self.epochs:
            return
        start = time.perf_counter()
        layout = RunLayout(self.dirpath)
        trainer.save_checkpoint(layout.snapshot_checkpoint(epoch), weights_only=True)
        if trainer.is_global_zero:
            out = write_sample_set(
                pl_module,
                layout.samples(epoch),
                self.n_images,
                self.seed,
                self.batch_size,
                self.batchnorm,
                self.generator,
            )
            log.info("Epoch %d: wrote %d images to %s", epoch, self.n_images, out)
        self.seconds += time.perf_counter() - start
