"""The run's structured config: the root settings (seed, resuming, sampling) declared here,
each group's declared where it lives (``data/settings.py``, ``models/settings.py``,
``metrics/settings.py``, ``anatomy/settings.py``), all stored in Hydra's ConfigStore so
that ``conf/`` selects and overrides them and Hydra checks every value's type. The groups
of other libraries' classes (trainer, logger, callbacks) stay plain YAML.

``compose_config`` composes it outside ``@hydra.main``, so that ``evaluate``, the
benchmarks and the tests take their defaults from ``conf/`` like training does."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from fetal_dcgan.anatomy.settings import AnatomySettings
from fetal_dcgan.data.settings import SOURCE_SETTINGS, DataSettings
from fetal_dcgan.metrics.settings import metrics_node
from fetal_dcgan.models.settings import DDPMSettings, ModelSettings
from fetal_dcgan.report.settings import StudySettings
from fetal_dcgan.rules import int_at_least, number_in, one_of, or_null, setting
from fetal_dcgan.utils import CONF_DIR


@dataclass
class SamplingSettings:
    """Each snapshot's synthetic set."""

    epochs: List[int] = setting(help="1-based epochs to snapshot; the last epoch is always added", factory=list)
    n_images: int = setting(800, int_at_least(1), "800", "synthetic images per snapshot")
    seed: int = setting(0, int_at_least(0), "${seed}", "every snapshot uses the same latent vectors")
    batch_size: int = setting(
        64,
        int_at_least(1),
        "${data.batch_size}",
        "generation batch: as in training, so BatchNorm's batch statistics match",
    )
    batchnorm: str = setting(
        "batch",
        one_of("batch", "running"),
        "batch",
        "batch: BatchNorm with the generated batch's statistics (DCGAN reference code); running: the running averages",
    )
    generator: str = setting(
        "ema",
        one_of("ema", "raw"),
        "ema",
        "ema: the generator's weight average when model.ema_decay > 0; raw: the trained weights",
    )


@dataclass
class RunSettings:
    """The root of ``python -m fetal_dcgan.train``'s config; groups are chosen in conf/config.yaml."""

    seed: int = setting(0, int_at_least(0), "0", "training seed (weights, noise, batches); sampling.seed follows it")
    ckpt_path: Optional[str] = setting(None, help="continue training from this checkpoint file")
    resume: bool = setting(
        True, one_of(True, False), "true", "in an existing run dir: skip if finished, else continue from last.ckpt"
    )
    checkpoint_every: int = setting(
        10, int_at_least(1), "10", "epochs between full checkpoints: a killed run loses at most this many"
    )
    optimized_metric: Optional[str] = setting(
        None, help="metric returned to a sweeper (e.g. Optuna): its value at the last snapshot"
    )
    gpu_memory_fraction: Optional[float] = setting(
        None,
        or_null(number_in(0, 1, low_open=True)),
        "0.18 (5 runs on one GPU)",
        "at most this share of the GPU's memory for this run (runs sharing a GPU)",
    )
    cpu_threads: Optional[int] = setting(
        None, or_null(int_at_least(1)), "3", "torch threads for this run; null: torch's default (all cores)"
    )
    sampling: SamplingSettings = setting(factory=SamplingSettings)
    study: StudySettings = setting(factory=StudySettings)
    data: Any = MISSING
    model: Any = MISSING
    trainer: Any = MISSING
    logger: Any = None
    callbacks: Any = None
    metrics: Any = MISSING
    paths: Any = MISSING
    anatomy: Any = MISSING


#: Declared groups: (group, option name in the ConfigStore, node); conf/<group>/*.yaml start from them.
SCHEMAS = (
    *(("data", f"_{source}", schema) for source, schema in SOURCE_SETTINGS.items()),
    ("model", "_dcgan", ModelSettings),
    ("model", "_ddpm", DDPMSettings),
    ("anatomy", "_anatomy", AnatomySettings),
    ("metrics", "_metrics", metrics_node()),
)


def register() -> None:
    """Store the declared settings in Hydra's ConfigStore (again: the same nodes)."""
    store = ConfigStore.instance()
    store.store(name="_run", node=RunSettings)
    for group, name, node in SCHEMAS:
        store.store(group=group, name=name, node=node)


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """``conf/config.yaml`` with ``overrides``, as ``python -m fetal_dcgan.train`` would compose it."""
    from hydra import compose, initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def declared_groups() -> list[tuple[str, type, str]]:
    """(key prefix, dataclass, where it applies) of every declared group, in docs/configuration.md's order."""
    from fetal_dcgan.metrics import METRICS
    from fetal_dcgan.metrics.settings import SuiteSettings

    return [
        ("", RunSettings, ""),
        ("data.", DataSettings, ""),
        *(("data.", schema, f"data={source}") for source, schema in SOURCE_SETTINGS.items()),
        ("model.", ModelSettings, ""),
        ("model.", DDPMSettings, "model=ddpm"),
        ("metrics.", SuiteSettings, ""),
        *((f"metrics.{name}.", m.options, "") for name, m in METRICS.items() if m.has_section),
        ("anatomy.", AnatomySettings, ""),
    ]


def markdown_table() -> str:
    """Every declared key: its default, what it allows and what it means (docs/configuration.md
    holds a copy; a test keeps them equal). A default written ``${...}`` follows another key;
    a data source's rows are the keys it adds or whose default it changes."""
    from omegaconf import OmegaConf

    from fetal_dcgan.rules import declared

    composed = OmegaConf.to_container(compose_config(), resolve=False)
    shared = dict(declared(DataSettings, "data."))
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for prefix, schema, where in declared_groups():
        for key, f in declared(schema, prefix):
            if not f.metadata or where and key in shared and shared[key].default == f.default:
                continue  # not a setting (a class, a group), or a source's shared key as declared for all
            default = _tied(composed, key) or _yaml(
                f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            )
            rule, meaning = f.metadata["rule"], f.metadata["help"]
            cells = (f"`{key}`", f"`{default}`", rule[1] if rule else "", f"({where}) {meaning}" if where else meaning)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _tied(composed: dict, key: str) -> str | None:
    """The composed config's value of ``key`` when it follows another key (an interpolation)."""
    node = composed
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) and "${" in node else None


def _yaml(value) -> str:
    """A default as it is written in YAML (a list in flow style)."""
    if isinstance(value, list):
        return "[" + ", ".join(map(_yaml, value)) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


if __name__ == "__main__":
    print(markdown_table(), end="")
