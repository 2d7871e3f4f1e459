"""Where training images come from: the phantom, the HC18 release or any folder.

Each source returns a sorted list of image paths; nothing is read here, so discovery
stays cheap and the order (which seeds the subsets) is the same on every machine.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

from fetal_dcgan.data.phantom import PhantomSpec, materialise
from fetal_dcgan.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

#: HC18 scan names: ``010_HC.png`` and repeat scans ``010_2HC.png``; never ``*_Annotation.png``.
HC18_IMAGE = re.compile(r"^\d+_\d*HC\.png$", re.IGNORECASE)
HC18_SPLITS = {"train": "training_set", "test": "test_set"}
#: HC18's ellipse outlines: masks for head measurement, never images to train on or score.
HC18_MASK = re.compile(r"_Annotation\.png$", re.IGNORECASE)
#: The fetus of an HC18 scan: ``392_2HC.png`` is a repeat scan of ``392_HC.png``.
HC18_FETUS = re.compile(r"^(\d+)_\d*HC\.png$", re.IGNORECASE)
GROUP_MODES = ("fetus", "none")

log = logging.getLogger(__name__)


def fetus_id(path: Path) -> str:
    """The fetus an image shows: HC18's number for its scans, else the file itself."""
    match = HC18_FETUS.match(Path(path).name)
    return f"fetus {match.group(1)}" if match else str(path)


def groups_of(files: list[Path], group_by: str) -> list[str] | None:
    """Group labels for seeded subsets (``data.group_by``); None keeps images independent."""
    if group_by not in GROUP_MODES:
        raise DataError(
            f"data.group_by={group_by!r}: use fetus (repeat scans of one fetus stay on one side of "
            "every split) or none."
        )
    return [fetus_id(p) for p in files] if group_by == "fetus" else None


def _existing_dir(root: str | Path | None, what: str) -> Path:
    if root is None or str(root) in ("", "???"):
        raise DataError(f"No data directory given for {what}: set data.root=/path/to/images.")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(
            f"The data directory {path} does not exist: check data.root (it is resolved "
            f"relative to the directory you started from: {Path.cwd()})."
        )
    if not path.is_dir():
        raise DataError(f"data.root={path} is a file, not a directory: point it at the folder of images.")
    return path


def folder_images(root: str | Path | None) -> list[Path]:
    """Every image file (png/jpg/bmp/tif) under ``root``, recursively; hidden files and HC18
    annotation masks (``*_Annotation.png``) skipped, the masks with a log line saying so."""
    path = _existing_dir(root, "data=folder")
    files = sorted(
        p
        for p in path.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    masks = [p for p in files if HC18_MASK.search(p.name)]
    if masks:
        log.warning(
            "Skipped %d annotation masks (*_Annotation.png, HC18's head outlines) under %s: they are not "
            "scans. %d images remain.",
            len(masks),
            path,
            len(files) - len(masks),
        )
        files = [p for p in files if not HC18_MASK.search(p.name)]
    if not files:
        raise DataError(
            f"No images found under {path}: data=folder reads .png, .jpg, .bmp and .tif "
            "files in that folder and its subfolders. Check data.root."
        )
    return files


def _hc18_split_dir(root: Path, split: str) -> Path | None:
    """The folder holding a split's scans; copes with the release's doubled folder names."""
    name = HC18_SPLITS[split]
    for candidate in (root / name / name, root / name, root):
        if candidate.is_dir() and any(HC18_IMAGE.match(p.name) for p in candidate.iterdir()):
            if candidate == root and split == "test":
                return None  # a bare folder of scans is the training set
            return candidate
    return None


def hc18_images(root: str | Path | None, split: str = "train") -> list[Path]:
    """The HC18 scans of ``split`` ("train" or "test"), without annotation masks or CSVs."""
    if split not in HC18_SPLITS:
        raise DataError(f"data.split={split!r} is not an HC18 split: use 'train' or 'test'.")
    path = _existing_dir(root, "data=hc18")
    folder = _hc18_split_dir(path, split)
    if folder is None:
        raise DataError(
            f"No HC18 {HC18_SPLITS[split]} images (named like 000_HC.png or 010_2HC.png) found in "
            f"{path}, {path / HC18_SPLITS[split]} or {path / HC18_SPLITS[split] / HC18_SPLITS[split]}. "
            "Point data.root at the unzipped HC18 release (Zenodo record 1327317), or use data=folder "
            "for images named differently."
        )
    return sorted(p for p in folder.iterdir() if HC18_IMAGE.match(p.name) and p.is_file())


def phantom_images(
    cache_dir: str | Path,
    n_images: int = 999,
    seed: int = 0,
    height: int = 270,
    width: int = 400,
    field_mm: float = 160.0,
    split: str = "train",
    n_test: int = 800,
) -> list[Path]:
    """The built-in phantom, generated into the cache on first use: the ``train`` split (the
    pool of ``n_images``) or the ``test`` split (``n_test`` further images of the same phantom,
    rendered after the pool, so no training subset can ever contain one)."""
    if split not in HC18_SPLITS:
        raise DataError(f"data.split={split!r} is not a phantom split: use 'train' or 'test'.")
    count = n_images if split == "train" else n_test
    if count < 1:
        key = "n_images" if split == "train" else "n_test"
        raise DataError(f"data.phantom.{key}={count}: the phantom's {split} split needs at least one image.")
    first = 0 if split == "train" else n_images
    return materialise(PhantomSpec(count, seed, height, width, field_mm, first), cache_dir)


SOURCES: dict[str, Callable[..., list[Path]]] = {
    "phantom": phantom_images,
    "hc18": hc18_images,
    "folder": folder_images,
}


def discover(source: str, **options) -> list[Path]:
    """Image paths of the named source; ``options`` are that source's keyword arguments."""
    if source not in SOURCES:
        raise DataError(f"Unknown data source {source!r}: choose one of {', '.join(SOURCES)}.")
    return SOURCES[source](**options)
