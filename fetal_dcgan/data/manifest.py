"""A manifest of sample sets made outside this project: one row a set.

Any generator's samples enter the study through it (docs/study.md, "Sets from any
generator"). A row names the set's ``folder``, its ``generator`` and its ``replicate`` (the
training run that made it), any factor columns (``n``, ``epoch``, ``lr``, ...), and how the
real images are prepared to match it: ``real`` (the reference folder), ``size`` (the
synthetic images' side in pixels), ``fit`` (how real images are fitted to it) and,
optionally, ``resize`` (antialias, the default, or tensor: how the generator's training
images were resampled, so the real images are prepared the same way) and ``train`` (the
images that replicate learned from, for the memorisation metrics). A CSV states every
column on every row; a YAML file may state the preparation once at the top, beside
``sets:``, a list of rows. Relative folders are relative to the
manifest. A run is a generator, its factors but ``epoch``, and its replicate, so the
epochs of one replicate are repeated measures of one run, as in a trained sweep.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from fetal_dcgan.data.preprocess import FIT_MODES, RESIZE_MODES, read_image_set
from fetal_dcgan.data.sources import folder_images
from fetal_dcgan.errors import DataError, UserError

MANIFEST_SUFFIXES = (".csv", ".yaml", ".yml")
IDENTITY = ("folder", "generator", "replicate")
PREPARATION = ("real", "size", "fit", "resize", "train")
REQUIRED = (*IDENTITY, "real", "size", "fit")


@dataclass(frozen=True)
class SampleSet:
    """One row of a manifest, checked: where its images are and what it is."""

    row: int  # 1-based, as a person counts the manifest's sets
    folder: Path
    generator: str
    replicate: str
    real: Path
    size: int
    fit: str
    train: Path | None = None
    factors: dict[str, object] = field(default_factory=dict)
    resize: str = "antialias"

    @property
    def epoch(self) -> int:
        return int(self.factors.get("epoch", 0))

    @property
    def run(self) -> str:
        """The run this set came from: generator, factors but epoch, replicate."""
        levels = [f"{k}={v}" for k, v in self.factors.items() if k != "epoch"]
        return "/".join([self.generator, *levels, f"replicate={self.replicate}"])

    def where(self) -> str:
        return f"set {self.row} ({self.folder})"


@dataclass(frozen=True)
class Manifest:
    path: Path
    sets: list[SampleSet]

    @property
    def factors(self) -> list[str]:
        """The factor columns, in the manifest's order."""
        return list(dict.fromkeys(k for s in self.sets for k in s.factors))


def is_manifest(path: str | Path) -> bool:
    return Path(path).suffix.lower() in MANIFEST_SUFFIXES and Path(path).is_file()


def _rows(path: Path) -> list[dict]:
    """The manifest's rows as dicts, YAML's top-level preparation filled into each."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as fh:
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(fh)]
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict) or not isinstance(document.get("sets"), list):
        raise UserError(f"{path}: a YAML manifest is a mapping with `sets:`, a list of rows (docs/study.md).")
    shared = {k: v for k, v in document.items() if k in PREPARATION}
    return [{**shared, **row} for row in document["sets"]]


def _value(value: object) -> object:
    """A factor's level: numbers as numbers, so n=100 sorts and tests as a number."""
    text = str(value)
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _folder(base: Path, value: object) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _checked(number: int, row: dict, base: Path, where: str) -> SampleSet:
    missing = [c for c in REQUIRED if str(row.get(c, "")).strip() == ""]
    if missing:
        raise UserError(f"{where}: no {', '.join(missing)}. Every set needs {', '.join(REQUIRED)} (docs/study.md).")
    folder, real = _folder(base, row["folder"]), _folder(base, row["real"])
    train = _folder(base, row["train"]) if str(row.get("train") or "").strip() else None
    for name, path in (("folder", folder), ("real", real), ("train", train)):
        if path is not None and not path.is_dir():
            raise UserError(f"{where}: {name} {path} is not a folder.")
    try:
        size = int(row["size"])
    except ValueError:
        size = 0
    if size < 1:
        raise UserError(f"{where}: size {row['size']!r}: give the synthetic images' side in pixels, e.g. 64.")
    if row["fit"] not in FIT_MODES:
        raise UserError(f"{where}: fit {row['fit']!r}: use one of {', '.join(FIT_MODES)}.")
    resize = str(row.get("resize") or "antialias").strip()
    if resize not in RESIZE_MODES:
        raise UserError(f"{where}: resize {resize!r}: use one of {', '.join(RESIZE_MODES)}.")
    factors = {k: _value(v) for k, v in row.items() if k not in (*IDENTITY, *PREPARATION)}
    if "epoch" in factors and not isinstance(factors["epoch"], int):
        raise UserError(f"{where}: epoch {factors['epoch']!r}: give a whole number.")
    return SampleSet(
        number, folder, str(row["generator"]), str(row["replicate"]), real, size, row["fit"], train, factors, resize
    )


def read_manifest(path: str | Path) -> Manifest:
    """The manifest's sets, each checked; a bad row is an error that names it."""
    path = Path(path)
    if not is_manifest(path):
        raise UserError(f"{path}: give a manifest file ({', '.join(MANIFEST_SUFFIXES)}; docs/study.md).")
    rows = _rows(path)
    if not rows:
        raise UserError(f"{path} lists no sets.")
    sets = [_checked(i, row, path.parent, f"{path} set {i} ({row.get('folder')})") for i, row in enumerate(rows, 1)]
    seen: dict[tuple[str, int], SampleSet] = {}
    for s in sets:
        other = seen.setdefault((s.run, s.epoch), s)
        if other is not s:
            raise UserError(
                f"{path}: sets {other.row} and {s.row} are both run {s.run} at epoch {s.epoch}: give each "
                "replicate its own `replicate` value, or an `epoch` column."
            )
    return Manifest(path, sets)


def read_set(sample_set: SampleSet) -> tuple[list[Path], torch.Tensor]:
    """The set's files and images, which must already be ``size`` px square."""
    try:
        files = folder_images(sample_set.folder)
        if not files:
            raise DataError(f"{sample_set.folder} holds no images")
        images = read_image_set(files)
    except (DataError, UserError) as exc:
        raise UserError(f"{sample_set.where()}: {exc}") from exc
    if tuple(images.shape[-2:]) != (sample_set.size, sample_set.size):
        raise UserError(
            f"{sample_set.where()}: the images are {images.shape[-1]}x{images.shape[-2]} but the manifest says "
            f"size {sample_set.size}: correct the row's size, or resize the set to it."
        )
    return files, images
