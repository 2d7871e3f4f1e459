"""Train a DCGAN: ``python -m fetal_dcgan.train [overrides]`` (``-m`` for a sweep).

The Hydra wrapper of ``pipeline.train``: it turns user errors into a clear message and
returns the metric a sweeper optimises.
"""

from __future__ import annotations

import logging
import math
import sys

import hydra
from omegaconf import DictConfig

from fetal_dcgan.config import register
from fetal_dcgan.errors import UserError
from fetal_dcgan.pipeline import train
from fetal_dcgan.runs import FinishedRun

log = logging.getLogger(__name__)
register()  # the declared settings, before @hydra.main composes the config


def objective(record: FinishedRun | None, metric: str | None) -> float | None:
    """The value a sweeper optimises: ``metric`` at the last snapshot (NaN if missing)."""
    if not metric:
        return None
    try:
        return float(record.last_metrics.get(metric, "nan")) if record else math.nan
    except ValueError:
        return math.nan


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train; return ``optimized_metric`` at the last snapshot for a sweeper such as Optuna."""
    try:
        return objective(train(cfg), cfg.get("optimized_metric"))
    except UserError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
