"""Beyond the paper's metrics: diversity, memorisation, precision/recall, relative FD, CIs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from fetal_dcgan.data.augment import flip_rotate, to_unit
from fetal_dcgan.data.preprocess import load_images
from fetal_dcgan.data.sources import phantom_images
from fetal_dcgan.evaluate import main as evaluate_main
from fetal_dcgan.imaging.ms_ssim import ms_ssim_of_pairs
from fetal_dcgan.metrics import MetricSuite
from fetal_dcgan.metrics.diversity import ms_ssim_betas
from fetal_dcgan.metrics.prdc import prdc

AUDIT = ["diversity", "memorisation", "prdc", "fd", "lbp"]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> torch.Tensor:
    """300 phantom images at 64 px: a stand-in for a real data set."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    return load_images(phantom_images(cache, n_images=300, height=135, width=200), 64, "pad", cache)


def split(images: torch.Tensor):
    return images[:120], images[120:220], images[220:]  # train, reference, held out


def test_copies_of_training_images_are_flagged_as_memorised(phantom):
    train, reference, held_out = split(phantom)
    gen = torch.Generator().manual_seed(0)
    angles = (torch.rand(len(train), generator=gen) * 2 - 1) * math.radians(8)
    copies = flip_rotate(to_unit(train), angles, torch.rand(len(train), generator=gen) < 0.5)
    copies = copies.mul(255).round().to(torch.uint8)
    result = MetricSuite(AUDIT).score(copies, reference, train, held_out)
    assert result.scalars["copy_ratio"] > 0.95 and result.scalars["copy_ratio_features"] > 0.9
    assert result.status["memorisation"] == "ok: calibrated on held-out real images; features: random-conv"
    assert np.all(result.per_image["nearest_train_index"][:10] == np.arange(10))  # found its own source


def test_one_image_repeated_is_flagged_as_collapsed(phantom):
    train, reference, held_out = split(phantom)
    repeated = reference[:1].repeat(800, 1, 1, 1)
    s = MetricSuite(["diversity"]).score(repeated, reference, train).scalars
    assert s["collapse"] == 1 and s["duplicate_rate"] == 1 and s["ms_ssim_fake"] == pytest.approx(1.0)
    assert s["ms_ssim_real"] < 0.9 and s["duplicate_rate_real"] == 0


def test_held_out_real_images_are_diverse_new_and_cover_the_reference(phantom):
    train, reference, held_out = split(phantom)
    result = MetricSuite(AUDIT).score(held_out, reference, train)
    s = result.scalars
    assert s["collapse"] == 0 and s["duplicate_rate"] == 0
    assert s["copy_ratio"] < 0.2  # calibrated on training images, leave-one-out: about 5% by construction
    assert s["copy_ratio_features"] < 0.2
    assert s["precision"] > 0.7 and s["recall"] > 0.7 and 0.7 < s["density"] < 1.4 and s["coverage"] > 0.7
    assert 0.6 < s["relative_fd"] < 1.6
    for key in ("lbp_l1", "fd_random", "precision", "recall"):
        assert s[f"{key}_ci_low"] <= s[key] <= s[f"{key}_ci_high"], key


def test_frd_without_its_extra_says_how_to_install_it(phantom, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "frd_score", None)  # as if the optional extra were not installed
    result = MetricSuite(["frd", "lbp"]).score(phantom[:20], phantom[20:40])
    assert result.status["frd"].startswith("unavailable") and "pip install -e '.[frd]'" in result.status["frd"]
    assert math.isnan(result.scalars["frd"]) and result.status["lbp"] == "ok"


def test_two_halves_of_the_real_data_give_relative_fd_near_one(phantom):
    s = MetricSuite(["fd"]).score(phantom[:150], phantom[150:]).scalars
    assert 0.7 < s["relative_fd"] < 1.4
    noise = torch.randint(0, 256, phantom[:150].shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert MetricSuite(["fd"]).score(noise, phantom[150:]).scalars["relative_fd"] > 10


def test_memorisation_needs_the_training_images(phantom):
    result = MetricSuite(["memorisation"]).score(phantom[:10], phantom[10:20])
    assert result.status["memorisation"].startswith("unavailable") and "--train" in result.status["memorisation"]
    assert math.isnan(result.scalars["copy_ratio"])


def _noisy_pairs(size: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smooth random images and pairs of them, some sharing an image."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size, size, generator=gen), 3, 1, 1)
    images = ((base + 0.3 * torch.rand(base.shape, generator=gen)).clamp(0, 1) * 255).round().to(torch.uint8)
    i = torch.randint(0, n, (2 * n,), generator=gen)
    return images, i, (i + torch.randint(1, n, (2 * n,), generator=gen)) % n


@pytest.mark.parametrize("size", [24, 64, 128, 256])
def test_ms_ssim_matches_torchmetrics(size):
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    images, i, j = _noisy_pairs(size, n=12 if size < 256 else 3)  # torchmetrics in float64 is slow at 256 px
    betas = ms_ssim_betas(size)
    theirs = multiscale_structural_similarity_index_measure(
        images[i].double() / 255,
        images[j].double() / 255,
        data_range=1.0,
        betas=betas,
        normalize="relu",
        reduction="none",
    )  # in float64: torchmetrics' own float32 rounding is 5e-5 at 24 px, ours 3e-6
    torch.testing.assert_close(ms_ssim_of_pairs(images, i, j, betas).double(), theirs, rtol=0, atol=1e-5)


def test_ms_ssim_matches_pytorch_msssim():
    from pytorch_msssim import ms_ssim

    gen = torch.Generator().manual_seed(0)
    base = torch.rand(6, 1, 192, 192, generator=gen)
    a = (base * 255).round().to(torch.uint8)
    b = ((base + 0.2 * torch.rand(6, 1, 192, 192, generator=gen)).clamp(0, 1) * 255).round().to(torch.uint8)
    ours = ms_ssim_of_pairs(torch.cat([a, b]), torch.arange(6), torch.arange(6, 12), ms_ssim_betas(192))
    theirs = ms_ssim(
        a.float() / 255,
        b.float() / 255,
        data_range=1.0,
        size_average=False,
        weights=[w / 0.6305 for w in (0.0448, 0.2856, 0.3001)],
    )  # renormalised to sum 1
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4)  # blur and pooling differ in float32 detail
    assert sum(ms_ssim_betas(64)) == pytest.approx(1) and len(ms_ssim_betas(64)) == 3
    assert ms_ssim_betas(32) == pytest.approx((0.0448 / 0.3304, 0.2856 / 0.3304))
    # the same three scales at every size the study trains, so the collapse flag means the same at each
    assert ms_ssim_betas(64) == ms_ssim_betas(128) == ms_ssim_betas(256)


def test_prdc_matches_the_authors_package():
    from prdc import compute_prdc

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 16)), rng.normal(0.3, 1.1, size=(250, 16))
    ours = prdc(torch.from_numpy(fake), torch.from_numpy(real), k=5)
    theirs = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-9), key


def test_evaluate_with_train_reports_the_audit(phantom, tmp_path):
    train, reference, held_out = split(phantom)
    for name, images in (("train", train), ("real", reference), ("fake", held_out[:40])):
        (tmp_path / name).mkdir()
        for i, image in enumerate(images[:, 0].numpy()):
            Image.fromarray(image).save(tmp_path / name / f"{i:04d}.png")
    out = tmp_path / "scores.json"
    assert (
        evaluate_main(
            [
                "--real",
                str(tmp_path / "real"),
                "--fake",
                str(tmp_path / "fake"),
                "--train",
                str(tmp_path / "train"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    scores = json.loads(out.read_text())
    for key in (
        "ms_ssim_fake",
        "ms_ssim_real",
        "duplicate_rate",
        "collapse",
        "copy_ratio",
        "precision",
        "recall",
        "density",
        "coverage",
        "relative_fd",
        "lbp_l1_ci",
        "fd_random_ci",
        "precision_ci",
        "recall_ci",
    ):
        assert key in scores, key  # training's default metrics; FRD is asked for by name (see below)
    assert len(scores["precision_ci"]) == 2 and "frd" not in scores["status"]
    sheet = tmp_path / "scores_closest_to_training.png"
    with Image.open(sheet) as img:
        assert img.width > img.height > 0


@pytest.mark.slow  # radiomics feature extraction (~30 s on 2 cores)
def test_frd_is_frd_score_on_the_same_images(phantom, tmp_path):
    frd_module = pytest.importorskip("frd_score.frd", reason="optional extra: pip install -e '.[frd]'")
    fake, real = phantom[:24], phantom[200:224]
    ours = MetricSuite(["frd"]).score(fake, real).scalars["frd"]
    for name, images in (("fake", fake), ("real", real)):
        (tmp_path / name).mkdir()
        for i, image in enumerate(images[:, 0].numpy()):
            Image.fromarray(image).save(tmp_path / name / f"{i:05d}.png")
    theirs = frd_module.compute_frd([str(tmp_path / "fake"), str(tmp_path / "real")])
    assert ours == pytest.approx(float(theirs), rel=1e-9)
    noise = torch.randint(0, 256, fake.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert MetricSuite(["frd"]).score(noise, real).scalars["frd"] > ours


def test_fid_and_kid_intervals_cover_their_estimates(phantom):
    from test_metrics import TinyFeatures

    s = (
        MetricSuite(["fid", "kid"], feature_extractor=TinyFeatures(), kid={"subsets": 20}, ci_resamples=80)
        .score(phantom[:100], phantom[150:250])
        .scalars
    )
    assert s["fid_ci_low"] <= s["fid"] <= s["fid_ci_high"] and s["fid_ci_low"] < s["fid_ci_high"]
    assert s["kid_mean_ci_low"] <= s["kid_mean"] <= s["kid_mean_ci_high"]


def test_prdc_of_a_resample_equals_prdc_recomputed_on_it():
    """The bootstrap gathers from distances computed once; recomputing them on the
    resampled features gives the same scores."""
    from fetal_dcgan.metrics.prdc import NeighbourBalls

    rng = np.random.default_rng(3)
    real, fake = torch.from_numpy(rng.normal(size=(60, 8))), torch.from_numpy(rng.normal(0.3, 1.2, size=(50, 8)))
    index = torch.from_numpy(rng.integers(0, 50, 50))
    assert NeighbourBalls(fake, real, 5).scores(index) == pytest.approx(prdc(fake[index], real, 5), abs=1e-12)


def test_leave_one_fetus_out_calibration_ignores_repeat_scans(phantom):
    """Every fetus scanned twice (a near-identical repeat): calibrating on the training images
    leave-one-out finds each image's own repeat and sets the copy threshold so high that
    near-copies pass; leaving the whole fetus out keeps the threshold at distinct heads."""
    from fetal_dcgan.metrics.memorisation import memorisation, training_bank

    generator = torch.Generator().manual_seed(0)

    def rescan(images: torch.Tensor) -> torch.Tensor:
        noise = torch.randint(-3, 4, images.shape, generator=generator)
        return (images.int() + noise).clamp(0, 255).to(torch.uint8)

    fetuses = phantom[:80]
    train, groups = torch.cat([fetuses, rescan(fetuses)]), torch.arange(80).repeat(2)
    near_copies = rescan(fetuses[:40])
    options = {"degrees": 10.0, "quantile": 0.95, "min_held_out": 20}
    per_image = memorisation(near_copies, training_bank(train, **options))
    per_fetus = memorisation(near_copies, training_bank(train, groups=groups, **options))
    assert per_fetus["scalars"]["copy_ratio"] > 0.9 > 0.6 > per_image["scalars"]["copy_ratio"]
    held_out = memorisation(phantom[200:260], training_bank(train, groups=groups, **options))
    assert held_out["scalars"]["copy_ratio"] < 0.2  # new heads are still not copies
