"""Score every snapshot's sample set against the reference set while training.

After ``SampleSnapshots`` has written ``samples/epoch=NNNN/``, the set is read back (so
the scores are those of the files on disk) and scored with the configured metrics. The
run directory gets one row per snapshot in ``metrics.csv`` (run settings, then every
metric and its status), the per-image values in ``per_image.csv``, the LBP vectors in
``metrics/epoch=NNNN.npz`` and the metrics' figures (``metrics/epoch=NNNN_<figure>.png``:
the synthetic images closest to training images, the heads' measurements); TensorBoard
gets ``metrics/<name>``. A re-scored epoch (after a resume) replaces its rows. Nothing
here can stop training: failures are logged and recorded, and the checkpoint and samples
are already on disk.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from pathlib import Path

import lightning as L

from fetal_dcgan.callbacks.snapshot import SampleSnapshots
from fetal_dcgan.data.preprocess import read_image_set
from fetal_dcgan.errors import ConfigError
from fetal_dcgan.metrics.suite import MetricsResult, MetricSuite
from fetal_dcgan.models.generator import ImageGenerator
from fetal_dcgan.runs import RunLayout
from fetal_dcgan.utils import atomic_save_npz, atomic_write_text

log = logging.getLogger(__name__)


def _finite(scalars: dict) -> dict[str, float]:
    return {k: float(v) for k, v in scalars.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def replace_rows(path: Path, key: str, value, rows: list[dict]) -> None:
    """Rewrite a CSV with the rows whose ``key`` equals ``value`` replaced by ``rows``."""
    kept = []
    if path.is_file():
        with path.open(newline="") as fh:
            kept = [row for row in csv.DictReader(fh) if row.get(key) != str(value)]
    columns = list(dict.fromkeys([c for row in kept + rows for c in row]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(kept + rows)
    atomic_write_text(buffer.getvalue(), path)


def per_image_rows(result: MetricsResult, run_columns: dict, files: list[Path]) -> list[dict]:
    names = [n for n, v in result.per_image.items() if len(v) == len(files)]
    return [{**run_columns, "image": f.name, **{n: result.per_image[n][i] for n in names}} for i, f in enumerate(files)]


class SnapshotMetrics(L.Callback):
    """Scores each snapshot of the run's ``SampleSnapshots`` callback with ``suite``."""

    def __init__(self, dirpath: str, suite: MetricSuite, run_info: dict | None = None):
        self.dirpath = Path(dirpath)
        self.suite = suite
        self.run_info = dict(run_info or {})
        self.snapshots: SampleSnapshots | None = None
        self.last_scalars: dict = {}
        self.seconds = 0.0  # time spent scoring, for the sweep benchmark
        self.seconds_by_metric: dict[str, float] = {}  # the same, per metric

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        found = [cb for cb in trainer.callbacks if isinstance(cb, SampleSnapshots)]
        if not found:
            raise ConfigError("SnapshotMetrics scores the sets written by SampleSnapshots: add that callback too.")
        self.snapshots = found[0]

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.snapshots is None or epoch not in self.snapshots.epochs or not trainer.is_global_zero:
            return
        start = time.perf_counter()
        try:
            scalars = self.score_epoch(trainer, epoch)
        except Exception:  # never lose a training run to its metrics
            log.exception("Scoring the samples of epoch %d failed; training goes on.", epoch)
            return
        finally:
            self.seconds += time.perf_counter() - start
        self.last_scalars = _finite(scalars)
        pl_module.log_dict({f"metrics/{k}": v for k, v in self.last_scalars.items()}, on_step=False, on_epoch=True)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """TensorBoard's hparams view: the run's settings beside its last snapshot's metrics."""
        if not self.last_scalars or not trainer.is_global_zero:
            return
        params = {"n": len(trainer.datamodule.train_files), **self.run_info, "max_epochs": trainer.max_epochs}
        for logger in trainer.loggers:
            logger.log_hyperparams(params, {f"final/{k}": v for k, v in self.last_scalars.items()})

    def score_epoch(self, trainer: L.Trainer, epoch: int) -> dict:
        layout = RunLayout(self.dirpath)
        files = sorted(layout.samples(epoch).glob("*.png"))
        fake = read_image_set(files)
        datamodule = trainer.datamodule
        result = self.suite.score(
            fake, datamodule.reference, datamodule.train_images, datamodule.held_out, datamodule.train_groups
        )
        for name, seconds in result.seconds.items():
            self.seconds_by_metric[name] = self.seconds_by_metric.get(name, 0.0) + seconds
        module: ImageGenerator = trainer.lightning_module
        run_columns = {
            "generator": module.generator_name,
            "epoch": epoch,
            "step": module.steps,
            "kimg": module.images_seen / 1000,
            "n": len(datamodule.train_files),
            **self.run_info,
            "reference_in_training": datamodule.reference_in_training,
        }
        replace_rows(layout.metrics_csv, "epoch", epoch, [{**run_columns, **result.record()}])
        replace_rows(layout.per_image_csv, "epoch", epoch, per_image_rows(result, run_columns, files))
        atomic_save_npz(layout.vectors(epoch), **result.vectors)
        self.suite.figures(fake, datamodule.train_images, result, lambda name: layout.metric_figure(epoch, name))
        log.info(
            "Epoch %d metrics took %.1f s: %s",
            epoch,
            sum(result.seconds.values()),
            ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items()),
        )
        log.info(
            "Epoch %d metrics: %s",
            epoch,
            ", ".join(f"{k}={v:.4g}" for k, v in result.scalars.items() if isinstance(v, float) and not math.isnan(v)),
        )
        return result.scalars
