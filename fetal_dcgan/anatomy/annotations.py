"""Head annotations in HC18's format, for HC18 and the phantom alike.

HC18 gives each training scan ``NNN_HC.png`` a one-pixel ellipse outline
``NNN_HC_Annotation.png`` and lists the pixel size and head circumference in
``training_set_pixel_size_and_HC.csv``; the phantom writes the same files
(``fetal_dcgan.data.phantom``). Masks are the outline filled, fitted into the square exactly
as the images are, so a resized mask keeps each pixel's covered fraction (0-255).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from fetal_dcgan.data.phantom import ANNOTATION_SUFFIX, HC_CSV_COLUMNS
from fetal_dcgan.data.preprocess import read_gray
from fetal_dcgan.errors import DataError


def annotation_of(image: Path) -> Path:
    return image.with_name(image.stem + ANNOTATION_SUFFIX)


def read_filled_mask(path: str | Path) -> np.ndarray:
    """An outline annotation filled: 255 inside the ellipse (outline included), 0 outside."""
    outline = read_gray(path) > 127
    filled = ndimage.binary_fill_holes(outline)
    if filled.sum() < 2 * max(outline.sum(), 1):
        raise DataError(
            f"The annotation {path} is not a closed outline (filling it adds nothing): HC18 "
            "annotations are closed one-pixel ellipses. Replace the file or leave its image out."
        )
    return filled.astype(np.uint8) * 255


def _hc_csv(folder: Path) -> Path | None:
    """HC18's ``*_pixel_size_and_HC.csv`` in the images' folder or up to two folders above."""
    for where in (folder, folder.parent, folder.parent.parent):
        found = sorted(where.glob("*pixel_size_and_HC.csv"))
        if found:
            return found[0]
    return None


def read_hc_csv(path: Path) -> dict[str, tuple[float, float]]:
    """{file name: (pixel size in mm, head circumference in mm)} from an HC18-style CSV."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in HC_CSV_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise DataError(f"{path} lacks the columns {missing}: HC18's CSV has {', '.join(HC_CSV_COLUMNS)}.")
    name, pixel, hc = HC_CSV_COLUMNS
    return {row[name]: (float(row[pixel]), float(row[hc])) for row in rows}


@dataclass
class AnnotatedSet:
    """Images with their masks, pixel sizes and HCs (NaN where no CSV gives them) and
    their original sizes (width, height), which turn pixels at the training size into mm."""

    images: list[Path]
    masks: list[Path]
    pixel_mm: np.ndarray
    hc_mm: np.ndarray
    sizes: np.ndarray  # (N, 2): width, height in pixels


def annotated_set(images: list[Path]) -> AnnotatedSet:
    """The annotations of ``images``, or a DataError naming what is missing and where."""
    masks = [annotation_of(p) for p in images]
    missing = [m for m in masks if not m.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(images)} images have no head annotation, e.g. {missing[0]}. The "
            "measurement model trains on annotated scans: data=phantom, or data=hc18 with "
            "data.split=train (HC18's test set has no annotations)."
        )
    table = {}
    csv_path = _hc_csv(images[0].parent) if images else None
    if csv_path is not None:
        table = read_hc_csv(csv_path)
    known = np.array([table.get(p.name, (np.nan, np.nan)) for p in images], float).reshape(-1, 2)
    sizes = []
    for p in images:
        with Image.open(p) as img:
            sizes.append(img.size)
    return AnnotatedSet(list(images), masks, known[:, 0], known[:, 1], np.array(sizes, float).reshape(-1, 2))
