"""The layout of a run directory, and reading what a run left there.

A finished run holds ``finished.json`` (written last, atomically): a sweep started again
skips it, while an unfinished run continues from ``checkpoints/last.ckpt``. Every writer
and reader of a run's files finds them through ``RunLayout``; the two folders Lightning
writes are named in ``conf/`` too (callbacks.checkpoint.dirpath, logger.tensorboard.name),
and a test keeps them equal.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from fetal_dcgan.utils import atomic_write_text

#: Columns of metrics.csv and per_image.csv that describe the run and the snapshot, not the set.
RUN_COLUMNS = ("generator", "epoch", "step", "kimg", "n", "image_size", "lr", "seed", "reference_in_training")


class TrainingFolder:
    """A folder Lightning trains in: its checkpoints, and the last one to resume from."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"


class RunLayout(TrainingFolder):
    """Where a run keeps each thing."""

    CONFIG = "config.yaml"  # the resolved config the run was trained with

    def is_run(self) -> bool:
        """Training started here: Hydra recorded the job, or training wrote its resolved config
        (a run made without Hydra has only the latter; one that failed its checks, the former)."""
        return self.config.is_file() or self.hydra_config.is_file()

    @property
    def config(self) -> Path:
        return self.root / self.CONFIG

    @property
    def hydra_config(self) -> Path:
        return self.root / ".hydra" / "config.yaml"

    @property
    def overrides(self) -> Path:
        return self.root / ".hydra" / "overrides.yaml"

    @property
    def subset(self) -> Path:
        return self.root / "subset.txt"

    @property
    def reference(self) -> Path:
        return self.root / "reference.txt"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def per_image_csv(self) -> Path:
        return self.root / "per_image.csv"

    @property
    def finished(self) -> Path:
        return self.root / "finished.json"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def snapshot_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch={epoch:04d}.ckpt"

    def samples(self, epoch: int) -> Path:
        return self.root / "samples" / f"epoch={epoch:04d}"

    def vectors(self, epoch: int) -> Path:
        """The snapshot's vector outputs (rLBPv, sLBPv, per-image histograms)."""
        return self.root / "metrics" / f"epoch={epoch:04d}.npz"

    def metric_figure(self, epoch: int, name: str) -> Path:
        """A metric's picture of the snapshot (``register_figure``), e.g. ``closest_to_training``."""
        return self.root / "metrics" / f"epoch={epoch:04d}_{name}.png"


def last_checkpoint(run_dir: Path) -> Path:
    return RunLayout(run_dir).last_checkpoint


def read_csv(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def last_metrics(run_dir: Path) -> dict:
    """The metrics row of the last scored snapshot ({} when none was scored)."""
    rows = read_csv(RunLayout(run_dir).metrics_csv)
    return max(rows, key=lambda row: int(row["epoch"])) if rows else {}


#: The phases a finished record times: ``fit`` in all, and within it sampling, metrics and the rest.
PHASES = ("training", "sampling", "metrics", "fit")


@dataclass
class FinishedRun:
    """``finished.json``, written last: a run that has it is complete. ``seconds``: wall time
    of the last session's ``PHASES``; ``metric_seconds``: of each metric within ``metrics``;
    ``last_metrics``: the last snapshot's row of metrics.csv."""

    finished_at: str
    max_epochs: int
    seconds: dict[str, float] = field(default_factory=dict)
    metric_seconds: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float | str] = field(default_factory=dict)

    def phase(self, name: str) -> float:
        return self.seconds.get(name, 0.0)


def read_finished(run_dir: Path) -> FinishedRun | None:
    path = RunLayout(run_dir).finished
    return FinishedRun(**json.loads(path.read_text())) if path.is_file() else None


def write_finished(
    run_dir: Path,
    max_epochs: int,
    seconds: dict[str, float] | None = None,
    metric_seconds: dict[str, float] | None = None,
) -> FinishedRun:
    """Mark the run complete."""
    record = FinishedRun(
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        max_epochs=max_epochs,
        seconds={k: round(v, 3) for k, v in (seconds or {}).items()},
        metric_seconds={k: round(v, 3) for k, v in (metric_seconds or {}).items()},
        last_metrics=last_metrics(run_dir),
    )
    atomic_write_text(json.dumps(asdict(record), indent=1), RunLayout(run_dir).finished)
    return record


def find_runs(root: str | Path) -> list[Path]:
    """The runs at or under ``root``, in sweep order (job numbers compared as numbers)."""
    root = Path(root)
    if RunLayout(root).is_run():
        return [root]
    # one walk: the pattern matches the resolved config and Hydra's .hydra/config.yaml alike
    markers = root.glob(f"**/{RunLayout.CONFIG}")
    runs = {m.parent.parent if m.parent.name == ".hydra" else m.parent for m in markers}
    return sorted(runs, key=lambda p: [int(s) if s.isdigit() else s for s in p.relative_to(root).parts])


def run_of(folder: Path) -> Path | None:
    """The run directory a folder belongs to: the run itself or one of its ``samples/epoch=NNNN``."""
    folder = Path(folder)
    for candidate in (folder, folder.parent.parent):
        if RunLayout(candidate).is_run():
            return candidate
    return None


def run_config(folder: Path):
    """The config.yaml (a DictConfig) of the run ``folder`` belongs to, read once per version
    of the file; None when the folder is not part of a run or the run has no config yet."""
    run = run_of(folder)
    config = None if run is None else RunLayout(run).config
    return _load_config(str(config), config.stat().st_mtime_ns) if config and config.is_file() else None


@lru_cache(maxsize=64)
def _load_config(path: str, version: int):
    from omegaconf import OmegaConf

    return OmegaConf.load(path)


def run_setting(folder: Path, key: str):
    """A value (dotted ``key``) of the config of the run ``folder`` belongs to; None when the
    folder is not part of a run or the run's config lacks the key."""
    from omegaconf import OmegaConf

    config = run_config(folder)
    return None if config is None else OmegaConf.select(config, key, default=None)
