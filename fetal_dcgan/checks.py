"""Values of the composed config checked in one pass before anything is built or written.

Hydra refuses unknown keys; the constructors check what they alone can (image sizes, data
sources, snapshot epochs against ``trainer.max_epochs``, compile modes). This pass covers
every other value that would otherwise fail late (at the end of the first epoch, or as a
division by zero) or train something meaningless, and reports every bad value at once,
each with the key, what is allowed and an example.
"""

from __future__ import annotations

import re

from omegaconf import DictConfig, OmegaConf

from fetal_dcgan.errors import ConfigError
from fetal_dcgan.rules import Check, Rule, int_at_least, number_in, one_of, or_null, subset_of


def _metric_names() -> Rule:
    from fetal_dcgan.metrics import METRICS

    return (lambda v: isinstance(v, list) and set(v) <= set(METRICS)), "a list of: " + ", ".join(METRICS)


def _device() -> Rule:
    return (
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None
    ), "auto, cpu, cuda or cuda:N"


#: key -> (rule, example of a good value); each metric's options are declared with it (``register_metric``)
RULES: dict[str, Check] = {
    "seed": (int_at_least(0), "0"),
    "checkpoint_every": (int_at_least(1), "10"),
    "trainer.max_epochs": (int_at_least(1), "25"),
    "data.batch_size": (int_at_least(1), "64"),
    "data.augment.degrees": (number_in(0, 180), "10"),
    "data.seed": (int_at_least(0), "${seed} (each replicate its own subsets) or 0 (pinned)"),
    "data.reference": (one_of("held_out", "independent", "disjoint"), "held_out"),
    "data.reference_split": (one_of("test", "train"), "test"),
    "data.reference_seed": (int_at_least(0), "0"),
    "data.reference_n": (int_at_least(1), "800"),
    "data.resize": (one_of("antialias", "tensor"), "antialias"),
    "data.epoch_kimg": (or_null(number_in(0.001, 1e6)), "null (one pass over the data) or 1.0"),
    "model.nz": (int_at_least(1), "100"),
    "model.ngf": (int_at_least(1), "64"),
    "model.ndf": (int_at_least(1), "64"),
    "model.lr": (number_in(0, 1, low_open=True), "2e-4"),
    "model.lr_g": (or_null(number_in(0, 1, low_open=True)), "2e-4"),
    "model.lr_d": (or_null(number_in(0, 1, low_open=True)), "2e-4"),
    "model.beta1": (number_in(0, 1, high_open=True), "0.5"),
    "model.beta2": (number_in(0, 1, high_open=True), "0.999"),
    "model.real_label": (number_in(0, 1, low_open=True), "1.0 (0.9: one-sided label smoothing)"),
    "model.init_std": (number_in(0, 1, low_open=True), "0.02"),
    "model.loss": (one_of("bce", "hinge", "wgan-gp"), "hinge"),
    "model.d_norm": (one_of("batch", "spectral", "none"), "spectral"),
    "model.minibatch_std": (one_of(True, False), "true"),
    "model.r1_gamma": (number_in(0, 1000), "0.1"),
    "model.r1_every": (int_at_least(1), "16"),
    "model.gp_weight": (number_in(0, 1000), "10"),
    "model.ema_decay": (number_in(0, 1, high_open=True), "0.999"),
    "model.diffaugment": (subset_of("brightness", "contrast", "translation", "cutout"), "[translation,cutout]"),
    "model.ada_target": (or_null(number_in(0, 1, low_open=True, high_open=True)), "0.6"),
    "model.ada_images": (int_at_least(1), "100000"),
    "sampling.batchnorm": (one_of("batch", "running"), "batch"),
    "sampling.generator": (one_of("ema", "raw"), "ema"),
    "sampling.batch_size": (int_at_least(1), "${data.batch_size}"),
    "callbacks.image_grid.every_n_epochs": (int_at_least(1), "10"),
    "metrics.names": (_metric_names(), "[fid,kid,psnr,mi,lbp]"),
    "metrics.device": (_device(), "auto"),
    "metrics.seed": (int_at_least(0), "2020"),
    "metrics.ci_resamples": (int_at_least(0), "200 (0: no intervals)"),
    "metrics.features.batch_size": (int_at_least(1), "64"),
    "anatomy.inference_batch_size": (int_at_least(1), "256"),
}


def metric_rules() -> dict[str, Check]:
    """Every registered metric's declared options, and the interval share all of them take."""
    from fetal_dcgan.metrics import METRICS

    rules = {}
    for name, metric in METRICS.items():
        rules[f"metrics.{name}.ci_share"] = (number_in(0, 1), "0.25")
        rules.update({f"metrics.{name}.{option}": check for option, check in metric.options.items()})
    return rules


def check_config(cfg: DictConfig) -> None:
    """Raise one ConfigError naming every key whose value is not allowed."""
    from fetal_dcgan.metrics.registry import load_modules

    load_modules(OmegaConf.select(cfg, "metrics.modules", default=None))  # their metrics are valid names
    problems = []
    for key, ((ok, allowed), example) in {**RULES, **metric_rules()}.items():
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value == "<absent>":
            continue  # a group that leaves the key out (e.g. callbacks without the image grid)
        if isinstance(value, DictConfig) or OmegaConf.is_list(value):
            value = OmegaConf.to_container(value)
        if not ok(value):
            problems.append(f"{key}={value!r}: use {allowed}, e.g. {key}={example}")
    if problems:
        raise ConfigError("Bad config values (nothing was written):\n  " + "\n  ".join(problems))
