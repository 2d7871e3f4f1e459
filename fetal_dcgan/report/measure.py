"""Measure a sweep's margins: real sets scored exactly as its synthetic sets were.

For each image size of the sweep, ``draws`` sets of real images from the training pool
(each at most half the pool) are scored against the sweep's reference set with its metric
settings, each audited for memorisation against the pool images it did not draw. Their
spread (``report.margins.real_spread``) and the sweep's own synthetic sets at the last
snapshot (the pilot for a ``gap`` margin) give every metric's margin, declared as the
sweep's config says (``study.margins``) and written to ``SWEEP/margins.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from fetal_dcgan.metrics import registry
from fetal_dcgan.report.collect import Sweep, load_sweep
from fetal_dcgan.report.margins import MARGINS_FILE, declare, real_spread, write_margins
from fetal_dcgan.report.settings import MarginSettings
from fetal_dcgan.rules import configure


def real_draws(pool, reference, held_out, suite, size: int, draws: int, seed: int) -> list[dict[str, float]]:
    """Scores of ``draws`` random sets of ``size`` pool images against the reference, each
    audited for memorisation against the rest of the pool (images it did not draw)."""
    import torch

    scores = []
    for draw in range(draws):
        order = torch.from_numpy(np.random.default_rng([seed, draw]).permutation(len(pool)))
        scores.append(suite.score(pool[order[:size]], reference, pool[order[size:]], held_out).scalars)
    return scores


def pilot_means(sweep: Sweep, image_size: int) -> dict[str, tuple[float, float]]:
    """{key: (mean, standard error over runs)} of the sweep's sets of one size at the last snapshot."""
    results = sweep.results
    if "image_size" in results:
        results = results[results["image_size"] == image_size]
    last = results[results["epoch"] == results["epoch"].max()]
    out = {}
    for key in sweep.metric_columns:
        values = last[key].to_numpy(float)
        values = values[np.isfinite(values)]
        if len(values):
            se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
            out[key] = (float(values.mean()), float(se))
    return out


def _size_configs(sweep: Sweep) -> dict[int, object]:
    """The config of the first run of each image size."""
    from fetal_dcgan.runs import run_config

    configs = {}
    for run in sweep.runs.itertuples():
        cfg = run_config(Path(run.path))
        if cfg is not None:
            configs.setdefault(int(cfg.data.image_size), cfg)
    return configs


def measure_size(cfg, sweep: Sweep, draws: int, seed: int, settings: MarginSettings) -> dict:
    """One image size's section of margins.json."""
    from fetal_dcgan.data.datamodule import UltrasoundDataModule
    from fetal_dcgan.metrics import MetricSuite

    data = {**OmegaConf.to_container(cfg.data, resolve=True), "n": None}
    data.pop("_target_", None)
    datamodule = UltrasoundDataModule(**data)
    datamodule.setup()
    metric_settings = {k: v for k, v in OmegaConf.to_container(cfg.metrics, resolve=True).items() if k != "_target_"}
    suite = MetricSuite(**{**metric_settings, "ci_resamples": 0})
    set_size, pool = int(cfg.sampling.n_images), len(datamodule.train_images)
    size = min(set_size, pool // 2)
    scores = real_draws(datamodule.train_images, datamodule.reference, datamodule.held_out, suite, size, draws, seed)
    spread = real_spread(scores, registry.key_names(level="set", role="score"), size, pool, set_size)
    description = (
        f"{data['source']}, {data['image_size']} px, fit={data['fit']}, resize={data['resize']}, "
        f"reference={data['reference']}; real sets of {size} of {pool} training-pool images, SD corrected "
        f"for the finite pool and scaled to sets of {set_size}"
    )
    about = {"description": description, "set_size": set_size, "reference_n": len(datamodule.reference)}
    about.update(drawn_size=size, pool=pool, draws=draws, seed=seed, source=settings.source)
    about["fraction"] = settings.fraction
    return {"about": about, "metrics": declare(spread, pilot_means(sweep, int(cfg.data.image_size)), settings)}


def sweep_margins(sweep_dir: str | Path, draws: int = 8, seed: int = 0, source: str | None = None) -> Path:
    """Measure and declare the sweep's margins for each of its image sizes, as its runs'
    ``study.margins`` say (``source`` overrides it); write ``SWEEP/margins.json``."""
    sweep = load_sweep(sweep_dir)
    sections = {}
    for image_size, cfg in sorted(_size_configs(sweep).items()):
        settings = configure(MarginSettings, OmegaConf.select(cfg, "study.margins", default=None))
        if source is not None:
            settings.source = source
        sections[str(image_size)] = measure_size(cfg, sweep, draws, seed, settings)
    return write_margins(Path(sweep_dir) / MARGINS_FILE, sections)
