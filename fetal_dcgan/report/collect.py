"""Find the runs of a sweep and gather what they wrote into tables.

A run is a folder training started in (``RunLayout.is_run``); its ``metrics.csv`` rows become rows of
``results`` (one per run x snapshot) with the run's id, its swept overrides and status.
Cells that failed or never scored a snapshot are kept in ``runs`` with their status, so
a report says what is missing instead of silently dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from fetal_dcgan.errors import UserError
from fetal_dcgan.metrics import registry
from fetal_dcgan.runs import RUN_COLUMNS, RunLayout, find_runs, run_config, run_setting

#: Columns that describe a cell rather than measure it.
CONFIG_COLUMNS = ("run", *RUN_COLUMNS)
#: Candidate axes of a study, in the order they are reported; seeds are replicates, not an axis.
AXES = ("generator", "n", "epoch", "lr", "image_size")
#: Overrides that replicate a cell (training seed, data seed) or are already an axis above.
NOT_FACTORS = ("generator", "model", "data.n", "model.lr", "data.image_size", "seed", "data.seed", "experiment")


@dataclass(frozen=True)
class SetFiles:
    """Where one scored set's images and vectors are, for sets that are not in a run folder."""

    samples: list[Path]
    vectors: Path


@dataclass
class Sweep:
    root: Path
    runs: pd.DataFrame  # one row per run: run, path, status, overrides
    results: pd.DataFrame  # one row per run x scored snapshot
    per_image: pd.DataFrame  # one row per run x snapshot x synthetic image
    config: object  # the first run's resolved config (a DictConfig, or None), for the report's header
    factors: tuple[str, ...] = ()  # factor columns besides AXES (a manifest's own)
    sets: dict[tuple[str, int], SetFiles] | None = None  # a manifest's sets; None: in the runs' folders

    @property
    def default_report(self) -> Path:
        """Where the report goes unless told: SWEEP/report, or beside a manifest, <stem>-report/."""
        return self.root / "report" if self.sets is None else self.root.with_name(f"{self.root.stem}-report")

    def _run_dir(self, run: str) -> Path:
        return Path(self.runs.set_index("run").loc[run, "path"])

    def samples(self, run: str, epoch: int) -> list[Path]:
        """The image files of the set of ``run`` at ``epoch``."""
        if self.sets is not None:
            return self.sets[(run, epoch)].samples
        return sorted(RunLayout(self._run_dir(run)).samples(epoch).glob("*.png"))

    def vectors(self, run: str, epoch: int) -> Path:
        """The set's vector outputs (``RunLayout.vectors``)."""
        if self.sets is not None:
            return self.sets[(run, epoch)].vectors
        return RunLayout(self._run_dir(run)).vectors(epoch)

    def tensorboard(self, run: str) -> Path | None:
        """The run's training logs, where this project trained it."""
        return None if self.sets is not None else RunLayout(self._run_dir(run)).tensorboard

    @property
    def metric_columns(self) -> list[str]:
        """Set-level scores of the synthetic sets (declared role ``score``), in declaration order."""
        return [
            k
            for k in registry.key_names(role="score")
            if k in self.results and pd.api.types.is_numeric_dtype(self.results[k])
        ]

    @property
    def per_image_metrics(self) -> list[str]:
        """Per-image scores, which can serve as (descriptive) replicates."""
        return [k for k in registry.key_names(level="image", role="score") if k in self.per_image]

    @property
    def table_columns(self) -> list[str]:
        """The run columns and every set-level value but the interval bounds."""
        shown = registry.key_names(role=("score", "reference", "diagnostic"))
        return [c for c in (*CONFIG_COLUMNS, *shown) if c in self.results]

    @property
    def varied_axes(self) -> list[str]:
        """Axes with more than one value among the scored cells, less those ``aliased``."""
        return [a for a in self._candidate_axes() if a not in self.aliased]

    @property
    def aliased(self) -> dict[str, str]:
        """Axes whose level follows from an earlier axis's (a generator's own learning rate):
        they cannot be told apart from it, so they are not tested as factors of their own."""
        kept: list[str] = []
        aliased = {}
        for axis in self._candidate_axes():
            by = next((k for k in kept if (self.results.groupby(k)[axis].nunique() <= 1).all()), None)
            if by is None:
                kept.append(axis)
            else:
                aliased[axis] = by
        return aliased

    def _candidate_axes(self) -> list[str]:
        axes = [a for a in (*AXES, *self.factors) if a in self.results and self.results[a].nunique() > 1]
        axes += [
            c
            for c in self.results.columns
            if c.startswith("override.")
            and self.results[c].nunique() > 1
            and c.removeprefix("override.") not in NOT_FACTORS
            and not c.startswith("override.hydra")
        ]
        return axes


def _overrides(run_dir: Path) -> dict[str, str]:
    path = RunLayout(run_dir).overrides
    items = yaml.safe_load(path.read_text()) if path.is_file() else []
    return dict(item.split("=", 1) for item in items or [] if "=" in item and not item.startswith("hydra"))


def load_sweep(root: str | Path) -> Sweep:
    """Read every run under ``root`` (a multirun folder, or a single run folder)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"{root} does not exist: give the sweep folder that `python -m fetal_dcgan.train -m` "
            "wrote, e.g. multirun/smoke."
        )
    run_dirs = find_runs(root)
    if not run_dirs:
        raise UserError(
            f"{root} is not a sweep: no run folders ({RunLayout.CONFIG} or .hydra/) were found under it. "
            "Give the folder that `python -m fetal_dcgan.train -m ...` printed (multirun/...)."
        )
    runs, results, per_image = [], [], []
    for run_dir in run_dirs:
        run_id = str(run_dir.relative_to(root)) if run_dir != root else run_dir.name
        overrides = {f"override.{k}": v for k, v in _overrides(run_dir).items()}
        layout = RunLayout(run_dir)
        registry.load_modules(run_setting(run_dir, "metrics.modules"))  # metrics of the run's own modules
        metrics = layout.metrics_csv
        status = ("finished" if layout.finished.is_file() else "unfinished") if metrics.is_file() else "no metrics"
        runs.append({"run": run_id, "path": str(run_dir), "status": status, **overrides})
        if metrics.is_file():
            results.append(pd.read_csv(metrics).assign(run=run_id, **overrides))
        if layout.per_image_csv.is_file():
            per_image.append(pd.read_csv(layout.per_image_csv).assign(run=run_id))
    if not results:
        raise UserError(
            f"No run under {root} has scored a snapshot (no metrics.csv): the sweep failed or has not "
            "reached its first sampling epoch. See each run's train.log."
        )
    config = run_config(run_dirs[0])
    table = pd.concat(results, ignore_index=True)
    table = table[[c for c in CONFIG_COLUMNS if c in table] + [c for c in table if c not in CONFIG_COLUMNS]]
    images = pd.concat(per_image, ignore_index=True) if per_image else pd.DataFrame()
    if not images.empty:
        images = images[["run"] + [c for c in images if c != "run"]]
    return Sweep(
        root,
        pd.DataFrame(runs),
        table.sort_values(["run", "epoch"], key=natural_order).reset_index(drop=True),
        images,
        config,
    )


def natural_order(column: pd.Series) -> pd.Series:
    """Sort run ids like 2 < 10 (numbers as numbers)."""
    return column.map(lambda v: (0, int(v), "") if str(v).isdigit() else (1, 0, str(v)))
