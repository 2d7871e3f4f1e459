"""The layout of a run directory, and reading what a run left there.

A finished run holds ``finished.json`` (written last, atomically): a sweep started again
skips it, while an unfinished run continues from ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

from fetal_dcgan.utils import atomic_write_text

FINISHED = "finished.json"
METRICS_CSV = "metrics.csv"
PER_IMAGE_CSV = "per_image.csv"


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / "last.ckpt"


def read_csv(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def last_metrics(run_dir: Path) -> dict:
    """The metrics row of the last scored snapshot ({} when none was scored)."""
    rows = read_csv(Path(run_dir) / METRICS_CSV)
    return max(rows, key=lambda row: int(row["epoch"])) if rows else {}


def read_finished(run_dir: Path) -> dict | None:
    path = Path(run_dir) / FINISHED
    return json.loads(path.read_text()) if path.is_file() else None


def write_finished(run_dir: Path, max_epochs: int, seconds: dict[str, float] | None = None,
                   metric_seconds: dict[str, float] | None = None) -> dict:
    """Mark the run complete; ``seconds``: wall time of this session's phases, and
    ``metric_seconds`` of each metric within the metrics phase."""
    record = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "max_epochs": max_epochs,
              "seconds": {k: round(v, 3) for k, v in (seconds or {}).items()},
              "metric_seconds": {k: round(v, 3) for k, v in (metric_seconds or {}).items()},
              "last_metrics": last_metrics(run_dir)}
    atomic_write_text(json.dumps(record, indent=1), Path(run_dir) / FINISHED)
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
