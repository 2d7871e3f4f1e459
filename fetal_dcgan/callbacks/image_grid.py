"""TensorBoard image grids: a fixed-noise sample grid every few epochs, one real batch."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid


def _gray_grid(images: torch.Tensor) -> torch.Tensor:
    """A (1, H, W) grid: one channel is a third of the bytes of make_grid's RGB."""
    return make_grid(images, nrow=8)[:1]


def _tensorboard(trainer: L.Trainer):
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


class FixedNoiseGrid(L.Callback):
    """Logs ``samples/fixed_noise`` from the same latents each time, so progress is visible,
    and ``train/real_batch`` once (augmented real images, to check preprocessing)."""

    def __init__(
        self,
        every_n_epochs: int = 1,
        n_images: int = 64,
        seed: int = 0,
        batchnorm: str = "batch",
        generator: str = "ema",
    ):
        self.every_n_epochs, self.n_images, self.seed, self.batchnorm = every_n_epochs, n_images, seed, batchnorm
        self.generator = generator
        self._logged_real = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._logged_real or (writer := _tensorboard(trainer)) is None:
            return
        real = batch[: self.n_images].detach().float().add(1).div(2).clamp(0, 1).cpu()
        writer.add_image("train/real_batch", _gray_grid(real), trainer.global_step)
        self._logged_real = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs and epoch != trainer.max_epochs:
            return
        if (writer := _tensorboard(trainer)) is None:
            return
        z = pl_module.noise(self.n_images, generator=torch.Generator().manual_seed(self.seed))
        grid = _gray_grid(pl_module.generate(z, self.batchnorm, self.generator).cpu())
        writer.add_image("samples/fixed_noise", grid, epoch)
