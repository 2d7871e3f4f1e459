"""A denoising diffusion model (Ho et al. 2020) from MONAI's generative parts.

MONAI's ``DiffusionModelUNet`` predicts the noise added to an image at a random timestep
of a ``DDPMScheduler`` schedule, through ``DiffusionInferer`` (the training objective is
the mean squared error on that noise). An exponential moving average of the UNet's weights
(``torch.optim.swa_utils``, with a warm-up) makes the samples, as in Ho et al.; samples come from DDIM
(Song et al. 2021, eta = 0) in ``sample_steps`` steps, so a set is a deterministic function
of its initial noise and a seed fixes it, as latents do for the DCGAN. Images are in
[-1, 1], the datamodule's range, and the sampler clips to it.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from monai.inferers import DiffusionInferer
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler
from torch.optim.swa_utils import AveragedModel

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.models.generator import TrainingProgress, standard_normal


class ConsistentDDIMScheduler(DDIMScheduler):
    """MONAI's DDIM step with the noise re-derived from the clipped estimate of the clean
    image, as OpenAI's GLIDE and improved-diffusion and diffusers' DDIM do. MONAI clips the
    estimate but keeps the model's own noise for the step's direction, so the two halves of
    a step disagree wherever clipping acts, and an imperfect model's samples end as noise."""

    def step(self, model_output, timestep, sample, eta: float = 0.0, generator=None):
        if self.prediction_type != "epsilon" or not self.clip_sample:
            return super().step(model_output, timestep, sample, eta, generator)
        alpha = self.alphas_cumprod[timestep]
        clean = ((sample - (1 - alpha).sqrt() * model_output) / alpha.sqrt()).clamp(*self.clip_sample_values)
        noise = (sample - alpha.sqrt() * clean) / (1 - alpha).sqrt()
        return super().step(noise, timestep, sample, eta, generator)


def warmed_up_ema(decay: float):
    """The weight average's update with a warm-up: decay min(decay, (1 + k) / (10 + k)) at
    update k (diffusers' EMA warm-up), so that after a few thousand steps the average is not
    still mostly the random initial weights (0.999^1000 = 0.37 of them with a fixed decay)."""

    def update(average: torch.Tensor, current: torch.Tensor, updates: torch.Tensor) -> torch.Tensor:
        k = float(updates)
        rate = min(decay, (1 + k) / (10 + k))
        return rate * average + (1 - rate) * current

    return update


def check_unet(image_size: int, channels: list[int], attention_levels: list[bool], norm_num_groups: int) -> None:
    """The UNet's settings that only make sense together, checked with a message naming the fix."""
    if len(attention_levels) != len(channels):
        raise ConfigError(
            f"model.attention_levels has {len(attention_levels)} entries but model.channels has {len(channels)}: "
            "give one per level."
        )
    bad = [c for c in channels if c % norm_num_groups]
    if bad:
        raise ConfigError(
            f"model.channels {bad} are not multiples of model.norm_num_groups={norm_num_groups} "
            "(GroupNorm splits each level's channels into that many groups)."
        )
    if image_size % 2 ** (len(channels) - 1):
        raise ConfigError(
            f"data.image_size={image_size} does not halve {len(channels) - 1} times evenly: use fewer "
            "model.channels levels or a size divisible by 2^(levels - 1)."
        )


class DDPM(TrainingProgress, L.LightningModule):
    """The UNet, its weight average and the noise schedule; one optimizer step per batch."""

    generator_name = "ddpm"
    batch_statistics = False  # GroupNorm: an image is the same in any batch

    def __init__(
        self,
        image_size: int = 64,
        channels: list[int] | tuple[int, ...] = (32, 64, 128, 128),
        attention_levels: list[bool] | tuple[bool, ...] = (False, False, False, True),
        num_res_blocks: int = 1,
        norm_num_groups: int = 16,
        num_head_channels: int = 32,
        timesteps: int = 1000,
        schedule: str = "linear_beta",
        sample_steps: int = 50,
        lr: float = 1e-4,
        ema_decay: float = 0.999,
    ):
        super().__init__()
        channels, attention_levels = [int(c) for c in channels], [bool(a) for a in attention_levels]
        check_unet(image_size, channels, attention_levels, norm_num_groups)
        self.save_hyperparameters()  # the plain lists above: checkpoints load with weights_only
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            channels=channels,
            attention_levels=attention_levels,
            num_res_blocks=num_res_blocks,
            norm_num_groups=norm_num_groups,
            num_head_channels=num_head_channels,
        )
        self.unet_ema = AveragedModel(self.unet, avg_fn=warmed_up_ema(ema_decay), use_buffers=True).requires_grad_(
            False
        )
        self.inferer = DiffusionInferer(DDPMScheduler(num_train_timesteps=timesteps, schedule=schedule))
        self.images_seen = 0

    @property
    def steps(self) -> int:
        return self.global_step

    def training_step(self, real: torch.Tensor, batch_idx: int) -> torch.Tensor:
        n = real.shape[0]
        self.images_seen += n
        noise = torch.randn_like(real)
        timesteps = torch.randint(0, self.hparams.timesteps, (n,), device=real.device)
        predicted = self.inferer(inputs=real, diffusion_model=self.unet, noise=noise, timesteps=timesteps)
        loss = F.mse_loss(predicted.float(), noise.float())
        self.log("train/loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.unet_ema.update_parameters(self.unet)

    def configure_optimizers(self):
        return torch.optim.Adam(self.unet.parameters(), lr=self.hparams.lr, fused=self.device.type == "cuda")

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Initial noise (n, 1, S, S) from N(0, 1) on the module's device."""
        size = self.hparams.image_size
        return standard_normal((n, 1, size, size), self.device, generator)

    def sampler(self, generator: str = "ema") -> torch.nn.Module:
        if generator not in ("ema", "raw"):
            raise ValueError(f"generator={generator!r}: use 'ema' or 'raw'.")
        return self.unet_ema.module if generator == "ema" else self.unet

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batchnorm: str = "batch", generator: str = "ema") -> torch.Tensor:
        """Images as uint8 (N, 1, S, S) from initial noise by DDIM (eta 0) in ``sample_steps``
        steps; ``batchnorm`` does not apply (the UNet normalises with GroupNorm)."""
        hp = self.hparams
        scheduler = ConsistentDDIMScheduler(num_train_timesteps=hp.timesteps, schedule=hp.schedule)
        scheduler.set_timesteps(hp.sample_steps, device=self.device)
        net = self.sampler(generator)
        was_training = net.training
        net.eval()
        try:
            images = self.inferer.sample(
                input_noise=z.to(self.device), diffusion_model=net, scheduler=scheduler, verbose=False
            )
        finally:
            net.train(was_training)
        return images.float().clamp(-1, 1).add(1).mul(127.5).round_().to(torch.uint8)
