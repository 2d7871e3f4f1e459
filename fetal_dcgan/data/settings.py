"""The ``data`` group's settings, declared once (``fetal_dcgan.rules.setting``): one dataclass
per source, each the shared settings plus its own. Keys that follow another group (the seed,
the cache) are tied to it in ``conf/data/*.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING

from fetal_dcgan.data.augment import INTERPOLATIONS
from fetal_dcgan.data.preprocess import FIT_MODES, RESIZE_MODES
from fetal_dcgan.data.sources import GROUP_MODES
from fetal_dcgan.data.subsets import REFERENCE_MODES, REFERENCE_SPLITS
from fetal_dcgan.rules import int_at_least, number_in, one_of, or_null, setting


@dataclass
class AugmentSettings:
    hflip: bool = setting(True, one_of(True, False), "true", "random horizontal flip")
    degrees: Any = setting(
        10, number_in(0, 180), "10", "random rotation in [-degrees, degrees]; corners filled black; 0 = off"
    )
    interpolation: str = setting(
        "nearest",
        one_of(*INTERPOLATIONS),
        "nearest",
        "nearest (keeps speckle, as torchvision's RandomRotation) | bilinear (smooths it)",
    )


@dataclass
class DataSettings:
    """Settings shared by every data source."""

    _target_: str = "fetal_dcgan.data.datamodule.UltrasoundDataModule"
    image_size: int = setting(64, help="64, 128 or 256 (any power of two >= 32); also sizes the networks")
    fit: str = setting(
        "pad", one_of(*FIT_MODES), "pad", "pad (letterbox, aspect kept) | crop (centre) | squash (the paper's)"
    )
    n: Optional[int] = setting(
        None, or_null(int_at_least(1)), "300", "training images, chosen seeded and nested; null = all"
    )
    seed: int = setting(
        0,
        int_at_least(0),
        "${seed} (each replicate its own subsets) or 0 (pinned)",
        "training-subset seed: follows the run's seed, so each replicate draws its own nested subsets "
        "and a run-level test generalises over the draw; pin it (data.seed=0) to hold them",
    )
    reference_n: int = setting(
        800, int_at_least(1), "800", "non-augmented real images that synthetic sets are scored against"
    )
    reference: str = setting(
        "held_out",
        one_of(*REFERENCE_MODES),
        "held_out",
        "held_out: never training data of any cell nor a repeat scan of a training fetus; independent: "
        "the paper's own seeded draw of the training split, the same for every n (overlaps training more "
        "as n grows); disjoint: never a training image of that run",
    )
    reference_split: str = setting(
        "test",
        one_of(*REFERENCE_SPLITS),
        "test",
        "held_out from: test (the source's test split) | train (whole fetuses set aside first)",
    )
    reference_seed: int = setting(
        0,
        int_at_least(0),
        "0",
        "the reference draw: fixed, so every cell and replicate is scored against the same images",
    )
    resize: str = setting(
        "antialias",
        one_of(*RESIZE_MODES),
        "antialias",
        "antialias (PIL bilinear) | tensor (bilinear without antialiasing: the paper's notebooks)",
    )
    group_by: str = setting(
        "fetus",
        one_of(*GROUP_MODES),
        "fetus",
        "fetus: HC18 repeat scans (NNN_kHC.png) of one fetus stay on one side of every split; none",
    )
    batch_size: int = setting(64, int_at_least(1), "64", "training batch")
    epoch_kimg: Optional[float] = setting(
        None,
        or_null(number_in(0.001, 1e6)),
        "null (one pass over the data) or 1.0",
        "null: an epoch is one pass over the n training images (the paper's); a number: an epoch is that "
        "many thousand images, the same for every n, so epochs count images seen (kimg)",
    )
    augment: AugmentSettings = setting(factory=AugmentSettings)
    near_copy_db: Optional[float] = setting(None, help="log pairs of training images this close (PSNR, dB)")
    cache_dir: Optional[str] = setting(None, help="phantom images and preprocessed tensors; null: paths.cache_dir")


@dataclass
class PhantomSettings:
    """The built-in phantom (``fetal_dcgan.data.phantom``)."""

    n_images: int = setting(999, int_at_least(1), "999", "the training pool: as many as HC18's training set")
    n_test: int = setting(
        800,
        int_at_least(1),
        "${data.reference_n}",
        "the test split: further images of the same phantom, never in the pool",
    )
    seed: int = setting(0, int_at_least(0), "0", "the phantom's seed: every image is a function of (seed, index)")
    height: int = setting(270, int_at_least(16), "270", "HC18's 540x800 at half size")
    width: int = setting(400, int_at_least(16), "400", "image width in pixels")
    field_mm: float = setting(
        160.0,
        number_in(1, 1000, low_open=True),
        "160.0",
        "image width in mm (0.4 mm pixels): HCs of 130-230 mm, inside HC18's range",
    )


@dataclass
class PhantomData(DataSettings):
    """Built-in procedurally generated fetal-head ultrasound phantom (no download needed)."""

    source: str = "phantom"
    phantom: PhantomSettings = setting(factory=PhantomSettings)


@dataclass
class FolderData(DataSettings):
    """Every png/jpg/bmp/tif under ``root`` (recursively), converted to 8-bit gray; a folder
    has no test split, so whole fetuses are set aside for the reference."""

    reference_split: str = setting(
        "train", one_of(*REFERENCE_SPLITS), "train", "a folder has no test split: whole fetuses are set aside"
    )
    source: str = "folder"
    root: str = setting(MISSING, help="the folder of images")


@dataclass
class Hc18Data(DataSettings):
    """The HC18 challenge release (Zenodo 1327317): ``root`` is the unzipped release or its training_set/."""

    reference_n: int = setting(
        335, int_at_least(1), "335", "the held-out reference: the whole test split (or reference_split=train and fewer)"
    )
    source: str = "hc18"
    root: str = setting(MISSING, help="the unzipped HC18 release")
    split: str = setting("train", one_of("train", "test"), "train", "train (999 scans) | test (335 scans)")


#: The declared settings of each data source (``data=<source>``).
SOURCE_SETTINGS = {"phantom": PhantomData, "folder": FolderData, "hc18": Hc18Data}
