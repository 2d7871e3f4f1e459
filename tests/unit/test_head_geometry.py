"""Head measurement without a network: annotations, ellipse fits, HC, plausibility and the
metric's distances, each against an independent reference (scikit-image, Ramanujan,
the phantom's own ellipse, scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from skimage.draw import ellipse as draw_ellipse
from skimage.measure import label, regionprops

from fetal_dcgan.anatomy.annotations import annotated_set, read_filled_mask
from fetal_dcgan.anatomy.ellipse import PlausibleRange, fit_ellipses, hc_pixels, perimeter_mm, pixel_mm_at
from fetal_dcgan.data.phantom import PHANTOM_CSV, PhantomSpec, materialise, render_image_and_head
from fetal_dcgan.data.preprocess import read_image_set
from fetal_dcgan.data.subsets import held_out_split
from fetal_dcgan.errors import DataError
from fetal_dcgan.imaging.ellipse import ramanujan
from fetal_dcgan.metrics.anatomy import compare, scaled_w1


def _random_ellipses(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, 1, size, size))
    for i in range(n):
        rr, cc = draw_ellipse(
            rng.uniform(24, 40),
            rng.uniform(24, 40),
            rng.uniform(6, 12),
            rng.uniform(13, 20),
            shape=(size, size),
            rotation=rng.uniform(-1.5, 1.5),
        )
        masks[i, 0, rr, cc] = 1
    return masks


def test_ellipse_fit_equals_scikit_image_moments():
    masks = _random_ellipses(12)
    e = fit_ellipses(masks)
    for i, m in enumerate(masks):
        p = regionprops(label(m[0].astype(int)))[0]
        assert (e["cy"][i], e["cx"][i]) == pytest.approx(p.centroid, abs=1e-9)
        assert e["a"][i] == pytest.approx(p.axis_major_length / 2, rel=1e-9)
        assert e["b"][i] == pytest.approx(p.axis_minor_length / 2, rel=1e-9)
        # skimage measures from the row axis; ours from the x axis towards +y (image rows)
        assert math.cos(2 * (e["angle"][i] + math.pi / 2 + p.orientation)) == pytest.approx(1, abs=1e-9)
    assert e["found"].all() and (e["fit_iou"] > 0.85).all()


def test_only_the_largest_region_counts_and_empty_images_have_no_head():
    masks = _random_ellipses(2)
    masks[0, 0, :3, :3] = 1  # a speck
    masks[1] = 0
    e = fit_ellipses(masks)
    assert e["a"][0] == pytest.approx(fit_ellipses(_random_ellipses(1))["a"][0])
    assert not e["found"][1] and math.isnan(e["a"][1])


def test_phantom_annotations_carry_the_generators_ellipse(tmp_path):
    spec = PhantomSpec(n_images=6)
    files = materialise(spec, tmp_path)
    annotated = annotated_set(files)
    masks = read_image_set(annotated.masks, read=read_filled_mask)
    e = fit_ellipses(masks.float() / 255)
    for i in range(len(files)):
        head = render_image_and_head(spec, i)[1]
        assert (e["cx"][i], e["cy"][i]) == pytest.approx((head.cx, head.cy), abs=0.5)
        assert (e["a"][i], e["b"][i]) == pytest.approx((head.a, head.b), rel=0.02)  # the outline adds half a pixel
        assert math.cos(2 * (e["angle"][i] - head.theta)) == pytest.approx(1, abs=1e-3)
        assert annotated.hc_mm[i] == pytest.approx(ramanujan(head.a, head.b) * spec.pixel_mm, rel=1e-4)
    assert (tmp_path / "phantom" / spec.key() / PHANTOM_CSV).is_file()
    assert 100 < annotated.hc_mm.min() and annotated.hc_mm.max() < 260  # HC18-like sizes in mm
    assert (annotated.sizes == [spec.width, spec.height]).all()


def test_perimeter_in_mm_against_ramanujan():
    e = {"a": np.array([10.0, 7.0, 5.0]), "b": np.array([6.0, 7.0, 5.0]), "angle": np.array([0.3, 0.0, 0.0])}
    one = np.ones(3)
    assert perimeter_mm(e, one, one) == pytest.approx(ramanujan(e["a"], e["b"]), rel=1e-4)
    assert perimeter_mm(e, 0.5 * one, 0.5 * one) == pytest.approx(0.5 * hc_pixels(e), rel=1e-4)
    # a circle of radius 5 in pixels twice as wide as tall is an ellipse of semi-axes 10 and 5 mm
    assert perimeter_mm(e, 2 * one, one)[2] == pytest.approx(ramanujan(10.0, 5.0), rel=1e-4)


def test_pixel_size_after_fitting():
    sizes, pixel = np.array([[800, 540], [400, 270]]), np.array([0.1, 0.4])
    mm_x, mm_y = pixel_mm_at(sizes, pixel, 64, "pad")
    assert mm_x == pytest.approx([1.25, 2.5])
    assert mm_y == pytest.approx(mm_x, rel=0.01)
    mm_x, mm_y = pixel_mm_at(sizes, pixel, 64, "squash")
    assert mm_x == pytest.approx([1.25, 2.5]) and mm_y == pytest.approx([0.1 * 540 / 64, 0.4 * 270 / 64])


def test_plausible_range_widens_what_annotated_heads_span():
    truth = fit_ellipses(_random_ellipses(20))
    ranges = PlausibleRange.of(truth, 64, margin=0.1, min_fit_iou=0.8)
    assert ranges.contains(truth, 64).all()
    odd = fit_ellipses(_random_ellipses(3, seed=1))
    odd["a"] = odd["a"] * 3  # far too large and too elongated
    assert not ranges.contains(odd, 64).any()
    odd = fit_ellipses(_random_ellipses(3, seed=1))
    odd["fit_iou"][:] = 0.5  # not an ellipse
    assert not ranges.contains(odd, 64).any()


def test_annotation_problems_name_the_fix(tmp_path):
    open_outline = np.zeros((20, 20), np.uint8)
    open_outline[5, 2:18] = 255
    Image.fromarray(open_outline).save(tmp_path / "1_HC_Annotation.png")
    with pytest.raises(DataError, match="not a closed outline"):
        read_filled_mask(tmp_path / "1_HC_Annotation.png")
    Image.fromarray(open_outline).save(tmp_path / "2_HC.png")
    with pytest.raises(DataError, match="data.split=train"):
        annotated_set([tmp_path / "2_HC.png"])


def test_held_out_split_keeps_each_fetus_on_one_side():
    groups = [f"fetus {i // 3}" for i in range(60)] + [f"single {i}" for i in range(40)]
    train, held = held_out_split(100, 0.2, seed=3, groups=groups)
    assert sorted(np.concatenate([train, held])) == list(range(100))
    assert not {groups[i] for i in train} & {groups[i] for i in held}
    assert 18 <= len(held) <= 22
    again = held_out_split(100, 0.2, seed=3, groups=groups)
    assert (again[1] == held).all()
    with pytest.raises(DataError):
        held_out_split(1, 0.5, seed=0)


def _measured(hc: np.ndarray, ratio: float = 0.8, plausible=None) -> dict:
    a = hc / (2 * np.pi) * 64
    return {
        "hc_per_width": hc,
        "a": a,
        "b": ratio * a,
        "angle": np.zeros_like(hc),
        "plausible": np.ones(len(hc), bool) if plausible is None else plausible,
    }


def test_distances_are_scaled_w1_and_need_enough_heads():
    rng = np.random.default_rng(0)
    real = rng.normal(1.1, 0.15, 400)
    scores = compare(_measured(real[:200]), _measured(real[200:]), min_heads=10)
    assert scores["hc_w1"] < 0.3
    assert compare(_measured(0.7 * real[:200]), _measured(real[200:]), 10)["hc_w1"] > 1.5
    from scipy.stats import wasserstein_distance

    assert scaled_w1(real[:50], real[50:], 10) == pytest.approx(
        wasserstein_distance(real[:50], real[50:]) / np.std(real[50:], ddof=1)
    )
    few = _measured(real[:20], plausible=np.arange(20) < 5)
    scores = compare(few, _measured(real[200:]), min_heads=10)
    assert scores["skull_found_rate"] == 0.25 and math.isnan(scores["hc_w1"])


def _circular_w1_by_quadrature(u: np.ndarray, v: np.ndarray, period: float) -> float:
    """min over c of the integral of |F - G - c| over the circle, on a fine grid."""
    x = np.linspace(0, period, 100_001)[:-1]
    f = np.searchsorted(np.sort(np.mod(u, period)), x, side="right") / len(u)
    g = np.searchsorted(np.sort(np.mod(v, period)), x, side="right") / len(v)
    d = f - g
    return min(np.abs(d - c).mean() * period for c in np.linspace(d.min(), d.max(), 1001))


def test_head_angles_are_compared_as_axial_data():
    from scipy.stats import circstd, wasserstein_distance

    from fetal_dcgan.metrics.anatomy import circular_w1, scaled_axial_w1

    rng = np.random.default_rng(4)
    for _ in range(3):
        u, v = rng.uniform(-90, 90, 37), rng.normal(60, 30, 50)
        assert circular_w1(u, v, 180) == pytest.approx(_circular_w1_by_quadrature(u, v, 180), rel=2e-3)
    near_zero = rng.normal(0, 5, 100), rng.normal(3, 5, 80)  # far from the wrap: the linear distance
    assert circular_w1(*near_zero, 180) == pytest.approx(wasserstein_distance(*near_zero))
    assert circular_w1(np.array([89.0, 88.0]), np.array([-89.0, -88.0]), 180) == pytest.approx(3.0)  # not 177
    real = rng.normal(88, 4, 200)  # heads lying near +-90 degrees: the linear SD would be about 90
    wrapped = (real + 90) % 180 - 90
    assert scaled_axial_w1(wrapped[:100], wrapped[100:], 10) < 0.5
    assert circstd(wrapped, high=90, low=-90) == pytest.approx(np.std(real), rel=0.05)
