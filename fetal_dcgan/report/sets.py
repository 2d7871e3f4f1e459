"""A manifest's sample sets (``data.manifest``) scored and gathered as a sweep's tables.

Each set is scored once by the metric suite, as a run's snapshot would be, and its scores
are cached under a hash of its images, its reference and training images and the suite's
settings (``$FETAL_DCGAN_CACHE/sets/``), so a second report of the same sets scores
nothing. The scores file is written last: a half-written entry is never read as whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from fetal_dcgan.callbacks.metrics import per_image_rows
from fetal_dcgan.data.manifest import Manifest, SampleSet, read_manifest, read_set
from fetal_dcgan.data.preprocess import read_image_set
from fetal_dcgan.data.sources import folder_images
from fetal_dcgan.imaging.digests import images_digest
from fetal_dcgan.metrics.suite import MetricSuite
from fetal_dcgan.report.collect import SetFiles, Sweep, natural_order
from fetal_dcgan.utils import atomic_save_npz, atomic_write_text

log = logging.getLogger(__name__)


class SetScores:
    """The cache entry of one scored set: ``scores.json`` (the metrics row and per-image
    values) and ``vectors.npz``."""

    def __init__(self, root: Path, key: str):
        self.folder = root / "sets" / key
        self.scores = self.folder / "scores.json"
        self.vectors = self.folder / "vectors.npz"

    def read(self) -> dict | None:
        return json.loads(self.scores.read_text()) if self.scores.is_file() else None


def _prepared(cache: dict, folder: Path | None, sample_set: SampleSet) -> torch.Tensor | None:
    """Real or training images prepared as the set says (size, fit, resize), read once per
    folder and preparation."""
    if folder is None:
        return None
    key = (folder, sample_set.size, sample_set.fit, sample_set.resize)
    if key not in cache:
        cache[key] = read_image_set(folder_images(folder), *key[1:3], resize=sample_set.resize)
    return cache[key]


def score_set(suite: MetricSuite, sample_set: SampleSet, prepared: dict, cache_root: Path) -> tuple[dict, SetFiles]:
    """The set's metrics row and per-image rows, from the cache or scored now, and its files."""
    files, fake = read_set(sample_set)
    real = _prepared(prepared, sample_set.real, sample_set)
    train = _prepared(prepared, sample_set.train, sample_set)
    content = [images_digest(fake), images_digest(real), images_digest(train), suite.fingerprint]
    entry = SetScores(cache_root, hashlib.sha256(repr(content).encode()).hexdigest()[:24])
    scores = entry.read()
    if scores is None:
        log.info("Scoring %s (%d images)", sample_set.where(), len(fake))
        result = suite.score(fake, real, train)
        atomic_save_npz(entry.vectors, **result.vectors)
        scores = {"row": result.record(), "per_image": per_image_rows(result, {}, files)}
        atomic_write_text(json.dumps(scores, default=lambda v: v.item()), entry.scores)  # last: the entry is whole
    return scores, SetFiles(files, entry.vectors)


def score_manifest(manifest: Manifest, suite: MetricSuite, cache_root: str | Path) -> Sweep:
    """Every set of the manifest scored, as a ``Sweep`` whose runs are the replicates."""
    prepared: dict = {}
    results, per_image, sets = [], [], {}
    for s in manifest.sets:
        scores, sets[(s.run, s.epoch)] = score_set(suite, s, prepared, Path(cache_root).expanduser())
        columns = {"run": s.run, "generator": s.generator, "replicate": s.replicate, **s.factors}
        columns.update(epoch=s.epoch, image_size=s.size)
        results.append({**columns, **scores["row"]})
        per_image += [{"run": s.run, "epoch": s.epoch, **row} for row in scores["per_image"]]
    table = pd.DataFrame(results).sort_values(["run", "epoch"], key=natural_order).reset_index(drop=True)
    runs = table.groupby("run", sort=False).first().reset_index()[["run", "generator", "replicate"]]
    runs = runs.assign(path=str(manifest.path), status="finished")
    return Sweep(manifest.path, runs, table, pd.DataFrame(per_image), None, tuple(manifest.factors), sets)


def score_manifest_file(path: str | Path, suite: Callable[[], MetricSuite], cache_root: str | Path) -> Sweep:
    """``score_manifest`` of the manifest at ``path``; its rows are checked before ``suite()``
    builds the metrics, so a bad row fails at once."""
    manifest = read_manifest(path)
    return score_manifest(manifest, suite(), cache_root)
