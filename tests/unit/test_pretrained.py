"""The feature networks from local weights: built with random weights saved here (nothing
is downloaded), checked against their SHA-256, and used by the metrics that work in any space."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_metrics import varied_images

from fetal_dcgan.metrics import MetricSuite
from fetal_dcgan.metrics.features import FeatureSettings, FeatureSpaces
from fetal_dcgan.metrics.pretrained import PRETRAINED, WeightsFile, file_sha256


def _random_weights(space: str, folder: Path) -> Path:
    """A weights file of ``space``'s architecture with seeded random weights, in the layout
    its official release uses (SwAV's DataParallel prefix and training heads included)."""
    torch.manual_seed(0)
    if space == "swav-resnet50":
        from torchvision.models import resnet50

        state = {f"module.{k}": v for k, v in resnet50(weights=None).state_dict().items() if not k.startswith("fc.")}
        state["module.projection_head.0.weight"] = torch.zeros(4, 2048)
    elif space.startswith("dinov2"):
        import timm

        size = "base" if space.endswith("b14") else "large"
        state = timm.create_model(f"vit_{size}_patch14_dinov2", pretrained=False, num_classes=0).state_dict()
    else:
        import open_clip

        state = open_clip.create_model("ViT-B-32", pretrained=None).state_dict()
    path = folder / f"{space}.pth"
    torch.save(state, path)
    return path


def _spaces(space: str, path: Path, sha256: str | None) -> FeatureSpaces:
    return FeatureSpaces(FeatureSettings(**{space.replace("-", "_"): WeightsFile(str(path), sha256)}))


def _check_space(space: str, path: Path) -> None:
    images = varied_images(3, size=48)
    spaces = _spaces(space, path, file_sha256(path))
    features = spaces.extract(space, images, "cpu")
    assert features.shape == (3, PRETRAINED[space].dim)
    assert torch.equal(features, _spaces(space, path, None).extract(space, images, "cpu"))  # deterministic
    assert file_sha256(path)[:12] in spaces.label(space)


@pytest.fixture(scope="module")
def swav_weights(tmp_path_factory) -> Path:
    return _random_weights("swav-resnet50", tmp_path_factory.mktemp("weights"))


@pytest.mark.slow  # ResNet-50 at 224 px on every set and training variant: about 11 s on 2 cores
def test_swav_loads_checks_its_hash_and_feeds_every_metric_that_works_in_any_space(swav_weights):
    path = swav_weights
    _check_space("swav-resnet50", path)
    in_swav = {"space": "swav-resnet50"}
    suite = MetricSuite(
        ["kid", "prdc", "fd", "mmd", "fd_infinity", "copying", "memorisation"],
        device="cpu",
        ci_resamples=0,
        features={"swav_resnet50": {"path": str(path), "sha256": file_sha256(path)}},
        kid={**in_swav, "subsets": 5},
        prdc={**in_swav, "k": 2},
        fd=in_swav,
        mmd=in_swav,
        fd_infinity={**in_swav, "points": 3},
        copying={**in_swav, "cells": 2, "min_cell_images": 2, "degrees": 0},
        memorisation={**in_swav, "degrees": 0},
    )
    fake, real = varied_images(8, seed=1), varied_images(8, seed=2)
    result = suite.score(fake, real, train=varied_images(4, seed=3), held_out=real)
    for name in suite.names:
        assert result.status[name].startswith("ok") and "swav-resnet50 (weights" in result.status[name], name
    for key in ("kid_mean", "precision", "relative_fd", "mmd", "fd_inf", "ct_z", "copy_ratio_features"):
        assert torch.isfinite(torch.tensor(result.scalars[key])), key


def test_a_wrong_hash_or_a_missing_file_is_an_unavailable_status_not_a_crash(tmp_path, swav_weights):
    _check_space("swav-resnet50", swav_weights)  # loads, its hash checked, 2,048 features, deterministic
    path = swav_weights
    expected = "ab" * 32
    suite = MetricSuite(
        ["prdc", "psnr"],
        device="cpu",
        features={"swav_resnet50": {"path": str(path), "sha256": expected}},
        prdc={"space": "swav-resnet50"},
    )
    result = suite.score(varied_images(6, seed=1), varied_images(6, seed=2))
    assert result.status["prdc"].startswith("unavailable") and f"not the expected {expected}" in result.status["prdc"]
    assert result.status["psnr"] == "ok"
    missing = _spaces("dinov2-vitb14", tmp_path / "nowhere.pth", None)
    with pytest.raises(Exception, match="dinov2-vitb14 weights not found"):
        missing.extractor("dinov2-vitb14")


@pytest.mark.slow
@pytest.mark.parametrize("space", ["dinov2-vitb14", "dinov2-vitl14", "clip-vitb32"])
def test_every_architecture_loads_from_random_weights(tmp_path, space):
    _check_space(space, _random_weights(space, tmp_path))


@pytest.mark.slow
def test_clip_loads_openais_torchscript_archive(tmp_path):
    """OpenAI's ViT-B-32.pt is a TorchScript archive of the whole model; its image tower loads."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    archive = tmp_path / "ViT-B-32.pt"
    torch.jit.trace(model, (torch.zeros(1, 3, 224, 224), torch.zeros(1, 77, dtype=torch.long)), check_trace=False).save(
        archive
    )
    _check_space("clip-vitb32", archive)
    images = varied_images(3, size=48)
    ours = _spaces("clip-vitb32", archive, None).extract("clip-vitb32", images, "cpu")
    saved = _spaces("clip-vitb32", _random_weights("clip-vitb32", tmp_path), None).extract("clip-vitb32", images, "cpu")
    torch.testing.assert_close(ours, saved)  # the same seeded weights, read from either layout
