"""The built-in phantom: deterministic, cached, and shaped like a B-mode scan."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fetal_dcgan.data.phantom import PhantomSpec, materialise, render_image


def test_same_seed_same_image_other_seed_other_image():
    spec = PhantomSpec(n_images=3, seed=5, height=54, width=80)
    a, b = render_image(spec, 1), render_image(spec, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, render_image(spec, 2))
    assert not np.array_equal(a, render_image(PhantomSpec(3, 6, 54, 80), 1))


def test_looks_like_a_sector_scan():
    spec = PhantomSpec(n_images=1, seed=0)
    img = render_image(spec, 0)
    assert img.shape == (270, 400) and img.dtype == np.uint8
    # Black outside the fan: top corners and bottom corners are empty.
    for corner in (img[:40, :60], img[:40, -60:], img[-10:, :30], img[-10:, -30:]):
        assert corner.max() == 0
    fan = img > 0
    assert 0.35 < fan.mean() < 0.75
    # Speckle: plenty of grey levels; a bright skull: top percentile near white.
    assert len(np.unique(img[fan])) > 100
    assert np.percentile(img[fan], 99.5) > 170 > 2 * np.median(img[fan])


def test_materialise_writes_once_and_reuses(tmp_path):
    spec = PhantomSpec(n_images=5, seed=1, height=54, width=80)
    files = materialise(spec, tmp_path)
    assert [f.name for f in files] == [f"phantom_{i:04d}.png" for i in range(5)]
    np.testing.assert_array_equal(np.asarray(Image.open(files[3])), render_image(spec, 3))
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert materialise(spec, tmp_path) == files
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    other = materialise(PhantomSpec(n_images=5, seed=2, height=54, width=80), tmp_path)
    assert other[0].parent != files[0].parent
    assert not list(tmp_path.glob("phantom/.*tmp*"))


def test_interrupted_build_is_not_reused(tmp_path):
    spec = PhantomSpec(n_images=2, seed=1, height=54, width=80)
    leftover = tmp_path / "phantom" / f".{spec.key()}.tmp-1"
    leftover.mkdir(parents=True)
    (leftover / "phantom_0000.png").write_bytes(b"half")
    files = materialise(spec, tmp_path)
    assert all(f.parent.name == spec.key() for f in files)
    assert np.asarray(Image.open(files[0])).shape == (54, 80)
