"""Every metric against an independent implementation, and the edge cases of real studies."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.feature import local_binary_pattern
from skimage.metrics import normalized_mutual_information, peak_signal_noise_ratio
from sklearn.metrics import mutual_info_score
from torch import nn
from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.kid import poly_mmd

from fetal_dcgan.imaging.psnr import pairwise_psnr
from fetal_dcgan.metrics import METRICS, MetricSuite
from fetal_dcgan.metrics.features import FID_WEIGHTS_FILE, extract_features
from fetal_dcgan.metrics.fid import frechet_distance
from fetal_dcgan.metrics.kid import kernel_inception_distance
from fetal_dcgan.metrics.lbp import chi2_distance, lbp, lbp_codes, lbp_histograms
from fetal_dcgan.metrics.mutual_info import pairwise_mutual_information
from fetal_dcgan.metrics.psnr import psnr


def varied_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Noise, smooth blobs, low-contrast, constant, gradients and sparse images."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            img = rng.integers(0, 256, (size, size))
        elif kind == 1:
            img = ndimage.gaussian_filter(rng.random((size, size)), 2) * 400
        elif kind == 2:
            img = rng.integers(100, 104, (size, size))
        elif kind == 3:
            img = np.full((size, size), rng.integers(0, 256))
        elif kind == 4:
            img = np.add.outer(np.arange(size), rng.integers(1, 5) * np.arange(size))
        else:
            img = (rng.random((size, size)) > 0.9) * 255
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out)).unsqueeze(1)


class TinyFeatures(nn.Module):
    """A fixed random network standing in for Inception offline: uint8 (N, 3, H, W) -> (N, 24)."""

    cache_key = "tiny-features-v1"

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 24, 5, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen) * 0.1)
            self.conv.bias.zero_()
        self.calls = 0

    def forward(self, x):
        self.calls += len(x)
        return torch.tanh(self.conv(x.float() / 255)).mean((2, 3)) + torch.tanh(self.conv(x.float() / 255)).std((2, 3))


FAKE, REAL = varied_images(13, seed=1), varied_images(9, seed=2)
PAPER = ["fid", "kid", "psnr", "mi", "lbp"]  # the study's metrics (test_audit.py covers the others)


def test_psnr_matches_scikit_image_for_every_pair():
    ours = pairwise_psnr(FAKE, REAL).numpy()
    for i in range(len(FAKE)):
        for j in range(len(REAL)):
            with np.errstate(divide="ignore"):  # scikit-image divides by a zero MSE for equal images
                ref = peak_signal_noise_ratio(REAL[j, 0].numpy(), FAKE[i, 0].numpy(), data_range=255)
            assert ours[i, j] == pytest.approx(ref, rel=1e-9)


def test_identical_images_give_infinite_psnr_excluded_from_means():
    fake = torch.cat([REAL[:2], FAKE[:3]])
    out = psnr(fake, REAL)
    assert out["scalars"]["psnr_identical_pairs"] == 2
    assert np.isinf(out["per_image"]["psnr_best"][:2]).all()
    finite = pairwise_psnr(fake, REAL).numpy()
    assert out["scalars"]["psnr_mean"] == pytest.approx(finite[np.isfinite(finite)].mean(), rel=1e-12)
    assert out["scalars"]["psnr_best_mean"] == pytest.approx(out["per_image"]["psnr_best"][2:].mean(), rel=1e-12)


def test_mutual_information_matches_scikit_learn_and_nmi_matches_scikit_image():
    mi, nmi = pairwise_mutual_information(FAKE, REAL)
    for i in range(len(FAKE)):
        for j in range(len(REAL)):
            s, r = FAKE[i, 0].numpy(), REAL[j, 0].numpy()
            ref_mi = mutual_info_score(s.ravel(), r.ravel()) / math.log(2)
            assert mi[i, j] == pytest.approx(ref_mi, rel=1e-6, abs=1e-9)
            if s.min() == s.max() and r.min() == r.max():
                assert np.isnan(nmi[i, j])  # 0 / 0, as scikit-image
            else:
                assert nmi[i, j] == pytest.approx(normalized_mutual_information(s, r, bins=256), rel=1e-6)


def test_mi_of_an_image_with_itself_is_its_entropy():
    mi, nmi = pairwise_mutual_information(REAL[:1], REAL[:1])
    counts = np.bincount(REAL[0].numpy().ravel(), minlength=256)
    p = counts[counts > 0] / counts.sum()
    assert mi[0, 0] == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-9)
    assert nmi[0, 0] == pytest.approx(2.0)


@pytest.mark.parametrize("shape", [(32, 32), (7, 5), (1, 9), (64, 48)])
def test_lbp_codes_match_scikit_image_exactly(shape):
    images = varied_images(12, size=max(shape), seed=3)[:, :, : shape[0], : shape[1]]
    codes = lbp_codes(images).numpy()
    for i, image in enumerate(images[:, 0].numpy()):
        np.testing.assert_array_equal(codes[i], local_binary_pattern(image, P=8, R=1, method="default"))


def test_lbp_vectors_histograms_and_distances():
    real_hist = lbp_histograms(REAL, batch_size=4)
    for i, image in enumerate(REAL[:, 0].numpy()):
        ref = np.bincount(local_binary_pattern(image, 8, 1).astype(int).ravel(), minlength=256)
        np.testing.assert_array_equal(real_hist[i], ref)
    out = lbp(FAKE, real_hist)
    reference, synthetic = out["vectors"]["lbp_reference"], out["vectors"]["lbp_synthetic"]
    assert reference.shape == (256,) and reference.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(reference, real_hist.sum(0) / real_hist.sum())
    assert out["scalars"]["lbp_l1"] == pytest.approx(np.abs(synthetic - reference).sum())
    mask = (synthetic + reference) > 0
    chi2 = (((synthetic - reference) ** 2)[mask] / (synthetic + reference)[mask]).sum()
    assert out["scalars"]["lbp_chi2"] == pytest.approx(chi2)
    for code in (8, 20, 143, 240):
        assert out["scalars"][f"lbp_v{code}"] == synthetic[code]
        assert out["scalars"][f"lbp_v{code}_reference"] == reference[code]
    assert out["per_image"]["lbp_l1"].shape == (len(FAKE),)
    assert out["vectors"]["lbp_per_image"].sum(1).tolist() == [32 * 32] * len(FAKE)
    assert chi2_distance(reference, reference) == 0 and lbp(REAL, real_hist)["scalars"]["lbp_l1"] == 0


def _features(n: int, seed: int) -> torch.Tensor:
    return extract_features(TinyFeatures(), varied_images(n, seed=seed), batch_size=7)


def test_frechet_distance_matches_torchmetrics():
    fake, real = _features(40, 4), _features(30, 5)
    ours = frechet_distance(fake, real)
    theirs = _compute_fid(fake.mean(0), torch.cov(fake.T), real.mean(0), torch.cov(real.T))
    assert ours == pytest.approx(float(theirs), rel=1e-6)
    assert ours > 0


def test_kid_matches_torchmetrics_on_full_sets():
    fake, real = _features(40, 4), _features(30, 5)
    mean, std = kernel_inception_distance(fake, real, subsets=1, subset_size=1000)  # clamped to 30: one subset
    fake_subset = fake[np.random.RandomState(2020).choice(40, 30, replace=False)]
    assert mean == pytest.approx(float(poly_mmd(real, fake_subset)), rel=1e-6)
    assert std == 0


def test_kid_std_is_a_real_spread_for_sets_of_800():
    """The default subset size is below the set size, so subsets differ (at 1000 clamped to
    800 every subset was the whole set and kid_std about 1e-16)."""
    from fetal_dcgan.metrics.kid import default_subset_size

    fake, real = _features(800, 4), _features(800, 5) * 1.1
    mean, std = kernel_inception_distance(fake, real, subsets=20)
    assert default_subset_size(800, 800) == 400 and std > 1e-3 * abs(mean) and std > 1e-8
    _, clamped = kernel_inception_distance(fake, real, subsets=20, subset_size=1000)
    assert clamped < 1e-12  # what the old default gave
    suite = MetricSuite(["kid"], feature_extractor=TinyFeatures(), kid={"subsets": 10}, ci_resamples=0)
    result = suite.score(
        torch.randint(0, 256, (800, 1, 16, 16), dtype=torch.uint8),
        torch.randint(0, 200, (800, 1, 16, 16), dtype=torch.uint8),
    )
    assert result.scalars["kid_std"] > 0


def test_kid_matches_torch_fidelity_subset_for_subset():
    """Same seeded subsets, same kernel, same estimator as torch-fidelity, including the
    bootstrap's resampled sets (rows repeated)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    from fetal_dcgan.metrics.kid import PolynomialKernels, kid_from_kernels

    fake, real = _features(40, 4), _features(30, 5) * 1.1
    theirs = kid_features_to_metric(fake, real, kid_subsets=7, kid_subset_size=20, rng_seed=3, verbose=False)
    mean, std = kernel_inception_distance(fake, real, subsets=7, subset_size=20, seed=3)
    assert (mean, std) == pytest.approx((theirs[KEY_METRIC_KID_MEAN], theirs[KEY_METRIC_KID_STD]), rel=1e-10)
    resample = np.random.default_rng(0).integers(0, 40, 40)
    theirs = kid_features_to_metric(
        fake[torch.from_numpy(resample)], real, kid_subsets=5, kid_subset_size=20, rng_seed=3, verbose=False
    )
    ours = kid_from_kernels(PolynomialKernels(fake, real), resample, 5, 20, 3)
    assert ours == pytest.approx((theirs[KEY_METRIC_KID_MEAN], theirs[KEY_METRIC_KID_STD]), rel=1e-10)


def test_identical_sets_score_as_identical():
    suite = MetricSuite(PAPER, feature_extractor=TinyFeatures(), kid={"subsets": 10})
    images = varied_images(24, seed=6)
    images[3] = images[9] = 17  # two constant images: NMI 0/0 for that pair only
    result = suite.score(images, images)
    s = result.scalars
    assert abs(s["fid"]) < 1e-6
    # The unbiased MMD^2 of a set against itself is slightly negative: K_XY's diagonal holds
    # self-similarities, which the estimator assumes come from independent samples.
    noise = torch.randint(0, 256, images.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    different = suite.score(noise, images).scalars["kid_mean"]
    assert s["kid_mean"] <= 0 < different
    assert s["psnr_identical_pairs"] >= 24 and math.isfinite(s["psnr_mean"])
    assert np.isinf(result.per_image["psnr_best"]).all()
    assert s["lbp_l1"] == 0 and s["lbp_chi2"] == 0
    assert all(text.startswith("ok") for text in result.status.values()), result.status


def test_sets_of_different_sizes_and_one_image_sets():
    suite = MetricSuite(PAPER, feature_extractor=TinyFeatures())
    result = suite.score(varied_images(37, seed=7), varied_images(5, seed=8))
    assert result.scalars["n_fake"] == 37 and list(result.status) == list(PAPER)
    assert all(text.startswith("ok") for text in result.status.values()), result.status
    assert len(result.per_image["mi_best"]) == 37 and result.per_image["mi_best_ref"].max() < 5
    single = suite.score(varied_images(1, seed=9), varied_images(5, seed=8))
    assert single.status["fid"].startswith("unavailable: FID needs at least 2")
    assert math.isnan(single.scalars["fid"]) and math.isnan(single.scalars["kid_mean"])
    assert single.status["psnr"] == single.status["mi"] == single.status["lbp"] == "ok"


def test_constant_images():
    fake = torch.full((4, 1, 16, 16), 80, dtype=torch.uint8)
    real = torch.full((3, 1, 16, 16), 80, dtype=torch.uint8)
    result = MetricSuite(["psnr", "mi", "lbp"]).score(fake, real)
    assert result.scalars["mi_mean"] == 0 and math.isnan(result.scalars["nmi_mean"])
    assert result.scalars["psnr_identical_pairs"] == 12 and math.isnan(result.scalars["psnr_mean"])
    assert result.status == {"psnr": "ok", "mi": "ok", "lbp": "ok"}


def test_missing_fid_weights_are_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    result = MetricSuite(PAPER, features={"weights_path": None}).score(FAKE, REAL)
    assert math.isnan(result.scalars["fid"]) and math.isnan(result.scalars["kid_mean"])
    assert result.status["fid"].startswith("unavailable:") and FID_WEIGHTS_FILE in result.status["fid"]
    assert str(tmp_path / "hub" / "checkpoints") in result.status["fid"]
    assert result.status["lbp"] == "ok" and math.isfinite(result.scalars["lbp_l1"])
    explicit = MetricSuite(["fid"], features={"weights_path": str(tmp_path / "nope.pth")}).score(FAKE, REAL)
    assert "not found at" in explicit.status["fid"] and "nope.pth" in explicit.status["fid"]


def test_a_failing_metric_does_not_stop_the_others(monkeypatch):
    def broken(*args):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(METRICS, "mi", dataclasses.replace(METRICS["mi"], compute=broken))
    result = MetricSuite(["psnr", "mi", "lbp"]).score(FAKE, REAL)
    assert result.status["mi"] == "error: ZeroDivisionError: boom" and math.isnan(result.scalars["mi_mean"])
    assert result.status["psnr"] == result.status["lbp"] == "ok"


def test_reference_statistics_are_cached_and_synthetic_ones_never(tmp_path):
    extractor = TinyFeatures()
    first = MetricSuite(PAPER, feature_extractor=extractor, cache_dir=tmp_path).score(FAKE, REAL)
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "metrics").glob("*.pt"))
    assert cached == ["features", "lbp"]
    extractor.calls = 0
    second_suite = MetricSuite(PAPER, feature_extractor=extractor, cache_dir=tmp_path)
    second = second_suite.score(FAKE, REAL)
    assert extractor.calls == len(FAKE)  # the reference came from the cache, the synthetic set was recomputed
    assert second.scalars["fid"] == pytest.approx(first.scalars["fid"], rel=1e-12)
    second_suite.score(FAKE[:5], REAL)
    assert extractor.calls == len(FAKE) + 5
    assert len(list((tmp_path / "metrics").glob("*.pt"))) == 2


def test_unknown_metric_and_mismatched_sets():
    with pytest.raises(ValueError, match="Unknown metrics"):
        MetricSuite(["fid", "ssim"])
    with pytest.raises(ValueError, match="Image sizes differ"):
        MetricSuite(["psnr"]).score(FAKE, varied_images(2, size=16))


def test_mi_is_the_same_on_one_thread_and_on_all():
    """Each pair is summed by one thread in a fixed order, so cpu_threads changes no value."""
    full = pairwise_mutual_information(FAKE, REAL)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = pairwise_mutual_information(FAKE, REAL)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(full[0], one[0])


def test_mi_on_a_gpu_uses_torch_and_agrees_with_the_compiled_cpu_path(monkeypatch):
    """The torch sort-and-count that runs on a GPU, exercised on the CPU, in small blocks."""
    import fetal_dcgan.metrics.mutual_info as mutual_info

    numpy_path = mutual_info.joint_entropies(FAKE.flatten(1).numpy(), REAL.flatten(1).numpy())
    monkeypatch.setattr(mutual_info, "DEVICE_BLOCK_PAIRS", 32 * 32 * 3)  # blocks of 1 x 3 images, one ragged
    torch_path = mutual_info.joint_entropies_torch(FAKE.flatten(1), REAL.flatten(1))
    np.testing.assert_allclose(torch_path, numpy_path, rtol=1e-12, atol=1e-12)


def test_psnr_and_lbp_on_a_device_match_the_cpu_results():
    device = "cuda" if torch.cuda.is_available() else "meta"
    if device == "meta":  # every op must take its device from the input: "meta" catches a stray CPU tensor
        codes = lbp_codes(FAKE.to("meta"))
        assert codes.device.type == "meta" and codes.shape == (len(FAKE), 32, 32)
        assert pairwise_psnr(FAKE.to("meta"), REAL.to("meta")).shape == (len(FAKE), len(REAL))
        return
    # float64 sums in another order: equal to the last few bits
    assert psnr(FAKE, REAL, device=device)["scalars"] == pytest.approx(psnr(FAKE, REAL)["scalars"], rel=1e-12)
    np.testing.assert_array_equal(lbp_histograms(FAKE, device=device), lbp_histograms(FAKE))


def test_frechet_reference_agrees_with_torch_fidelity():
    """The bootstrap's eigenvalue form of FD against the reported (torch-fidelity, sqrtm) one."""
    from fetal_dcgan.metrics.fid import FrechetReference

    fake, real = _features(40, 4), _features(30, 5)
    reference = FrechetReference(real)
    assert reference(fake) == pytest.approx(frechet_distance(fake, real), rel=1e-6)  # sqrtm is good to ~1e-8
    assert reference(real) == pytest.approx(0, abs=1e-9)
    wide = torch.randn(300, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert FrechetReference(wide[:150])(wide[150:] * 1.2) == pytest.approx(
        frechet_distance(wide[150:] * 1.2, wide[:150]), rel=1e-6
    )  # rank-deficient covariances (n < d)
