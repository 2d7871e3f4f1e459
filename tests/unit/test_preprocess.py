"""Fitting into a square, scaling, rotation fill and the preprocessing cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from fetal_dcgan.data.augment import augment, flip_rotate, to_signed, to_unit
from fetal_dcgan.data.preprocess import fit_square, load_images
from fetal_dcgan.errors import ConfigError

from helpers import noise_image, write_image


def test_pad_keeps_aspect_and_letterboxes_black():
    img = np.full((50, 100), 200, np.uint8)
    out = fit_square(img, 64, "pad")
    assert out.shape == (64, 64)
    rows = np.flatnonzero(out.max(axis=1))
    assert out[: rows[0]].max() == 0 and out[rows[-1] + 1 :].max() == 0
    assert len(rows) == 32  # 100x50 -> 64x32: aspect kept
    assert (out[rows[0] : rows[-1] + 1] == 200).all()


def test_crop_fills_square_from_centre():
    img = np.zeros((50, 100), np.uint8)
    img[:, 25:75] = 255  # the centre square is white, the sides black
    out = fit_square(img, 32, "crop")
    assert out.shape == (32, 32) and out[:, 1:-1].min() == 255  # edge columns blend when resampled


def test_squash_stretches_like_the_paper():
    img = noise_image(0, (50, 100))
    out = fit_square(img, 64, "squash")
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(img).resize((64, 64), Image.Resampling.BILINEAR)))


@pytest.mark.parametrize("size", [48, 16, 100])
def test_unsupported_size(size):
    with pytest.raises(ConfigError, match=r"data.image_size=.*power of two"):
        load_images([], size, "pad")


def test_unknown_fit():
    with pytest.raises(ConfigError, match="data.fit='stretch'"):
        load_images([], 64, "stretch")


def test_scaling_to_signed_range():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8)
    y = to_signed(to_unit(x))
    assert y[0] == -1 and y[1] == 1 and abs(float(y[2]) - (128 / 127.5 - 1)) < 1e-6


def test_rotation_matches_scipy_and_fills_corners_black():
    rng = np.random.default_rng(0)
    img = ndimage.gaussian_filter(rng.random((64, 64)), 2).astype(np.float32) + 0.5
    x = torch.from_numpy(img)[None, None]
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 31.5) ** 2 + (xx - 31.5) ** 2 < 26**2
    for degrees, flip in [(10, False), (-7, False), (25, True)]:
        angle, mirror = torch.tensor([math.radians(degrees)]), torch.tensor([flip])
        out = flip_rotate(x, angle, mirror, "bilinear")[0, 0].numpy()
        src = img[:, ::-1] if flip else img
        ref = ndimage.rotate(src, degrees, reshape=False, order=1, mode="constant", cval=0.0)
        assert np.abs(out - ref)[disc].max() < 1e-4
        nearest = flip_rotate(x, angle, mirror)[0, 0].numpy()  # the default: pixels moved, never blended
        ref = ndimage.rotate(src, degrees, reshape=False, order=0, mode="constant", cval=0.0)
        assert (nearest == ref)[disc].mean() > 0.99 and np.isin(nearest[disc], img).all()
        assert out[0, 0] < 0.3 * img[0, 0] and out[-1, -1] < 0.3 * img[-1, -1]  # black, not grey


def test_flip_only_is_exact_and_augment_can_be_off():
    x = torch.rand(6, 1, 32, 32)
    flips = torch.tensor([True, False] * 3)
    out = flip_rotate(x, torch.zeros(6), flips)
    torch.testing.assert_close(out[flips], x[flips].flip(-1))
    torch.testing.assert_close(out[~flips], x[~flips])
    assert augment(x, hflip=False, degrees=0) is x


def test_augment_of_white_square_blacks_only_corners():
    x = torch.ones(64, 1, 32, 32)
    out = augment(x, hflip=True, degrees=10, generator=torch.Generator().manual_seed(0))
    assert out[:, :, 12:20, 12:20].min() > 0.999  # centre untouched
    assert (out[:, :, 0, 0] < 0.9).float().mean() > 0.5  # most corners rotated in from outside


def test_preprocessing_cache(tmp_path):
    files = [write_image(tmp_path / "img" / f"{i}.png", noise_image(i)) for i in range(3)]
    first = load_images(files, 32, "pad", tmp_path / "cache")
    cached = list((tmp_path / "cache" / "preprocessed").glob("*.pt"))
    assert len(cached) == 1 and first.shape == (3, 1, 32, 32) and first.dtype == torch.uint8
    torch.testing.assert_close(load_images(files, 32, "pad", tmp_path / "cache"), first)
    load_images(files, 32, "crop", tmp_path / "cache")
    write_image(files[0], noise_image(7))  # an edited file invalidates the entry
    changed = load_images(files, 32, "pad", tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "preprocessed").glob("*.pt"))) == 3
    assert not torch.equal(changed[0], first[0])


def test_batched_augmentation_equals_per_image_augmentation():
    x = torch.rand(16, 1, 32, 32)
    angles = torch.linspace(-0.17, 0.17, 16)
    flips = torch.arange(16) % 3 == 0
    batched = flip_rotate(x, angles, flips, "bilinear")
    for i in range(16):
        single = flip_rotate(x[i : i + 1], angles[i : i + 1], flips[i : i + 1], "bilinear")
        torch.testing.assert_close(batched[i : i + 1], single, rtol=0, atol=1e-6)
        src = x[i, 0].numpy()[:, ::-1] if flips[i] else x[i, 0].numpy()
        ref = ndimage.rotate(src, math.degrees(float(angles[i])), reshape=False, order=1, mode="constant", cval=0.0)
        inner = (slice(6, -6), slice(6, -6))
        assert np.abs(batched[i, 0].numpy()[inner] - ref[inner]).max() < 1e-4


def test_real_baselines_show_what_bilinear_rotation_costs_lbp(isolated_cache):
    """Two real halves are closest in LBP; nearest-neighbour rotation keeps the speckle far
    better than bilinear (python -m fetal_dcgan.baselines, on 120 phantom images)."""
    from fetal_dcgan.baselines import real_baselines
    from fetal_dcgan.data.sources import phantom_images

    images = load_images(phantom_images(isolated_cache, n_images=120), 64, "squash", isolated_cache)
    rows = {r["comparison"]: r for r in real_baselines({"squash": images})}
    halves = rows["real half vs real half"]["lbp_l1"]
    nearest = rows["augmented (nearest) half vs real half"]["lbp_l1"]
    bilinear = rows["augmented (bilinear) half vs real half"]["lbp_l1"]
    assert halves < nearest < bilinear and bilinear > 2 * nearest


def test_tensor_resize_is_torchvision_resize_without_antialiasing():
    """data.resize=tensor: the notebooks' ToTensor then Resize((s, s)) on a tensor (no antialiasing)."""
    import torchvision.transforms.functional as TF

    image = noise_image(3, (540, 800))
    ours = fit_square(image, 64, "squash", "tensor")
    theirs = TF.resize(TF.to_tensor(Image.fromarray(image)), [64, 64], antialias=False)
    np.testing.assert_array_equal(ours, theirs.mul(255).round().clamp(0, 255).to(torch.uint8)[0].numpy())
    smoothed = fit_square(image, 64, "squash")
    assert ours.std() > 2 * smoothed.std()  # antialiasing averages speckle away; the tensor path samples it
    with pytest.raises(ConfigError, match="data.resize='box'"):
        load_images([], 64, "pad", resize="box")
