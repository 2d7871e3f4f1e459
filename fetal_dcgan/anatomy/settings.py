"""The ``anatomy`` group's settings: the head-measurement model (``python -m fetal_dcgan.anatomy
train``), a MONAI U-Net that segments the head in annotated scans at ``data.image_size``,
whose fitted ellipse gives HC, axes and angle (docs/anatomy.md). Declared once
(``fetal_dcgan.rules.setting``); ``conf/anatomy/default.yaml`` ties augmentation and the
cache to the run's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from fetal_dcgan.rules import int_at_least, number_in, one_of, setting

SHARE = number_in(0, 1, low_open=True, high_open=True)


@dataclass
class MeasurementAugment:
    """The same flips and rotations as GAN training, on image and mask alike."""

    hflip: bool = setting(True, one_of(True, False), "true", "random horizontal flip")
    degrees: Any = setting(10, number_in(0, 180), "10", "random rotation in [-degrees, degrees]")


@dataclass
class Plausibility:
    """One plausible head: area, b/a and centre inside what the annotated heads span, widened
    on each side by ``margin`` of that span, and a segmentation that is an ellipse."""

    margin: float = setting(0.1, number_in(0, 10), "0.1", "widening of the annotated heads' span on each side")
    min_fit_iou: float = setting(0.8, number_in(0, 1), "0.8", "IoU of a segmentation with its fitted ellipse")


@dataclass
class AnatomySettings:
    seed: int = setting(0, int_at_least(0), "0", "weights, batch order, augmentation and the held-out split")
    held_out: float = setting(
        0.2, SHARE, "0.2", "share of images (whole fetuses) kept out of training to report accuracy"
    )
    channels: List[int] = setting(
        help="U-Net feature maps per level (monai.networks.nets.UNet)", factory=lambda: [16, 32, 64, 128]
    )
    strides: List[int] = setting(help="U-Net downsampling per level", factory=lambda: [2, 2, 2])
    num_res_units: int = setting(1, int_at_least(0), "1", "residual units per U-Net block")
    epochs: int = setting(30, int_at_least(1), "30", "in batches of 16: about 2 minutes at 64 px on 2 cores")
    batch_size: int = setting(16, int_at_least(1), "16", "training batch")
    lr: float = setting(2e-3, number_in(0, 1, low_open=True), "2e-3", "Adam learning rate")
    augment: MeasurementAugment = setting(factory=MeasurementAugment)
    inference_batch_size: int = setting(
        64,
        int_at_least(1),
        "64",
        "images a forward pass when measuring (the results are the same; on a CPU 64 is faster than 256)",
    )
    threshold: float = setting(0.5, SHARE, "0.5", "probability above which a pixel is head")
    min_pixels: int = setting(4, int_at_least(1), "4", "a smaller region is no head")
    plausible: Plausibility = setting(factory=Plausibility)
    accelerator: str = setting("auto", one_of("auto", "cpu", "gpu"), "auto", "auto | cpu | gpu")
    cache_dir: Optional[str] = setting(None, help="models, one folder per hash of data and these settings")
