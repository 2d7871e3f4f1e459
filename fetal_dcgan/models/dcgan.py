"""The DCGAN as a LightningModule: one discriminator and one generator step per batch.

With every option at its default this is the paper's DCGAN (BCE, BatchNorm in both
networks). The stabilisers are options: the loss (``losses``), the discriminator's
normalisation and minibatch standard deviation (``networks``), a lazy R1 penalty,
DiffAugment with a fixed or ADA-adapted probability (``diffaugment``) and an exponential
moving average of the generator's weights for snapshots (``torch.optim.swa_utils``).
"""

from __future__ import annotations

from functools import partial

import lightning as L
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.models.diffaugment import AdaptiveProbability, diff_augment
from fetal_dcgan.models.generator import TrainingProgress, standard_normal
from fetal_dcgan.models.losses import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from fetal_dcgan.models.networks import Discriminator, Generator, init_dcgan_weights

#: torch.compile modes a run may use. The CUDA-graph modes (reduce-overhead, max-autotune) are
#: refused: a training step calls the discriminator twice, and the second replay overwrites
#: the first call's outputs before the loss reads them (docs/performance.md, "GPU figures").
COMPILE_MODES = (None, "default", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


class DCGAN(TrainingProgress, L.LightningModule):
    """Generator and discriminator trained with manual optimization on logits.

    Each step updates the discriminator on real (target ``real_label``, < 1 for one-sided
    label smoothing, BCE only) and detached fake images, then the generator to make the
    same fakes look real, as in Radford et al. and the PyTorch DCGAN example.
    """

    generator_name = "dcgan"
    batch_statistics = True

    def __init__(
        self,
        image_size: int = 64,
        nz: int = 100,
        ngf: int = 64,
        ndf: int = 64,
        lr: float = 2e-4,
        lr_g: float | None = None,
        lr_d: float | None = None,
        beta1: float = 0.5,
        beta2: float = 0.999,
        real_label: float = 1.0,
        init_std: float = 0.02,
        loss: str = "bce",
        d_norm: str = "batch",
        minibatch_std: bool = False,
        r1_gamma: float = 0.0,
        r1_every: int = 16,
        gp_weight: float = 10.0,
        ema_decay: float = 0.0,
        diffaugment: list[str] | tuple[str, ...] = (),
        ada_target: float | None = None,
        ada_images: int = 100_000,
        channels_last: bool = False,
        compile: str | None = None,
    ):
        super().__init__()
        if compile in CUDA_GRAPH_MODES:
            raise ConfigError(
                f"model.compile={compile} replays CUDA graphs, which overwrite the discriminator's first outputs "
                "of a step with its second: use model.compile=default (or max-autotune-no-cudagraphs)."
            )
        if compile not in COMPILE_MODES:
            raise ConfigError(f"model.compile={compile!r}: use null, default or max-autotune-no-cudagraphs.")
        if loss == "wgan-gp" and d_norm == "batch":
            raise ConfigError(
                "model.loss=wgan-gp with model.d_norm=batch: the gradient penalty is per image and "
                "BatchNorm mixes the images of a batch. Use model.d_norm=none or spectral."
            )
        if compile and (r1_gamma > 0 or loss == "wgan-gp"):
            raise ConfigError(
                f"model.compile={compile} with a gradient penalty (model.r1_gamma or model.loss=wgan-gp): "
                "torch.compile does not support the double backward the penalty needs. Use "
                "model.compile=null, or stabiliser=baseline."
            )
        if ada_target is not None and not diffaugment:
            raise ConfigError(
                "model.ada_target is set but model.diffaugment is empty: name the operations ADA "
                "applies, e.g. model.diffaugment=[translation,cutout]."
            )
        diffaugment = [str(name) for name in diffaugment]  # a plain list: checkpoints load with weights_only
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = Generator(image_size, nz, ngf)
        self.discriminator = Discriminator(image_size, ndf, norm=d_norm, minibatch_std=minibatch_std)
        self.generator.apply(partial(init_dcgan_weights, std=init_std))
        self.discriminator.apply(partial(init_dcgan_weights, std=init_std))
        self.generator_ema = None
        if ema_decay > 0:
            self.generator_ema = AveragedModel(
                self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            ).requires_grad_(False)
        self.ada = AdaptiveProbability(ada_target, ada_images) if ada_target is not None else None
        self.images_seen = 0  # real images shown to the discriminator: training length in images (kimg / 1000)

    @property
    def steps(self) -> int:
        """Training iterations (each one discriminator and one generator step)."""
        return self.global_step // 2

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
        return standard_normal((n, self.hparams.nz), self.device, generator)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees: ``images`` through DiffAugment (real and fake alike)."""
        if not self.hparams.diffaugment:
            return images
        return diff_augment(images, self.hparams.diffaugment, self.ada.p if self.ada is not None else 1.0)

    def training_step(self, real: torch.Tensor, batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]
        self.images_seen += n
        if hp.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        fake = self.generator(self.noise(n))

        self.toggle_optimizer(opt_d)
        # global_step counts both optimizers' steps; lazy R1 every r1_every-th discriminator step,
        # scaled by r1_every (Karras et al. 2020), so the mean penalty is the same.
        r1_now = hp.r1_gamma > 0 and (self.global_step // 2) % hp.r1_every == 0
        real_in = self.augment(real.detach().requires_grad_(r1_now))
        fake_in = self.augment(fake.detach())
        logits_real = self.discriminator(real_in)
        logits_fake = self.discriminator(fake_in)
        loss_d = discriminator_loss(hp.loss, logits_real, logits_fake, hp.real_label)
        penalties = {}
        if hp.loss == "wgan-gp":
            penalties["train/gradient_penalty"] = gradient_penalty(self.discriminator, real_in, fake_in, hp.gp_weight)
        if r1_now:
            penalties["train/r1"] = r1_penalty(logits_real, real_in, hp.r1_gamma * hp.r1_every)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d + sum(penalties.values()))
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        if self.ada is not None:
            self.ada.update(logits_real.detach())

        self.toggle_optimizer(opt_g)
        logits_gen = self.discriminator(self.augment(fake))
        loss_g = generator_loss(hp.loss, logits_gen)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)

        logged = {
            "train/loss_d": loss_d.detach(),
            "train/loss_g": loss_g.detach(),
            "train/d_real": torch.sigmoid(logits_real.detach()).mean(),
            "train/d_fake": torch.sigmoid(logits_fake.detach()).mean(),
        }
        logged.update({k: v.detach() for k, v in penalties.items() if k != "train/r1"})
        if self.ada is not None:
            logged["train/ada_p"] = self.ada.p
        self.log_dict(logged, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)

    def configure_optimizers(self):
        hp = self.hparams
        # One fused kernel per optimizer step on the GPU instead of a launch per parameter.
        opts = {"betas": (hp.beta1, hp.beta2), "fused": self.device.type == "cuda"}
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g or hp.lr, **opts)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d or hp.lr, **opts)
        return opt_g, opt_d

    def sampler(self, generator: str = "ema") -> torch.nn.Module:
        """The network snapshots come from: the weight average when ``generator="ema"`` and
        the model keeps one (``ema_decay`` > 0), else the trained generator itself."""
        if generator not in ("ema", "raw"):
            raise ValueError(f"generator={generator!r}: use 'ema' or 'raw'.")
        return self.generator_ema.module if generator == "ema" and self.generator_ema is not None else self.generator

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batchnorm: str = "batch", generator: str = "ema") -> torch.Tensor:
        """Images as uint8 (N, 1, S, S) from latents, never through DiffAugment.

        ``batchnorm="batch"`` normalises with the statistics of the batch being generated,
        as the DCGAN reference code (and the study's notebook) does, and leaves the running
        statistics untouched; ``"running"`` uses the running averages (inference mode),
        which early in training can wash the images out to a flat grey. ``generator``: see
        ``sampler``.
        """
        if batchnorm not in ("batch", "running"):
            raise ValueError(f"batchnorm={batchnorm!r}: use 'batch' or 'running'.")
        net = self.sampler(generator)
        was_training = net.training
        saved = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
        net.train(batchnorm == "batch")
        try:
            images = net(z.to(self.device))
        finally:
            net.load_state_dict(saved, strict=False)
            net.train(was_training)
        return images.float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)
