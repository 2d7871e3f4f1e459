"""The ``model`` group's settings, declared once (``fetal_dcgan.rules.setting``): the DCGAN
and its stabilisers (the defaults are the paper's DCGAN), and the diffusion model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from fetal_dcgan.models.diffaugment import OPERATIONS
from fetal_dcgan.models.losses import LOSSES
from fetal_dcgan.models.networks import D_NORMS
from fetal_dcgan.rules import int_at_least, list_of, number_in, one_of, or_null, setting, subset_of

LEARNING_RATE = number_in(0, 1, low_open=True)
#: MONAI's noise schedules (monai.networks.schedulers).
SCHEDULES = ("linear_beta", "scaled_linear_beta", "sigmoid_beta", "cosine")
SHARE = number_in(0, 1, high_open=True)


@dataclass
class ModelSettings:
    _target_: str = "fetal_dcgan.models.dcgan.DCGAN"
    image_size: int = setting(64, help="the networks' image size: data.image_size")
    nz: int = setting(100, int_at_least(1), "100", "latent size")
    ngf: int = setting(64, int_at_least(1), "64", "generator width")
    ndf: int = setting(64, int_at_least(1), "64", "discriminator width")
    lr: float = setting(2e-4, LEARNING_RATE, "2e-4", "Adam learning rate of both networks...")
    lr_g: Optional[float] = setting(None, or_null(LEARNING_RATE), "2e-4", "...unless set per network")
    lr_d: Optional[float] = setting(None, or_null(LEARNING_RATE), "2e-4", "the discriminator's, likewise")
    beta1: float = setting(0.5, SHARE, "0.5", "Adam's beta1")
    beta2: float = setting(0.999, SHARE, "0.999", "Adam's beta2")
    real_label: float = setting(
        1.0, number_in(0, 1, low_open=True), "1.0 (0.9: one-sided label smoothing)", "< 1 for one-sided label smoothing"
    )
    init_std: float = setting(0.02, number_in(0, 1, low_open=True), "0.02", "N(0, std) weights")
    loss: str = setting("bce", one_of(*LOSSES), "hinge", "bce (the paper's, non-saturating G loss) | hinge | wgan-gp")
    d_norm: str = setting(
        "batch", one_of(*D_NORMS), "spectral", "discriminator normalisation: batch (the paper's) | spectral | none"
    )
    minibatch_std: bool = setting(
        False, one_of(True, False), "true", "ProGAN's minibatch standard deviation map before D's last layer"
    )
    r1_gamma: float = setting(0.0, number_in(0, 1000), "0.1", "R1 penalty on real images (0: off)...")
    r1_every: int = setting(16, int_at_least(1), "16", "...computed every this many D steps (lazy, scaled to match)")
    gp_weight: float = setting(10.0, number_in(0, 1000), "10", "wgan-gp's gradient penalty weight")
    ema_decay: float = setting(0.0, SHARE, "0.999", "generator weight average for snapshots (0: off; e.g. 0.999)")
    diffaugment: List[str] = setting(
        rule=subset_of(*OPERATIONS),
        example="[translation,cutout]",
        help="DiffAugment on D's inputs: any of " + ", ".join(OPERATIONS),
        factory=list,
    )
    ada_target: Optional[float] = setting(
        None,
        or_null(number_in(0, 1, low_open=True, high_open=True)),
        "0.6",
        "null: DiffAugment always on; a number (0.6): ADA tunes its probability to this r_t",
    )
    ada_images: int = setting(100000, int_at_least(1), "100000", "ADA: images for its probability to move from 0 to 1")
    channels_last: bool = setting(
        False, one_of(True, False), "true", "NHWC memory layout (tensor-core convolutions on GPUs, notably with bf16)"
    )
    compile: Optional[str] = setting(
        None, help="torch.compile the networks: null, default, max-autotune-no-cudagraphs (no gain on an H200)"
    )


@dataclass
class DDPMSettings:
    """``model=ddpm``: the defaults are ``ddpm64``'s UNet (4.3 M parameters at 64 px)."""

    _target_: str = "fetal_dcgan.models.ddpm.DDPM"
    image_size: int = setting(64, help="the UNet's image size: data.image_size")
    channels: List[int] = setting(
        rule=list_of(int_at_least(1)),
        example="[32,64,128,128]",
        help="UNet channels per level (each level halves the image)",
        factory=lambda: [32, 64, 128, 128],
    )
    attention_levels: List[bool] = setting(
        rule=list_of(one_of(True, False)),
        example="[false,false,false,true]",
        help="self-attention at each level (one entry per level)",
        factory=lambda: [False, False, False, True],
    )
    num_res_blocks: int = setting(1, int_at_least(1), "1", "residual blocks per level")
    norm_num_groups: int = setting(16, int_at_least(1), "16", "GroupNorm groups (divides every level's channels)")
    num_head_channels: int = setting(32, int_at_least(1), "32", "channels per attention head")
    timesteps: int = setting(1000, int_at_least(2), "1000", "diffusion steps of the training schedule (Ho et al.)")
    schedule: str = setting("linear_beta", one_of(*SCHEDULES), "cosine", "the noise schedule (MONAI's names)")
    sample_steps: int = setting(50, int_at_least(1), "50", "DDIM steps per sample (eta 0: deterministic)")
    lr: float = setting(1e-4, LEARNING_RATE, "1e-4", "Adam learning rate")
    ema_decay: float = setting(0.999, SHARE, "0.9999", "weight average that makes the samples (0: the raw weights)")
