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
import math
import time
from pathlib import Path

from fetal_dcgan.errors import UserError
from fetal_dcgan.utils import atomic_write_text

#: Columns of metrics.csv and per_image.csv that describe the run and the snapshot, not the set.
RUN_COLUMNS = ("epoch", "step", "kimg", "n", "image_size", "lr", "seed", "reference_in_training")


class RunLayout:
    """Where a run keeps each thing."""

    CONFIG = "config.yaml"  # the resolved config the run was trained with

    def __init__(self, root: str | Path):
        self.root = Path(root)

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
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

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


def read_finished(run_dir: Path) -> dict | None:
    path = RunLayout(run_dir).finished
    return json.loads(path.read_text()) if path.is_file() else None


def write_finished(
    run_dir: Path,
    max_epochs: int,
    seconds: dict[str, float] | None = None,
    metric_seconds: dict[str, float] | None = None,
) -> dict:
    """Mark the run complete; ``seconds``: wall time of this session's phases, and
    ``metric_seconds`` of each metric within the metrics phase."""
    record = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "max_epochs": max_epochs,
        "seconds": {k: round(v, 3) for k, v in (seconds or {}).items()},
        "metric_seconds": {k: round(v, 3) for k, v in (metric_seconds or {}).items()},
        "last_metrics": last_metrics(run_dir),
    }
    atomic_write_text(json.dumps(record, indent=1), RunLayout(run_dir).finished)
    return record


def objective(record: dict | None, metric: str | None) -> float | None:
    """The value a sweeper optimises: ``metric`` at the last snapshot (NaN if missing)."""
    if not metric:
        return None
    value = (record or {}).get("last_metrics", {}).get(metric, "nan")
    try:
        return float(value)
    except ValueError:
        return math.nan


def run_of(folder: Path) -> Path | None:
    """The run directory a folder belongs to: the run itself or one of its ``samples/epoch=NNNN``."""
    folder = Path(folder)
    for candidate in (folder, folder.parent.parent):
        if RunLayout(candidate).config.is_file():
            return candidate
    return None


def run_setting(folder: Path, key: str):
    """A value (dotted ``key``) of the config.yaml of the run ``folder`` belongs to; None
    when the folder is not part of a run or the run's config lacks the key."""
    from omegaconf import OmegaConf

    run = run_of(folder)
    return None if run is None else OmegaConf.select(OmegaConf.load(RunLayout(run).config), key, default=None)


def preprocessing(
    folders: list[Path], fit: str | None, size: int | None, fit_flag: str = "--fit", size_flag: str = "--resize"
) -> tuple[str, int | None, str]:
    """How real images must be prepared to match synthetic sets: ``data.fit`` and
    ``data.image_size`` from the runs' ``config.yaml``, which options given by hand must
    agree with; for folders that are not runs, the options as given (fit: pad by default).
    Returns (fit, size, where they came from)."""
    import yaml

    found = {}
    for run in {run_of(f) for f in folders} - {None}:  # a config.yaml's folder is its own run
        data = (yaml.safe_load(RunLayout(run).config.read_text()) or {}).get("data", {})
        found[run] = (data.get("fit"), data.get("image_size"))
    if len(set(found.values())) > 1:
        raise UserError(
            "The synthetic sets were trained with different preprocessing: "
            + "; ".join(f"{run}: fit={f}, image_size={s}" for run, (f, s) in sorted(found.items()))
            + ". Use sets of one "
            "preprocessing at a time."
        )
    if not found:
        return fit or "pad", size, "as given"  # pad: data.fit's default
    run_fit, run_size = next(iter(found.values()))
    for flag, given, wanted, key in (
        (fit_flag, fit, run_fit, "data.fit"),
        (size_flag, size, run_size, "data.image_size"),
    ):
        if given is not None and given != wanted:
            raise UserError(
                f"{flag} {given} differs from the run's {key}={wanted} (in "
                f"{RunLayout(next(iter(found))).config}): real images must be prepared as the generator's "
                f"training images were. Drop {flag} or give {flag} {wanted}."
            )
    return run_fit, run_size, f"from {RunLayout(next(iter(found))).config}"
