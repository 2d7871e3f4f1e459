"""The DCGAN as a LightningModule: one discriminator and one generator step per batch."""

from __future__ import annotations

from functools import partial

import lightning as L
import torch
import torch.nn.functional as F

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.models.networks import Discriminator, Generator, init_dcgan_weights


class DCGAN(L.LightningModule):
    """Generator and discriminator trained with manual optimization and BCE on logits.

    Each step updates the discriminator on real (target ``real_label``, < 1 for one-sided
    label smoothing) and detached fake images, then the generator to make the same fakes
    look real, as in Radford et al. and the PyTorch DCGAN example.
    """

    def __init__(self, image_size: int = 64, nz: int = 100, ngf: int = 64, ndf: int = 64,
                 lr: float = 2e-4, lr_g: float | None = None, lr_d: float | None = None,
                 beta1: float = 0.5, beta2: float = 0.999, real_label: float = 1.0, init_std: float = 0.02,
                 channels_last: bool = False, compile: str | None = None):
        super().__init__()
        if compile not in (None, "default", "reduce-overhead", "max-autotune"):
            raise ConfigError(f"model.compile={compile!r}: use null, default, reduce-overhead or max-autotune.")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = Generator(image_size, nz, ngf)
        self.discriminator = Discriminator(image_size, ndf)
        self.generator.apply(partial(init_dcgan_weights, std=init_std))
        self.discriminator.apply(partial(init_dcgan_weights, std=init_std))

    def configure_model(self) -> None:
        """Speed options, set before fit moves the module to its device (which keeps the
        memory format). ``nn.Module.compile`` compiles in place and lazily, at the first
        step, so checkpoints keep the plain parameter names."""
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.hparams.compile and not getattr(self, "_compiled", False):
            self.generator.compile(mode=self.hparams.compile)
            self.discriminator.compile(mode=self.hparams.compile)
            self._compiled = True

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent vectors (n, nz) from N(0, 1) on the module's device."""
        if generator is None:
            return torch.randn(n, self.hparams.nz, device=self.device)
        return torch.randn(n, self.hparams.nz, generator=generator, device=generator.device).to(self.device)

    def training_step(self, real: torch.Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]
        if self.hparams.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        fake = self.generator(self.noise(n))

        self.toggle_optimizer(opt_d)
        logits_real = self.discriminator(real)
        logits_fake = self.discriminator(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(logits_real, torch.full_like(logits_real, self.hparams.real_label))
                  + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        logits_gen = self.discriminator(fake)
        loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        self.log_dict({"train/loss_d": loss_d.detach(), "train/loss_g": loss_g.detach(),
                       "train/d_real": torch.sigmoid(logits_real.detach()).mean(),
                       "train/d_fake": torch.sigmoid(logits_fake.detach()).mean()},
                      on_step=False, on_epoch=True, prog_bar=True, batch_size=n)

    def configure_optimizers(self):
        hp = self.hparams
        # One fused kernel per optimizer step on the GPU instead of a launch per parameter.
        opts = {"betas": (hp.beta1, hp.beta2), "fused": self.device.type == "cuda"}
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g or hp.lr, **opts)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d or hp.lr, **opts)
        return opt_g, opt_d

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batchnorm: str = "batch") -> torch.Tensor:
        """Images as uint8 (N, 1, S, S) from latents.

        ``batchnorm="batch"`` normalises with the statistics of the batch being generated,
        as the DCGAN reference code (and the study's notebook) does, and leaves the running
        statistics untouched; ``"running"`` uses the running averages (inference mode),
        which early in training can wash the images out to a flat grey.
        """
        if batchnorm not in ("batch", "running"):
            raise ValueError(f"batchnorm={batchnorm!r}: use 'batch' or 'running'.")
        was_training = self.generator.training
        saved = {k: v.clone() for k, v in self.generator.state_dict().items() if "running" in k or "num_batches" in k}
        self.generator.train(batchnorm == "batch")
        try:
            images = self.generator(z.to(self.device))
        finally:
            self.generator.load_state_dict(saved, strict=False)
            self.generator.train(was_training)
        return images.float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)
