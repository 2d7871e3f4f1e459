"""Helpers shared by the tests: tiny training configs, image files written on the fly, a
miniature HC18 release, and a callback that crashes a run like a killed job."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
from omegaconf import DictConfig, open_dict
from PIL import Image

from fetal_dcgan import config as fetal_config
from fetal_dcgan import utils as fetal_utils

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = str(fetal_utils.CONF_DIR)

#: Overrides that make a real training run take seconds on 2 CPU cores.
TINY_ANY_SOURCE = [
    "trainer=cpu",
    "data.image_size=32",
    "data.batch_size=16",
    "data.reference_n=16",
    "model.ngf=8",
    "model.ndf=8",
    "model.nz=16",
    "trainer.max_epochs=3",
    "sampling.epochs=[2]",
    "sampling.n_images=10",
    "checkpoint_every=1",
    "trainer.enable_model_summary=false",
    "+trainer.enable_progress_bar=false",
]
TINY = TINY_ANY_SOURCE + ["data.phantom.n_images=48", "data.phantom.height=54", "data.phantom.width=80"]


def compose_config(output_dir: Path, overrides: list[str] = ()) -> DictConfig:
    """The config Hydra would build for these overrides, writing into ``output_dir``."""
    cfg = fetal_config.compose_config(overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def write_image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def noise_image(seed: int, shape=(54, 80)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def folder_of_noise(path: Path, n: int, shape=(24, 24), seed: int = 0) -> Path:
    """A folder of ``n`` noise PNGs."""
    for i in range(n):
        write_image(path / f"img_{i:03d}.png", noise_image(seed * 1000 + i, shape))
    return path


TRAIN_NAMES = ["000_HC.png", "001_HC.png", "010_2HC.png", "010_3HC.png", "392_HC.png", "392_2HC.png"]


def make_hc18(root, doubled=True, test=True):
    """A miniature of the HC18 release: scans, annotation masks, the CSV, stray files."""
    train = root / "training_set" / ("training_set" if doubled else "")
    for i, name in enumerate(TRAIN_NAMES):
        write_image(train / name, noise_image(i, (27 + i, 40)))
        write_image(train / name.replace("HC.png", "HC_Annotation.png"), np.zeros((27 + i, 40), np.uint8))
    (train / "training_set_pixel_size_and_HC.csv").write_text("filename,pixel size(mm),head circumference (mm)\n")
    (train / "Thumbs.db").write_bytes(b"\0\1")
    (train / "notes.txt").write_text("stray")
    if test:
        tdir = root / "test_set" / "test_set"
        for name in ["1000_HC.png", "1001_HC.png"]:
            write_image(tdir / name, noise_image(99, (27, 40)))
        (tdir / "test_set_pixel_size.csv").write_text("filename,pixel size(mm)\n")
    return train


class CrashAtEpoch(L.Callback):
    """A Lightning callback that fails at the start of a 1-based epoch, like a killed job.

    With ``flag``, it fails only while that file exists (and deletes it), so the same
    command crashes once; with ``when_seed`` only in the run whose ``seed`` matches.
    """

    def __init__(self, epoch: int, flag: str | None = None, seed: int | None = None, when_seed: int | None = None):
        self.epoch, self.flag, self.seed, self.when_seed = epoch, flag, seed, when_seed

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch + 1 != self.epoch or (self.when_seed is not None and self.seed != self.when_seed):
            return
        if self.flag is not None:
            if not Path(self.flag).exists():
                return
            Path(self.flag).unlink()
        raise RuntimeError(f"simulated crash at epoch {self.epoch}")


def simulate_ratings(
    seed: int,
    raters: int = 4,
    effect: float = 0.8,
    n_real: int = 34,
    n_sets: int = 12,
    per_set: int = 3,
    set_sd: float = 0.3,
    truth_sd: float = 0.0,
):
    """A rating study with a known effect: each answer's latent quality is ``effect`` for a
    real image plus image (and synthetic-set), rater and answer noise, and with ``truth_sd``
    a rater x truth term (each rater's own, random separation of real from synthetic); the
    1-5 rating rounds it, the call thresholds it. One row per answer, as ``survey analyze``
    reads them."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    images = [("real", f"r{i}", "", "") for i in range(n_real)]
    images += [("synthetic", f"s{s}_{j}", str(s), "10") for s in range(n_sets) for j in range(per_set)]
    set_effect = {str(s): rng.normal(0, set_sd) for s in range(n_sets)}
    image_effect = {name: rng.normal(0, 0.5) + set_effect.get(run, 0.0) for _, name, run, _ in images}
    rows = []
    for r in range(raters):
        bias, separation = rng.normal(0, 0.5), rng.normal(0, truth_sd)
        for truth, name, run, epoch in images:
            latent = (effect + separation) * (truth == "real") + image_effect[name] + bias + rng.normal(0, 0.7)
            rows.append(
                {
                    "rater": f"rater{r}",
                    "role": "engineer",
                    "image_id": name,
                    "truth": truth,
                    "run": run,
                    "epoch": epoch,
                    "rating": int(np.clip(np.round(3 + latent), 1, 5)),
                    "choice": "real" if latent + rng.normal(0, 0.5) > 0.3 else "synthetic",
                }
            )
    return pd.DataFrame(rows)


def run_permutation_p(x, y, runs) -> float:
    """Exact two-sided p of Pearson's r of (x, y) over every way of giving each run (all of one
    size, sets in a fixed order) the x of another run: written out for the tests."""
    import itertools

    from scipy import stats

    frame = pd.DataFrame({"x": np.asarray(x, float), "y": np.asarray(y, float), "run": np.asarray(runs).astype(str)})
    blocks = [g["x"].to_numpy() for _, g in frame.groupby("run", sort=False)]
    order = np.concatenate([np.flatnonzero(frame["run"].to_numpy() == r) for r in frame["run"].unique()])
    y_in_order = frame["y"].to_numpy()[order]
    observed = abs(stats.pearsonr(np.concatenate(blocks), y_in_order).statistic)
    values = [
        abs(stats.pearsonr(np.concatenate([blocks[i] for i in perm]), y_in_order).statistic)
        for perm in itertools.permutations(range(len(blocks)))
    ]
    return float(np.mean(np.array(values) >= observed - 1e-12))
