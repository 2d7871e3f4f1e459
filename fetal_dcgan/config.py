"""The project's Hydra config composed outside ``@hydra.main``, so that commands such as
``evaluate`` and the benchmarks take their defaults from ``conf/`` like training does."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """``conf/config.yaml`` with ``overrides``, as ``python -m fetal_dcgan.train`` would compose it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))
