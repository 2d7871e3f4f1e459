"""Values of the composed config checked in one pass before anything is built or written.

Hydra refuses unknown keys; the constructors check what they alone can (image sizes, data
sources, snapshot epochs against ``trainer.max_epochs``, compile modes). This pass covers
every other value that would otherwise fail late (at the end of the first epoch, or as a
division by zero) or train something meaningless, and reports every bad value at once,
each with the key, what is allowed and an example.
"""

from __future__ import annotations

import re
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from fetal_dcgan.errors import ConfigError


def _int_at_least(low: int) -> tuple[Callable, str]:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def _number_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> tuple[Callable, str]:
    def ok(v) -> bool:
        return (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (low < v if low_open else low <= v)
            and (v < high if high_open else v <= high)
        )

    return ok, f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _one_of(*values) -> tuple[Callable, str]:
    return (lambda v: v in values and type(v) in {type(x) for x in values}), "one of " + ", ".join(
        str(v).lower() if isinstance(v, bool) else str(v) for v in values
    )


def _subset_of(*values: str) -> tuple[Callable, str]:
    return (lambda v: isinstance(v, list) and set(v) <= set(values)), "a list of any of " + ", ".join(values)


def _or_null(rule: tuple[Callable, str]) -> tuple[Callable, str]:
    return (lambda v: v is None or rule[0](v)), rule[1] + " or null"


def _metric_names() -> tuple[Callable, str]:
    from fetal_dcgan.metrics import METRICS

    return (lambda v: isinstance(v, list) and set(v) <= set(METRICS)), "a list of: " + ", ".join(METRICS)


def _registered() -> list[str]:
    from fetal_dcgan.metrics import METRICS

    return list(METRICS)


def _device() -> tuple[Callable, str]:
    return (
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None
    ), "auto, cpu, cuda or cuda:N"


#: key -> (rule, example of a good value)
RULES: dict[str, tuple[tuple[Callable, str], str]] = {
    "seed": (_int_at_least(0), "0"),
    "checkpoint_every": (_int_at_least(1), "10"),
    "trainer.max_epochs": (_int_at_least(1), "25"),
    "data.batch_size": (_int_at_least(1), "64"),
    "data.augment.degrees": (_number_in(0, 180), "10"),
    "data.seed": (_int_at_least(0), "${seed} (each replicate its own subsets) or 0 (pinned)"),
    "data.reference": (_one_of("held_out", "independent", "disjoint"), "held_out"),
    "data.reference_split": (_one_of("test", "train"), "test"),
    "data.reference_seed": (_int_at_least(0), "0"),
    "data.reference_n": (_int_at_least(1), "800"),
    "data.resize": (_one_of("antialias", "tensor"), "antialias"),
    "data.epoch_kimg": (_or_null(_number_in(0.001, 1e6)), "null (one pass over the data) or 1.0"),
    "model.nz": (_int_at_least(1), "100"),
    "model.ngf": (_int_at_least(1), "64"),
    "model.ndf": (_int_at_least(1), "64"),
    "model.lr": (_number_in(0, 1, low_open=True), "2e-4"),
    "model.lr_g": (_or_null(_number_in(0, 1, low_open=True)), "2e-4"),
    "model.lr_d": (_or_null(_number_in(0, 1, low_open=True)), "2e-4"),
    "model.beta1": (_number_in(0, 1, high_open=True), "0.5"),
    "model.beta2": (_number_in(0, 1, high_open=True), "0.999"),
    "model.real_label": (_number_in(0, 1, low_open=True), "1.0 (0.9: one-sided label smoothing)"),
    "model.init_std": (_number_in(0, 1, low_open=True), "0.02"),
    "model.loss": (_one_of("bce", "hinge", "wgan-gp"), "hinge"),
    "model.d_norm": (_one_of("batch", "spectral", "none"), "spectral"),
    "model.minibatch_std": (_one_of(True, False), "true"),
    "model.r1_gamma": (_number_in(0, 1000), "0.1"),
    "model.r1_every": (_int_at_least(1), "16"),
    "model.gp_weight": (_number_in(0, 1000), "10"),
    "model.ema_decay": (_number_in(0, 1, high_open=True), "0.999"),
    "model.diffaugment": (_subset_of("brightness", "contrast", "translation", "cutout"), "[translation,cutout]"),
    "model.ada_target": (_or_null(_number_in(0, 1, low_open=True, high_open=True)), "0.6"),
    "model.ada_images": (_int_at_least(1), "100000"),
    "sampling.batchnorm": (_one_of("batch", "running"), "batch"),
    "sampling.generator": (_one_of("ema", "raw"), "ema"),
    "sampling.batch_size": (_int_at_least(1), "${data.batch_size}"),
    "callbacks.image_grid.every_n_epochs": (_int_at_least(1), "10"),
    "metrics.names": (_metric_names(), "[fid,kid,psnr,mi,lbp]"),
    "metrics.device": (_device(), "auto"),
    "metrics.seed": (_int_at_least(0), "2020"),
    "metrics.ci_resamples": (_int_at_least(0), "200 (0: no intervals)"),
    "metrics.kid.subsets": (_int_at_least(1), "100"),
    "metrics.kid.subset_size": (_or_null(_int_at_least(2)), "null (half the smaller set)"),
    "metrics.kid.resample_subsets": (_int_at_least(1), "10"),
    "metrics.features.batch_size": (_int_at_least(1), "64"),
    **{f"metrics.{name}.ci_share": (_number_in(0, 1), "0.25") for name in _registered()},
    "metrics.diversity.ms_ssim_pairs": (_int_at_least(1), "2000"),
    "metrics.diversity.duplicate_psnr_db": (_number_in(0, 200, low_open=True), "40"),
    "metrics.diversity.collapse_margin": (_number_in(0, 1), "0.1"),
    "metrics.diversity.collapse_duplicates": (_number_in(0, 1), "0.05"),
    "metrics.memorisation.quantile": (_number_in(0, 1, low_open=True), "0.95"),
    "metrics.memorisation.min_held_out": (_int_at_least(2), "20"),
    "metrics.prdc.k": (_int_at_least(1), "5"),
}


def check_config(cfg: DictConfig) -> None:
    """Raise one ConfigError naming every key whose value is not allowed."""
    from fetal_dcgan.metrics.registry import load_modules

    load_modules(OmegaConf.select(cfg, "metrics.modules", default=None))  # their metrics are valid names
    problems = []
    for key, ((ok, allowed), example) in RULES.items():
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value == "<absent>":
            continue  # a group that leaves the key out (e.g. callbacks without the image grid)
        if isinstance(value, DictConfig) or OmegaConf.is_list(value):
            value = OmegaConf.to_container(value)
        if not ok(value):
            problems.append(f"{key}={value!r}: use {allowed}, e.g. {key}={example}")
    if problems:
        raise ConfigError("Bad config values (nothing was written):\n  " + "\n  ".join(problems))
