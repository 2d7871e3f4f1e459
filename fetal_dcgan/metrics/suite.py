"""Run the configured metrics on a synthetic set against a reference set.

``MetricSuite.score`` returns one ``MetricsResult``: set-level scalars, per-synthetic-image
values, vectors (LBPv) and a status per metric ("ok", "unavailable: ...", "error: ...").
A metric that fails leaves NaN in its declared columns and never stops the others. The
settings are ``conf/metrics``: options left out of the constructor are read from there,
so a suite built in code scores as training does.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fetal_dcgan.metrics.context import ReferenceStore, ScoringContext
from fetal_dcgan.metrics.features import FeatureSettings, FeatureSpaces, MetricUnavailable
from fetal_dcgan.metrics.registry import METRICS, SET_SIZES, load_modules
from fetal_dcgan.metrics.settings import SuiteSettings
from fetal_dcgan.rules import configure

log = logging.getLogger(__name__)


@dataclass
class MetricsResult:
    scalars: dict[str, float] = field(default_factory=dict)
    per_image: dict[str, np.ndarray] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each metric

    def record(self) -> dict[str, float | str]:
        """One flat row: every scalar, then ``status_<metric>``."""
        return {**self.scalars, **{f"status_{name}": text for name, text in self.status.items()}}


class MetricSuite:
    """The configured metrics, their options and the reference-statistics store.

    Settings left out are the declared defaults (``SuiteSettings``, each metric's options
    class), which the metrics config is built from. ``feature_extractor``: a module standing
    in for Inception; ``cache_dir``: where reference statistics persist (None: only in
    memory); ``options``: per-metric sections such as ``kid={"subsets": 10}``."""

    def __init__(
        self,
        names: list[str] | tuple[str, ...] | None = None,
        *,
        device: str | None = None,
        seed: int | None = None,
        ci_resamples: int | None = None,
        cache_dir: str | Path | None = None,
        features: dict | FeatureSettings | None = None,
        modules: list[str] | None = None,
        feature_extractor: nn.Module | None = None,
        **options: dict,
    ):
        load_modules(modules)
        defaults = SuiteSettings()
        names = defaults.names if names is None else list(names)
        unknown = [n for n in names if n not in METRICS]
        if unknown:
            raise ValueError(f"Unknown metrics {unknown}: choose from {', '.join(METRICS)}.")
        stray = [s for s in options if s not in METRICS]
        if stray:
            raise ValueError(
                f"Options for {stray}, which are not metrics: sections of the metrics config are the suite's "
                f"settings ({', '.join(f.name for f in fields(SuiteSettings)[1:])}) "
                f"or a metric's ({', '.join(METRICS)})."
            )
        self.names = [n for n in METRICS if n in names]
        self.options = {n: METRICS[n].configure(options.get(n)) for n in self.names}
        device = device or defaults.device
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.seed = defaults.seed if seed is None else int(seed)
        self.ci_resamples = defaults.ci_resamples if ci_resamples is None else int(ci_resamples)
        self.spaces = FeatureSpaces(configure(FeatureSettings, features), feature_extractor)
        self.store = ReferenceStore(cache_dir)
        self._warned: set[str] = set()

    @property
    def fingerprint(self) -> str:
        """A hash of every setting that decides the scores (metrics, their options, seed,
        resamples, feature networks), so scores cached under it are this suite's."""
        stand_in = self.spaces.label("inception")  # a module standing in for Inception, by its class
        settings = (self.names, self.options, self.seed, self.ci_resamples, self.spaces.options, stand_in)
        return hashlib.sha256(repr(settings).encode()).hexdigest()[:24]

    def score(
        self,
        fake: torch.Tensor,
        real: torch.Tensor,
        train: torch.Tensor | None = None,
        held_out: torch.Tensor | None = None,
        train_groups: torch.Tensor | None = None,
    ) -> MetricsResult:
        """Score uint8 synthetic images (N, 1, H, W) against uint8 reference images; ``train``
        (the images the generator learned from), ``held_out`` (real images it never saw) and
        ``train_groups`` (the fetus of each training image) serve the memorisation audit."""
        check_image_sets(fake, real)
        result = MetricsResult(scalars=dict(zip([k.name for k in SET_SIZES], (len(fake), len(real)))))
        context = ScoringContext(
            fake,
            real,
            train,
            held_out,
            self.device,
            self.seed,
            self.ci_resamples,
            self.spaces,
            self.store,
            train_groups,
        )
        for name in self.names:
            metric = METRICS[name]
            start = time.perf_counter()
            try:
                out = metric.compute(context.for_metric(self.options[name]))
                result.status[name] = out.pop("status", "ok")
            except MetricUnavailable as exc:
                out, result.status[name] = {}, f"unavailable: {exc}"
                if result.status[name] not in self._warned:  # once per suite, not every snapshot
                    self._warned.add(result.status[name])
                    log.warning("%s %s", name, result.status[name])
            except Exception as exc:  # a failing metric must not stop the others or training
                out, result.status[name] = {}, f"error: {type(exc).__name__}: {exc}"
                log.exception("metric %s failed (%s); the other metrics go on", name, result.status[name])
            result.seconds[name] = time.perf_counter() - start
            scalars = out.get("scalars", {})
            result.scalars.update({k.name: scalars.get(k.name, math.nan) for k in metric.keys if k.level == "set"})
            result.per_image.update(out.get("per_image", {}))
            result.vectors.update(out.get("vectors", {}))
        return result

    def figures(
        self, fake: torch.Tensor, train: torch.Tensor | None, result: MetricsResult, path_of: Callable[[str], Path]
    ) -> list[Path]:
        """Draw every picture the suite's metrics offer of a scored set, to ``path_of(name)``;
        a picture that fails is logged and skipped."""
        written = []
        for name in self.names:
            for figure_name, draw in METRICS[name].figures:
                try:
                    path = draw(fake, train, result, path_of(figure_name))
                except Exception:  # a picture must never cost the scores or the run
                    log.exception("The %s figure of metric %s failed; the scores are kept.", figure_name, name)
                    continue
                if path:
                    written.append(Path(path))
        return written


def check_image_sets(fake: torch.Tensor, real: torch.Tensor) -> None:
    """Both sets must be non-empty uint8 (N, 1, H, W) of the same H x W."""
    for name, images in (("synthetic", fake), ("reference", real)):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"The {name} set must be uint8 (N, 1, H, W), got {images.dtype} {tuple(images.shape)}.")
        if len(images) == 0:
            raise ValueError(f"The {name} set is empty.")
    if fake.shape[-2:] != real.shape[-2:]:
        raise ValueError(
            f"Image sizes differ: synthetic {tuple(fake.shape[-2:])} vs reference "
            f"{tuple(real.shape[-2:])}; resize one set to the other's size."
        )
