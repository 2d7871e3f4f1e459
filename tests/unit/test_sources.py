"""Discovery of HC18 and plain-folder datasets, and the errors a user can run into."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fetal_dcgan.data.preprocess import load_images, read_gray
from fetal_dcgan.data.sources import discover, folder_images, hc18_images
from fetal_dcgan.errors import DataError

from helpers import TRAIN_NAMES, make_hc18, noise_image, write_image


@pytest.mark.parametrize("doubled", [True, False])
def test_hc18_uses_exactly_the_training_scans(tmp_path, doubled):
    train = make_hc18(tmp_path, doubled=doubled)
    files = hc18_images(tmp_path)
    assert [f.name for f in files] == sorted(TRAIN_NAMES)
    assert all(f.parent == train.resolve() or f.parent == train for f in files)
    # The training folder itself is accepted as root too.
    assert [f.name for f in hc18_images(train)] == sorted(TRAIN_NAMES)


def test_hc18_test_split(tmp_path):
    make_hc18(tmp_path)
    assert [f.name for f in hc18_images(tmp_path, split="test")] == ["1000_HC.png", "1001_HC.png"]


def test_hc18_without_training_images_names_the_fix(tmp_path):
    (tmp_path / "training_set").mkdir()
    write_image(tmp_path / "training_set" / "000_HC_Annotation.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"No HC18 training_set images.*Zenodo"):
        hc18_images(tmp_path)


def test_folder_reads_every_format_recursively(tmp_path):
    gray = noise_image(1, (30, 40))
    write_image(tmp_path / "a.png", gray)
    write_image(tmp_path / "sub" / "b.jpg", gray)
    write_image(tmp_path / "sub" / "c.BMP", np.stack([gray] * 3, -1))
    write_image(tmp_path / "sub" / "deeper" / "d.tif", gray)
    Image.fromarray((gray.astype(np.uint16) * 257)).save(tmp_path / "e16.png")
    (tmp_path / "readme.txt").write_text("not an image")
    write_image(tmp_path / ".hidden" / "f.png", gray)
    files = folder_images(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a.png",
        "e16.png",
        "sub/b.jpg",
        "sub/c.BMP",
        "sub/deeper/d.tif",
    ]
    np.testing.assert_array_equal(read_gray(tmp_path / "e16.png"), gray)  # 16-bit scaled by 255/65535
    np.testing.assert_array_equal(read_gray(tmp_path / "sub" / "c.BMP"), gray)  # RGB -> luma
    np.testing.assert_array_equal(read_gray(tmp_path / "sub" / "deeper" / "d.tif"), gray)


def test_rgb_to_gray_matches_pil_luma(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    write_image(tmp_path / "rgb.png", rgb)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(read_gray(tmp_path / "rgb.png"), expected)


@pytest.mark.parametrize("source", ["folder", "hc18"])
def test_missing_data_directory(tmp_path, source):
    with pytest.raises(DataError, match="does not exist: check data.root"):
        discover(source, root=tmp_path / "nope")


def test_unset_root():
    with pytest.raises(DataError, match=r"set data.root="):
        discover("folder", root=None)


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match=r"No images found under .*Check data.root"):
        folder_images(tmp_path)


def test_root_is_a_file(tmp_path):
    f = write_image(tmp_path / "x.png", noise_image(0))
    with pytest.raises(DataError, match="is a file, not a directory"):
        folder_images(f)


def test_truncated_image_is_named(tmp_path):
    good = write_image(tmp_path / "good.png", noise_image(0))
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match=r"Cannot read image .*bad\.png.*corrupt or truncated"):
        load_images(folder_images(tmp_path), 32, "pad")


def test_garbage_file_is_named(tmp_path):
    write_image(tmp_path / "good.png", noise_image(0))
    (tmp_path / "fake.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match=r"fake\.jpg"):
        load_images(folder_images(tmp_path), 32, "pad")


def test_identical_images_are_reported(tmp_path, caplog):
    from fetal_dcgan.data.datamodule import UltrasoundDataModule

    for i in range(4):
        write_image(tmp_path / f"{i}.png", noise_image(i))
    write_image(tmp_path / "3_copy.png", noise_image(3))
    dm = UltrasoundDataModule(source="folder", root=str(tmp_path), image_size=32, reference_n=2)
    with caplog.at_level("WARNING"):
        dm.setup()
    assert "1 groups of images are identical" in caplog.text and "3.png = 3_copy.png" in caplog.text


def test_a_folder_in_hc18_layout_yields_scans_not_masks(tmp_path, caplog):
    train = make_hc18(tmp_path)
    with caplog.at_level("WARNING"):
        files = folder_images(train)
    assert sorted(p.name for p in files) == sorted(TRAIN_NAMES)
    assert "Skipped 6 annotation masks" in caplog.text


def test_repeat_scans_of_a_fetus_stay_on_one_side(tmp_path, caplog):
    from fetal_dcgan.data.datamodule import UltrasoundDataModule
    from fetal_dcgan.data.sources import fetus_id

    make_hc18(tmp_path)
    for seed in range(8):
        dm = UltrasoundDataModule(
            source="hc18", root=str(tmp_path), image_size=32, n=2, reference_n=2, seed=seed, reference="disjoint"
        )
        with caplog.at_level("WARNING"):
            dm.setup()
        train, reference = {fetus_id(p) for p in dm.train_files}, {fetus_id(p) for p in dm.reference_files}
        assert not train & reference and dm.reference_in_training == 0 and len(dm.held_out) == 2
    independent = UltrasoundDataModule(
        source="hc18", root=str(tmp_path), image_size=32, n=6, reference_n=4, reference="independent"
    )
    independent.setup()
    assert independent.reference_in_training == 4 and len(independent.held_out) == 0


def test_held_out_reference_from_hc18_test_split_or_whole_fetuses(tmp_path):
    from fetal_dcgan.data.datamodule import UltrasoundDataModule
    from fetal_dcgan.data.sources import fetus_id

    make_hc18(tmp_path)
    test = UltrasoundDataModule(source="hc18", root=str(tmp_path), image_size=32, reference_n=2)
    test.setup()
    assert all("test_set" in str(p) for p in test.reference_files) and test.reference_in_training == 0
    assert len(test.train_files) == len(test.files) and len(test.held_out) == 2
    with pytest.raises(DataError, match=r"reference_n=3 but the hc18 test split has 2 images.*at most 2"):
        UltrasoundDataModule(source="hc18", root=str(tmp_path), image_size=32, reference_n=3).setup()
    references = set()
    for seed in range(4):  # replicates draw their own subsets; the reference stays, and no fetus is on both sides
        dm = UltrasoundDataModule(
            source="hc18", root=str(tmp_path), image_size=32, reference_n=2, seed=seed, reference_split="train"
        )
        dm.setup()
        train, reference = {fetus_id(p) for p in dm.train_files}, {fetus_id(p) for p in dm.reference_files}
        assert not train & reference and dm.reference_in_training == 0
        references.add(tuple(map(str, dm.reference_files)))
    assert len(references) == 1
    with pytest.raises(DataError, match=r"data.n=7 but only \d+ of the 6 images remain.*lower data.n to at most"):
        UltrasoundDataModule(
            source="hc18", root=str(tmp_path), image_size=32, reference_n=2, n=7, reference_split="train"
        ).setup()


def test_phantom_test_split_continues_the_pool(tmp_path):
    from fetal_dcgan.data.datamodule import UltrasoundDataModule
    from fetal_dcgan.data.phantom import PhantomSpec, render_image

    phantom = {"n_images": 6, "n_test": 3, "height": 54, "width": 80}
    dm = UltrasoundDataModule(
        source="phantom", phantom=phantom, image_size=32, reference_n=3, n=4, cache_dir=str(tmp_path), batch_size=2
    )
    dm.setup()
    assert dm.reference_in_training == 0 and len(dm.reference) == 3 and len(dm.held_out) == 3
    assert [p.name for p in dm.reference_files] == ["phantom_0006.png", "phantom_0007.png", "phantom_0008.png"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(dm.reference_files[0])), render_image(PhantomSpec(9, 0, 54, 80), 6)
    )  # image 6 of a larger phantom


def test_near_identical_images_are_reported(tmp_path, caplog):
    from fetal_dcgan.data.datamodule import UltrasoundDataModule

    for i in range(4):
        write_image(tmp_path / f"{i}.png", noise_image(i))
    near = noise_image(2).astype(int)
    near[0, 0] = (near[0, 0] + 3) % 256  # one pixel off: a different file, the same image
    write_image(tmp_path / "2_resaved.png", near.astype(np.uint8))
    dm = UltrasoundDataModule(
        source="folder", root=str(tmp_path), image_size=32, reference_n=2, fit="squash", near_copy_db=40.0
    )
    with caplog.at_level("WARNING"):
        dm.setup()
    assert "1 pairs of different images are near-identical" in caplog.text and "2.png ~ 2_resaved.png" in caplog.text
