"""Values of the composed config checked in one pass before anything is built or written.

Hydra checks each value's type against the declared settings (``fetal_dcgan.config``); the
constructors check what they alone can (image sizes, data sources, snapshot epochs against
``trainer.max_epochs``, compile modes). This pass checks every declared rule (ranges,
choices) that would otherwise fail late (at the end of the first epoch, or as a division
by zero) or train something meaningless, and reports every bad value at once, each with
the key, what is allowed and an example.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from fetal_dcgan.anatomy.settings import AnatomySettings
from fetal_dcgan.config import RunSettings
from fetal_dcgan.data.settings import SOURCE_SETTINGS
from fetal_dcgan.errors import ConfigError
from fetal_dcgan.metrics.settings import SuiteSettings
from fetal_dcgan.models.settings import DDPMSettings, ModelSettings
from fetal_dcgan.rules import Check, declared_checks, int_at_least

#: Keys of other libraries' classes (Lightning's Trainer, the grid callback) whose bad values fail late.
FOREIGN_RULES: dict[str, Check] = {
    "trainer.max_epochs": (int_at_least(1), "25"),
    "callbacks.image_grid.every_n_epochs": (int_at_least(1), "10"),
}


def declared_rules() -> dict[str, Check]:
    """key -> (rule, example) of every declared setting that has a rule, and of every
    registered metric's options (those of ``metrics.modules`` once they are loaded)."""
    from fetal_dcgan.metrics import METRICS

    rules = {
        **declared_checks(RunSettings),
        **{k: c for schema in SOURCE_SETTINGS.values() for k, c in declared_checks(schema, "data.").items()},
        **declared_checks(ModelSettings, "model."),
        **declared_checks(DDPMSettings, "model."),  # the keys both declare have the same rules
        **declared_checks(SuiteSettings, "metrics."),
        **declared_checks(AnatomySettings, "anatomy."),
        **FOREIGN_RULES,
    }
    for name, metric in METRICS.items():
        rules.update(declared_checks(metric.options, f"metrics.{name}."))
    return rules


def _stray_metric_sections(cfg: DictConfig) -> list[str]:
    """Sections of the metrics config that are neither the suite's settings nor a registered metric."""
    from fetal_dcgan.metrics import METRICS

    own = set(SuiteSettings.__dataclass_fields__) | set(METRICS)
    return [
        f"metrics.{key}: not a setting of the metric suite nor a registered metric "
        f"({', '.join(METRICS)}; metrics of your own: metrics.modules=[my_module])"
        for key in (cfg.get("metrics") or {})
        if key not in own
    ]


def check_config(cfg: DictConfig) -> None:
    """Raise one ConfigError naming every key whose value is not allowed."""
    from fetal_dcgan.metrics.registry import load_modules

    load_modules(OmegaConf.select(cfg, "metrics.modules", default=None))  # their metrics are valid names
    problems = _stray_metric_sections(cfg)
    for key, ((ok, allowed), example) in declared_rules().items():
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value == "<absent>":
            continue  # a group that leaves the key out (e.g. callbacks without the image grid)
        if isinstance(value, DictConfig) or OmegaConf.is_list(value):
            value = OmegaConf.to_container(value)
        if not ok(value):
            problems.append(f"{key}={value!r}: use {allowed}, e.g. {key}={example}")
    if problems:
        raise ConfigError("Bad config values (nothing was written):\n  " + "\n  ".join(problems))
