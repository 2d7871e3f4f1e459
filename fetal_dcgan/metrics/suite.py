"""Run the configured metrics on a synthetic set against a reference set.

``MetricSuite.score`` returns one ``MetricsResult``: set-level scalars, per-synthetic-image
values, vectors (LBPv) and a status per metric ("ok", "unavailable: ...", "error: ...").
A metric that fails leaves NaN in its columns and never stops the others. Statistics of
the reference set (features, LBP histograms) are computed once per process and cached on
disk under a hash of the images and settings; statistics of synthetic sets never are.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fetal_dcgan.metrics.diversity import (DUPLICATE_PSNR_DB, MS_SSIM_BETAS, MS_SSIM_PAIRS, diversity,
                                           set_diversity)
from fetal_dcgan.metrics.features import InceptionFeatures, MetricUnavailable, RandomConvFeatures, extract_features
from fetal_dcgan.metrics.fid import FrechetReference, frechet_distance
from fetal_dcgan.metrics.kid import PolynomialKernels, kid_from_kernels
from fetal_dcgan.metrics.lbp import NAMED_ELEMENTS, l1_distance, lbp, lbp_histograms, lbp_vector
from fetal_dcgan.metrics.memorisation import memorisation, training_bank
from fetal_dcgan.metrics.mutual_info import mutual_information
from fetal_dcgan.metrics.prdc import NeighbourBalls, bootstrap_ci, bootstrap_values, shifted_percentile_interval
from fetal_dcgan.metrics.psnr import psnr
from fetal_dcgan.utils import atomic_save

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


@dataclass(frozen=True)
class Metric:
    """A registered metric: the scalar keys it fills and the function that computes them."""

    keys: tuple[str, ...]
    compute: Callable[["MetricSuite", torch.Tensor, torch.Tensor], dict]


def _fid(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    f, r = suite.fake_features(fake), suite.real_features(real)
    value = frechet_distance(f, r)
    low, high = bootstrap_fd(f, r, suite, value)
    return {"scalars": {"fid": value, "fid_ci_low": low, "fid_ci_high": high}}


def bootstrap_fd(fake: torch.Tensor, real: torch.Tensor, suite: "MetricSuite", estimate: float) -> tuple[float, float]:
    """Bootstrap interval of FD over resamples of the synthetic features (a quarter of
    ``ci_resamples``), against the reference factored once on the suite's device."""
    reference, fake = FrechetReference(real, suite.device), fake.to(suite.device)
    return bootstrap_ci(lambda i: reference(fake[torch.from_numpy(i).to(fake.device)]), len(fake),
                        suite.ci_resamples // 4, suite.seed, estimate=estimate)


def _kid(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    f, r = suite.fake_features(fake), suite.real_features(real)
    kernels = PolynomialKernels(f, r, suite.device)  # once: every subset and resample gathers from them
    mean, std = kid_from_kernels(kernels, np.arange(len(f)), suite.kid_subsets, suite.kid_subset_size, suite.seed)
    low, high = bootstrap_ci(  # 10 subsets per resample, as torch-fidelity would draw them on the resample
        lambda i: kid_from_kernels(kernels, i, 10, suite.kid_subset_size, suite.seed)[0],
        len(f), suite.ci_resamples // 10, suite.seed, estimate=mean)
    return {"scalars": {"kid_mean": mean, "kid_std": std, "kid_mean_ci_low": low, "kid_mean_ci_high": high}}


def _psnr(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    return psnr(fake, real, device=suite.device)


def _mi(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    return mutual_information(fake, real, suite.device)


def _lbp(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    real_hist = suite.real_lbp_histograms(real)
    out = lbp(fake, real_hist, device=suite.device)
    fake_hist, reference = out["vectors"]["lbp_per_image"], out["vectors"]["lbp_reference"]
    low, high = bootstrap_ci(lambda i: l1_distance(lbp_vector(fake_hist[i]), reference), len(fake_hist),
                             suite.ci_resamples, suite.seed, estimate=out["scalars"]["lbp_l1"])
    out["scalars"].update(lbp_l1_ci_low=low, lbp_l1_ci_high=high)
    return out


def _diversity(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    real_stats = suite._real_statistic(  # the same at every snapshot
        "diversity", real, lambda: set_diversity(real.to(suite.device), seed=suite.seed),
        f"ms-ssim-{MS_SSIM_PAIRS}-pairs-{MS_SSIM_BETAS}-normalised-seed-{suite.seed}-dup-{DUPLICATE_PSNR_DB}dB")
    return diversity(set_diversity(fake.to(suite.device), seed=suite.seed), real_stats)


def _memorisation(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    if suite.context.get("train") is None:
        raise MetricUnavailable("the memorisation audit needs the training images (evaluate: --train DIR).")
    extractor, space = suite.feature_space()
    device = suite.device

    def features(images: torch.Tensor) -> torch.Tensor:
        return extract_features(extractor, images, suite.feature_batch_size, device).to(device)

    train, held_out = suite.context["train"], suite.context.get("held_out")
    key = ("memorisation", images_digest(train), None if held_out is None else images_digest(held_out), space)
    if key not in suite._memo:  # the training side is the same for every snapshot of a run
        suite._memo[key] = training_bank(train.to(device), None if held_out is None else held_out.to(device), features)
    bank = suite._memo[key]
    out = memorisation(fake.to(device), bank, features)
    out["status"] = f"ok: calibrated on {bank.calibration}; features: {space}"
    return out


def _space_features(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> tuple:
    """Inception features when the weights are there, else the labelled random network's."""
    _, space = suite.feature_space()
    owner = suite.random_space() if space == "random-conv" else suite
    return owner.fake_features(fake), owner.real_features(real), space


def _prdc(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    f, r, space = _space_features(suite, fake, real)
    balls = NeighbourBalls(f.to(suite.device), r.to(suite.device))
    scalars = balls.scores()
    keys = ("precision", "recall")

    def resampled(i: np.ndarray) -> list[float]:  # both from one pass over each resample
        scores = balls.scores(torch.from_numpy(i).to(suite.device))
        return [scores[key] for key in keys]

    values = bootstrap_values(resampled, len(f), suite.ci_resamples // 4, suite.seed).reshape(-1, len(keys))
    for column, key in enumerate(keys):
        low, high = shifted_percentile_interval(values[:, column], scalars[key])
        scalars.update({f"{key}_ci_low": low, f"{key}_ci_high": high})
    return {"scalars": scalars, "status": f"ok: {space} features, k=5"}


def _fd(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    random_suite = suite.random_space()
    f, r = random_suite.fake_features(fake), random_suite.real_features(real)
    scalars = {"fd_random": frechet_distance(f, r)}
    scalars["fd_random_ci_low"], scalars["fd_random_ci_high"] = bootstrap_fd(f, r, suite, scalars["fd_random"])
    f_best, r_best, space = _space_features(suite, fake, real)
    scalars["relative_fd"] = relative_fd(f_best, r_best, suite.seed)
    return {"scalars": scalars, "status": f"ok: relative_fd in {space} features"}


def relative_fd(fake: torch.Tensor, real: torch.Tensor, seed: int = 0) -> float:
    """FD(S, R_a) / FD(R_b, R_a) for disjoint random halves R_a, R_b of the real set, with S
    subsampled to |R_b|: both distances then have the same sample sizes, so a synthetic set
    as good as real data scores about 1 (FD's small-sample bias cancels)."""
    rng = np.random.default_rng(seed)
    order = torch.from_numpy(rng.permutation(len(real)))
    half_a, half_b = real[order[: len(real) // 2]], real[order[len(real) // 2:]]
    m = min(len(fake), len(half_b))
    subset = torch.from_numpy(rng.choice(len(fake), m, replace=False))
    baseline = frechet_distance(half_b[:m], half_a)
    return frechet_distance(fake[subset], half_a) / baseline if baseline > 0 else float("nan")


def _frd(suite: "MetricSuite", fake: torch.Tensor, real: torch.Tensor) -> dict:
    try:
        from frd_score import frd  # noqa: F401
    except ImportError:
        raise MetricUnavailable("FRD needs the optional radiomics packages: pip install -e '.[frd]' "
                                "(frd-score and pyradiomics-bhklab).") from None
    import tempfile
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        for name, images in (("fake", fake), ("real", real)):
            Path(tmp, name).mkdir()
            for i, image in enumerate(images[:, 0].numpy()):
                Image.fromarray(image).save(Path(tmp, name, f"{i:05d}.png"))
        value = frd.compute_frd([str(Path(tmp, "fake")), str(Path(tmp, "real"))])
    return {"scalars": {"frd": float(value)}}


_LBP_KEYS = ("lbp_l1", "lbp_chi2", *(f"lbp_v{c}{s}" for c in NAMED_ELEMENTS for s in ("", "_reference")))

#: Metrics by name, in the order they are run and reported.
METRICS: dict[str, Metric] = {
    "fid": Metric(("fid", "fid_ci_low", "fid_ci_high"), _fid),
    "kid": Metric(("kid_mean", "kid_std", "kid_mean_ci_low", "kid_mean_ci_high"), _kid),
    "psnr": Metric(("psnr_mean", "psnr_best_mean", "psnr_identical_pairs"), _psnr),
    "mi": Metric(("mi_mean", "mi_best_mean", "nmi_mean", "nmi_best_mean"), _mi),
    "lbp": Metric(_LBP_KEYS + ("lbp_l1_ci_low", "lbp_l1_ci_high"), _lbp),
    "diversity": Metric(("ms_ssim_fake", "ms_ssim_real", "duplicate_rate", "duplicate_rate_real", "collapse"),
                        _diversity),
    "memorisation": Metric(("copy_ratio", "copy_threshold_ncc", "nearest_train_ncc_mean", "calibration_ncc_mean",
                            "copy_ratio_features"), _memorisation),
    "prdc": Metric(("precision", "recall", "density", "coverage", "precision_ci_low", "precision_ci_high",
                    "recall_ci_low", "recall_ci_high"), _prdc),
    "fd": Metric(("fd_random", "fd_random_ci_low", "fd_random_ci_high", "relative_fd"), _fd),
    "frd": Metric(("frd",), _frd),
}


def images_digest(images: torch.Tensor) -> str:
    """A hash of a uint8 image set's shape and pixels."""
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:24]


class MetricSuite:
    """The configured metrics, with their settings and the reference-statistics cache."""

    def __init__(self, names: list[str] | tuple[str, ...] = tuple(METRICS), fid: dict | None = None,
                 kid: dict | None = None, device: str = "auto", seed: int = 2020,
                 cache_dir: str | Path | None = None, feature_extractor: nn.Module | None = None,
                 ci_resamples: int = 200):
        unknown = [n for n in names if n not in METRICS]
        if unknown:
            raise ValueError(f"Unknown metrics {unknown}: choose from {', '.join(METRICS)}.")
        self.names = [n for n in METRICS if n in names]
        fid, kid = dict(fid or {}), dict(kid or {})
        self.fid_weights_path = fid.get("weights_path")
        self.feature_batch_size = int(fid.get("batch_size", 64))
        self.kid_subsets = int(kid.get("subsets", 100))
        size = kid.get("subset_size")
        self.kid_subset_size = None if size is None else int(size)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.seed = seed
        self.cache_dir = Path(cache_dir).expanduser() / "metrics" if cache_dir else None
        self._extractor = feature_extractor
        self._memo: dict = {}  # reference-side statistics, kept for the life of the suite
        self._fake_features: torch.Tensor | None = None
        self._warned: set[str] = set()
        self.ci_resamples = ci_resamples
        self.context: dict = {}
        self._random_space: MetricSuite | None = None

    # -- shared statistics ------------------------------------------------------------
    def extractor(self) -> nn.Module:
        if self._extractor is None:
            self._extractor = InceptionFeatures(self.fid_weights_path)  # raises MetricUnavailable
        return self._extractor

    def _real_statistic(self, kind: str, real: torch.Tensor, compute: Callable[[], object],
                        cache_key: str | None) -> object:
        key = f"{kind}-{images_digest(real)}-{hashlib.sha256(str(cache_key).encode()).hexdigest()[:12]}"
        if key in self._memo:
            return self._memo[key]
        path = self.cache_dir / f"{key}.pt" if self.cache_dir and cache_key else None
        if path is not None and path.is_file():
            value = torch.load(path, weights_only=False)
        else:
            value = compute()
            if path is not None:
                atomic_save(value, path)
        self._memo[key] = value
        return value

    def real_features(self, real: torch.Tensor) -> torch.Tensor:
        extractor = self.extractor()
        return self._real_statistic("features", real, lambda: self._features(real),
                                    getattr(extractor, "cache_key", None))

    def fake_features(self, fake: torch.Tensor) -> torch.Tensor:
        """Features of the synthetic set being scored: one pass shared by FID and KID."""
        if self._fake_features is None:
            self._fake_features = self._features(fake)
        return self._fake_features

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return extract_features(self.extractor(), images, self.feature_batch_size, self.device)

    def feature_space(self) -> tuple[nn.Module, str]:
        """The feature network: Inception (or the given one) when available, else the random one."""
        try:
            extractor = self.extractor()
            return extractor, "inception" if isinstance(extractor, InceptionFeatures) else type(extractor).__name__
        except MetricUnavailable:
            return self.random_space().extractor(), "random-conv"

    def random_space(self) -> "MetricSuite":
        """A companion suite whose feature space is the fixed random network."""
        if self._random_space is None:
            self._random_space = MetricSuite([], device=self.device, seed=self.seed,
                                             feature_extractor=RandomConvFeatures(),
                                             cache_dir=self.cache_dir.parent if self.cache_dir else None)
        return self._random_space

    def real_lbp_histograms(self, real: torch.Tensor) -> np.ndarray:
        return self._real_statistic("lbp", real, lambda: lbp_histograms(real, device=self.device),
                                    "lbp-P8-R1-default")

    # -- scoring ------------------------------------------------------------------------
    def score(self, fake: torch.Tensor, real: torch.Tensor, train: torch.Tensor | None = None,
              held_out: torch.Tensor | None = None) -> MetricsResult:
        """Score uint8 synthetic images (N, 1, H, W) against uint8 reference images; ``train``
        (the images the generator learned from) and ``held_out`` (real images it never saw)
        serve the memorisation audit."""
        check_image_sets(fake, real)
        result = MetricsResult(scalars={"n_fake": len(fake), "n_real": len(real)})
        self.context = {"train": train, "held_out": held_out}
        try:
            for name in self.names:
                metric = METRICS[name]
                start = time.perf_counter()
                try:
                    out = metric.compute(self, fake, real)
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
                result.scalars.update({k: scalars.get(k, math.nan) for k in metric.keys})
                result.per_image.update(out.get("per_image", {}))
                result.vectors.update(out.get("vectors", {}))
        finally:
            self._fake_features = None  # synthetic statistics are never kept
            if self._random_space is not None:
                self._random_space._fake_features = None
            self.context = {}
        return result


def check_image_sets(fake: torch.Tensor, real: torch.Tensor) -> None:
    """Both sets must be non-empty uint8 (N, 1, H, W) of the same H x W."""
    for name, images in (("synthetic", fake), ("reference", real)):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"The {name} set must be uint8 (N, 1, H, W), got {images.dtype} {tuple(images.shape)}.")
        if len(images) == 0:
            raise ValueError(f"The {name} set is empty.")
    if fake.shape[-2:] != real.shape[-2:]:
        raise ValueError(f"Image sizes differ: synthetic {tuple(fake.shape[-2:])} vs reference "
                         f"{tuple(real.shape[-2:])}; resize one set to the other's size.")
