"""What every metric is given: the image sets, its own options and the shared statistics.

``MetricSuite.score`` builds one ``ScoringContext`` per scored set and hands each metric a
view of it with that metric's section of ``conf/metrics`` as ``options``. Features of the
synthetic set are extracted once per space and shared by the metrics of that call, never
kept; statistics of the reference and training sets live in a ``ReferenceStore`` for the
suite's life and, when they have a settings key, on disk under a hash of the images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from fetal_dcgan.imaging.digests import images_digest
from fetal_dcgan.metrics.features import FeatureSpaces, MetricUnavailable
from fetal_dcgan.utils import atomic_save


class ReferenceStore:
    """Statistics of sets that do not change between snapshots (reference, training)."""

    def __init__(self, cache_dir: str | Path | None = None):
        self.cache_dir = Path(cache_dir).expanduser() / "metrics" if cache_dir else None
        self._memo: dict[str, object] = {}
        self._digests: dict[int, tuple[torch.Tensor, str]] = {}

    def digest(self, images: torch.Tensor | None) -> str:
        """``images_digest``, remembered for the tensor object (the same sets come back every snapshot)."""
        if images is None:
            return "none"
        held = self._digests.get(id(images))
        if held is None or held[0] is not images:
            held = self._digests[id(images)] = (images, images_digest(images))
        return held[1]

    def get(
        self,
        kind: str,
        images: tuple[torch.Tensor | None, ...],
        compute: Callable[[], object],
        settings: str | None,
        persist: bool = True,
    ) -> object:
        """``compute()`` once per ``kind``, image sets and ``settings``; on disk too when
        ``persist`` and ``settings`` is not None (a stand-in network without a cache key
        has no settings that name it)."""
        key = "-".join(
            [kind, *(self.digest(x) for x in images), hashlib.sha256(str(settings).encode()).hexdigest()[:12]]
        )
        if key in self._memo:
            return self._memo[key]
        path = self.cache_dir / f"{key}.pt" if self.cache_dir and persist and settings is not None else None
        if path is not None and path.is_file():
            value = torch.load(path, weights_only=False)
        else:
            value = compute()
            if path is not None:
                atomic_save(value, path)
        self._memo[key] = value
        return value


@dataclass
class ScoringContext:
    """One synthetic set being scored, and everything a metric may use to score it."""

    fake: torch.Tensor
    real: torch.Tensor
    train: torch.Tensor | None
    held_out: torch.Tensor | None
    device: str
    seed: int
    ci_resamples: int
    spaces: FeatureSpaces
    store: ReferenceStore
    train_groups: torch.Tensor | None = None  # the fetus of each training image (repeat scans share one)
    options: object = None  # the metric's options object (its registered dataclass)
    _fake_features: dict[str, torch.Tensor] = field(default_factory=dict)

    def for_metric(self, options: object) -> "ScoringContext":
        """A view with one metric's options; the synthetic features stay shared."""
        return replace(self, options=options)

    def resamples(self) -> int:
        """Bootstrap resamples for this metric: ``ci_resamples`` times its ``ci_share``."""
        return int(self.ci_resamples * getattr(self.options, "ci_share", 1.0) + 1e-9)

    def features(self, space: str, images: torch.Tensor | None = None, persist: bool = True) -> torch.Tensor:
        """Features in ``space`` of the synthetic set (``images`` None: extracted once per
        scored set) or of a set that does not change (the reference: cached; ``persist``
        False: for the suite's life only, as a run's training variants)."""
        if images is None:
            if space not in self._fake_features:
                self._fake_features[space] = self.spaces.extract(space, self.fake, self.device)
            return self._fake_features[space]
        extractor = self.spaces.extractor(space)
        return self.store.get(
            "features",
            (images,),
            lambda: self.spaces.extract(space, images, self.device),
            getattr(extractor, "cache_key", None),
            persist,
        )

    def best_space(self) -> str:
        return self.spaces.best()

    def space(self) -> str:
        """The space the metric's ``space`` option names, else the best available."""
        return getattr(self.options, "space", None) or self.best_space()

    def label(self, space: str) -> str:
        return self.spaces.label(space)

    def reference(self, kind: str, compute: Callable[[], object], settings: str) -> object:
        """A statistic of the reference set alone, cached under ``settings``."""
        return self.store.get(kind, (self.real,), compute, settings)

    def need_train(self, why: str) -> torch.Tensor:
        if self.train is None:
            raise MetricUnavailable(f"{why} needs the training images (evaluate: --train DIR).")
        return self.train
