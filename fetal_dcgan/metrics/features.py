"""Feature extractors by name: the standard FID Inception-v3, a fixed random network, and
the field's newer networks from local weights (``metrics.pretrained``).

The standard network is torch-fidelity's TF-compatible Inception-v3 (pool3, 2048-d),
which resizes every image to 299x299 with its TF1-style bilinear interpolation (no
antialiasing), exactly as torch-fidelity does. Its weights cannot be downloaded here, so
they come from a local file or the torch hub cache; when neither has them the metric is
reported as unavailable instead of failing. Any ``nn.Module`` mapping uint8 (N, 3, H, W)
to (N, d) can stand in for Inception (tests use a small fixed network); give it a
``cache_key`` attribute to let reference features be cached. ``EXTRACTORS`` names the
networks; metrics that need "the best features here" take the first available in
``PREFERENCE`` and say in their status which one they used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from fetal_dcgan.metrics.errors import MetricUnavailable
from fetal_dcgan.metrics.pretrained import PRETRAINED, PretrainedFeatures, WeightsFile
from fetal_dcgan.rules import int_at_least, one_of, or_null, setting

__all__ = ["MetricUnavailable"]  # imported from here by the metrics

FID_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{FID_WEIGHTS_FILE}"


def find_inception_weights(weights_path: str | Path | None = None) -> Path:
    """The FID Inception weights file: ``weights_path``, else the torch hub cache."""
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE
    how = (
        f"download {FID_WEIGHTS_URL} on a machine with internet and set metrics.features.weights_path=/path/to/"
        f"{FID_WEIGHTS_FILE} (evaluate: --fid-weights), or copy it to {hub_file}"
    )
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise MetricUnavailable(f"FID Inception weights not found at {path}: {how}")
        return path
    if hub_file.is_file():
        return hub_file
    raise MetricUnavailable(f"FID Inception weights are not available offline: {how}")


class InceptionFeatures(nn.Module):
    """torch-fidelity's FID Inception-v3: uint8 (N, 3, H, W) -> pool3 features (N, 2048)."""

    def __init__(self, weights_path: str | Path | None = None):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = find_inception_weights(weights_path)
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
        )
        self.cache_key = f"inception-v3-compat-2048:{path.name}:{path.stat().st_size}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)[0]


@torch.no_grad()
def extract_features(
    extractor: nn.Module, images: torch.Tensor, batch_size: int = 64, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Features (N, d) as float64 of uint8 gray images (N, 1, H, W), repeated to 3 channels."""
    extractor = extractor.to(device).eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        if batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)
        chunks.append(extractor(batch).double().cpu())
    return torch.cat(chunks)


class RandomConvFeatures(nn.Module):
    """A fixed, randomly initialised convolutional network (seeded, no download): a feature
    space for FD and precision/recall when the Inception weights are missing. Distances in
    it are labelled ``fd_random``, never FID, and are comparable only with each other."""

    def __init__(self, seed: int = 0, width: int = 32, dim: int = 128):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        layers, channels = [], 3
        for out in (width, 2 * width, 4 * width, dim):
            conv = nn.Conv2d(channels, out, 4, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2 / (channels * 16)) ** 0.5)
                conv.bias.zero_()
            layers += [conv, nn.LeakyReLU(0.2)]
            channels = out
        self.net = nn.Sequential(*layers)
        self.cache_key = f"random-conv-{seed}-{width}-{dim}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1
        if x.shape[-1] != 64:
            x = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        return self.net(x).mean((2, 3))


@dataclass
class FeatureSettings:
    """``metrics.features``: the feature networks (inception, FID's; random-conv, fixed and seeded)."""

    weights_path: Optional[str] = setting(
        None, help="weights-inception-2015-12-05-6726825d.pth; null: the torch hub cache"
    )
    batch_size: int = setting(64, int_at_least(1), "64", "images per feature-extraction batch")
    dinov2_vitb14: WeightsFile = setting(factory=WeightsFile)
    dinov2_vitl14: WeightsFile = setting(factory=WeightsFile)
    swav_resnet50: WeightsFile = setting(factory=WeightsFile)
    clip_vitb32: WeightsFile = setting(factory=WeightsFile)


#: Feature networks by name: ``options`` is ``metrics.features`` (``FeatureSettings``).
EXTRACTORS = {
    "inception": lambda options: InceptionFeatures(options.weights_path),
    "random-conv": lambda options: RandomConvFeatures(),
    **{
        space: lambda options, space=space: PretrainedFeatures(space, getattr(options, space.replace("-", "_")))
        for space in PRETRAINED
    },
}
#: The feature space of metrics that work in any: the first of these that is available
#: (Stein et al.'s recommendation first; the fixed random network always is).
PREFERENCE = ("dinov2-vitl14", "dinov2-vitb14", "inception", "swav-resnet50", "clip-vitb32", "random-conv")


@dataclass
class SpaceOptions:
    """The option of a metric that works in any feature space."""

    space: Optional[str] = setting(
        None,
        or_null(one_of(*EXTRACTORS)),
        "random-conv",
        "its feature space; null: the best available (inception first)",
    )


class FeatureSpaces:
    """The named extractors, built on first use; ``inception`` may be replaced by any module
    (``stand_in``), which is then named by its class in statuses."""

    def __init__(self, options: FeatureSettings, stand_in: nn.Module | None = None):
        self.options = options
        self.batch_size = options.batch_size
        self._built: dict[str, nn.Module | MetricUnavailable] = {} if stand_in is None else {"inception": stand_in}

    def extractor(self, space: str) -> nn.Module:
        """The network of ``space``; raises MetricUnavailable (kept, so asked once) when it cannot be built."""
        if space not in EXTRACTORS:
            raise ValueError(f"Unknown feature space {space!r}: choose from {', '.join(EXTRACTORS)}.")
        if space not in self._built:
            try:
                self._built[space] = EXTRACTORS[space](self.options)
            except MetricUnavailable as exc:
                self._built[space] = exc
        built = self._built[space]
        if isinstance(built, MetricUnavailable):
            raise built
        return built

    def label(self, space: str) -> str:
        """How a status names the space: its name, or the stand-in's class."""
        built = self._built.get(space)
        stands_in = space == "inception" and isinstance(built, nn.Module) and not isinstance(built, InceptionFeatures)
        return type(built).__name__ if stands_in else getattr(built, "label", space)

    def best(self) -> str:
        """The first space of ``PREFERENCE`` whose network can be built here."""
        for space in PREFERENCE:
            try:
                self.extractor(space)
                return space
            except MetricUnavailable:
                continue
        raise MetricUnavailable("no feature network is available")

    def extract(self, space: str, images: torch.Tensor, device: str | torch.device) -> torch.Tensor:
        return extract_features(self.extractor(space), images, self.batch_size, device)
