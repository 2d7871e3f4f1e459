"""Build a blinded deck of real and synthetic images for a reader study.

Real images are fitted to the synthetic images' size (the same preprocessing as training),
so size gives nothing away; every image is re-encoded as an 8-bit gray PNG without
metadata and named by a random id. The answer key (id -> real/synthetic, source file,
run, epoch) is written to ``private/``, which the web app never serves (the folder's
layout: ``survey.layout``).
"""

from __future__ import annotations

import csv
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fetal_dcgan.data.manifest import Manifest, is_manifest, read_manifest
from fetal_dcgan.data.preprocess import fit_square, preprocessing, read_gray
from fetal_dcgan.data.sources import folder_images
from fetal_dcgan.errors import UserError
from fetal_dcgan.runs import RunLayout, run_of
from fetal_dcgan.survey.layout import StudyLayout
from fetal_dcgan.survey.storage import Storage

KEY_COLUMNS = ("id", "truth", "source", "run", "epoch", "image")
EPOCH_DIR = re.compile(r"^epoch=(\d+)$")


@dataclass(frozen=True)
class SyntheticSet:
    folder: Path
    run: str
    epoch: int | None


def synthetic_sets(path: Path) -> list[SyntheticSet]:
    """The sample sets under ``path``: a set folder itself, a run, a whole sweep, or the sets
    a manifest lists (``data.manifest``), named by their runs as the report names them."""
    path = Path(path)
    if is_manifest(path):
        return [SyntheticSet(s.folder, s.run, s.epoch) for s in read_manifest(path).sets]
    if not path.is_dir():
        raise UserError(f"--fake {path} does not exist: give a folder of synthetic images, a run or a sweep.")
    match = EPOCH_DIR.match(path.name)
    if match:
        return [SyntheticSet(path, path.parent.parent.name, int(match.group(1)))]
    sets = sorted(p for p in path.glob("**/samples/epoch=*") if p.is_dir() and not p.name.startswith("."))
    if sets:
        return [
            SyntheticSet(
                p,
                str(p.parent.parent.relative_to(path)) if p.parent.parent != path else path.name,
                int(EPOCH_DIR.match(p.name).group(1)),
            )
            for p in sets
        ]
    return [SyntheticSet(path, path.name, None)]


def real_and_fit(fakes: list[Path], real: Path | None, fit: str | None) -> tuple[Path | None, str | None, str | None]:
    """The real folder, fit and resize, from the manifests among ``fakes`` where given: their
    sets must state one preparation; a real folder given by hand wins, a fit given by hand
    must agree. No folder (None): the runs' own reference images (``run_reference``)."""
    manifests = [read_manifest(f) for f in fakes if is_manifest(f)]
    resize = None
    if manifests:
        real, fit, resize = _stated(manifests, real, fit)
    return (None if real is None else Path(real)), fit, resize


def run_reference(sets: list[SyntheticSet]) -> list[Path]:
    """The reference images the sets' runs were scored against (``reference.txt``; held-out
    patients unless a paper preset chose otherwise), which every run must share."""
    lists = {}
    for s in sets:
        run = run_of(s.folder)
        if run is not None and RunLayout(run).reference.is_file():
            lists[run] = tuple(RunLayout(run).reference.read_text().split())
    if not lists:
        raise UserError(
            "--real: give the folder of real images (the synthetic sets are not in runs that list their "
            "reference images, and a manifest given as --fake names its own)."
        )
    if len(set(lists.values())) > 1:
        raise UserError("The runs were scored against different reference sets: give --real DIR for one deck.")
    files = [Path(f) for f in next(iter(lists.values()))]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise UserError(
            f"The runs' reference images are not on this machine ({len(missing)} missing, e.g. {missing[0]}): "
            "give --real DIR, a folder of held-out real images."
        )
    return files


def _stated(manifests: list[Manifest], real: Path | None, fit: str | None) -> tuple[Path, str, str]:
    stated = {(s.real, s.fit, s.resize) for m in manifests for s in m.sets}
    if len(stated) > 1:
        listed = "; ".join(f"real={r}, fit={f}, resize={z}" for r, f, z in sorted(stated))
        raise UserError(f"The manifest's sets are prepared in different ways ({listed}): build one deck per reference.")
    ((stated_real, stated_fit, stated_resize),) = stated
    if fit is not None and fit != stated_fit:
        raise UserError(f"--fit {fit} but the manifest says fit={stated_fit}: leave --fit out.")
    return Path(real or stated_real), stated_fit, stated_resize


def _balanced_counts(total: int, sizes: list[int]) -> list[int]:
    """Split ``total`` as evenly as possible over sets of the given sizes."""
    counts = [0] * len(sizes)
    for _ in range(total):
        open_sets = [i for i in range(len(sizes)) if counts[i] < sizes[i]]
        if not open_sets:
            raise UserError(f"Only {sum(sizes)} synthetic images were found but --n-fake asks for {total}.")
        counts[min(open_sets, key=lambda i: counts[i])] += 1
    return counts


#: The paper's deck: 3 images from each of 19 synthetic sets and 11 real images (68 in all).
PAPER_DECK = {"sets": 19, "per_set": 3, "n_real": 11}
DECK_DESIGNS = ("balanced", "paper")


def _paper_counts(sets: list[SyntheticSet], rng: np.random.Generator) -> list[int]:
    """3 images from each of 19 sets drawn at random (all sets if there are exactly 19)."""
    if len(sets) < PAPER_DECK["sets"]:
        raise UserError(
            f"--design paper takes {PAPER_DECK['per_set']} images from each of {PAPER_DECK['sets']} "
            f"synthetic sets, but {len(sets)} were found: give the whole sweep (e.g. multirun/paper64, "
            "20 sets), or use --design balanced with --n-fake."
        )
    chosen = set(rng.choice(len(sets), PAPER_DECK["sets"], replace=False).tolist())
    return [PAPER_DECK["per_set"] if i in chosen else 0 for i in range(len(sets))]


def _write_images(layout: StudyLayout, entries: list[tuple]) -> list[dict]:
    """Each image under a random id, without metadata, and the answer key in ``private/``."""
    layout.images.mkdir(parents=True)
    layout.private.mkdir()
    rows = []
    for truth, source, run, epoch, image in entries:
        image_id = secrets.token_hex(8)
        Image.fromarray(image).save(layout.image(image_id))
        rows.append(
            {
                "id": image_id,
                "truth": truth,
                "source": str(source),
                "run": run,
                "epoch": epoch,
                "image": Path(source).name,
            }
        )
    rows.sort(key=lambda r: r["id"])  # stored order says nothing about the answer
    with layout.key.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=KEY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    layout.secret_key.write_text(secrets.token_hex(32))
    layout.admin_token.write_text(secrets.token_urlsafe(24))
    return rows


def build_deck(
    real: Path | None,
    fakes: list[Path],
    out: Path,
    n_real: int = 34,
    n_fake: int = 34,
    seed: int = 0,
    fit: str | None = None,
    design: str = "balanced",
    config: Path | None = None,
) -> dict:
    """Sample, blind and copy the images, write the key and create the database.

    Real images are prepared as the runs' training images were (``data.fit``,
    ``data.image_size`` and ``data.resize`` from each run's config.yaml, or from ``config``,
    a run's config.yaml for sets copied out of their run; ``fit`` given by hand must
    agree), or with ``fit`` (default pad) and antialiasing otherwise."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(
            f"{out} already exists and is not empty: choose a new study folder (a deck is never "
            "rebuilt over collected ratings)."
        )
    if design not in DECK_DESIGNS:
        raise UserError(f"--design {design!r}: use balanced or paper.")
    real, fit, stated_resize = real_and_fit(fakes, real, fit)
    rng = np.random.default_rng(seed)
    sets = [s for fake in fakes for s in synthetic_sets(fake)]
    real_files = folder_images(real) if real is not None else run_reference(sets)
    set_files = [folder_images(s.folder) for s in sets]
    size = read_gray(set_files[0][0]).shape
    if size[0] != size[1]:
        raise UserError(f"Synthetic images must be square; {set_files[0][0]} is {size[1]}x{size[0]}.")
    if config is not None and (not Path(config).is_file() or Path(config).name != RunLayout.CONFIG):
        raise UserError(
            f"--config {config}: give the {RunLayout.CONFIG} of the run the sets come from "
            f"(<run dir>/{RunLayout.CONFIG})."
        )
    fit, trained_size, resize, fit_source = preprocessing(
        [s.folder for s in sets] + ([Path(config).parent] if config else []), fit, None
    )
    resize = stated_resize or resize  # a manifest states its sets' preparation
    if trained_size is not None and trained_size != size[0]:
        raise UserError(
            f"The runs' config says data.image_size={trained_size} but the synthetic images are "
            f"{size[0]} px: the sample sets do not belong to those runs."
        )
    if design == "paper":
        n_real, counts = PAPER_DECK["n_real"], _paper_counts(sets, rng)
        n_fake = sum(counts)
    else:
        counts = _balanced_counts(n_fake, [len(f) for f in set_files])
    if n_real > len(real_files):
        where = real if real is not None else "the runs' reference set"
        raise UserError(f"--n-real {n_real} but {where} holds only {len(real_files)} images.")

    entries = [
        ("real", p, "", "", fit_square(read_gray(p), size[0], fit, resize))
        for p in (real_files[i] for i in sorted(rng.choice(len(real_files), n_real, replace=False)))
    ]
    for s, files, count in zip(sets, set_files, counts):
        for i in sorted(rng.choice(len(files), count, replace=False)):
            image = read_gray(files[i])
            if image.shape != size:
                raise UserError(
                    f"Synthetic sets differ in size: {files[i]} is {image.shape[1]}x{image.shape[0]}, "
                    f"not {size[1]}x{size[0]}; build one deck per resolution."
                )
            entries.append(("synthetic", files[i], s.run, "" if s.epoch is None else s.epoch, image))

    layout = StudyLayout(out)
    rows = _write_images(layout, entries)
    study = {
        "images": len(rows),
        "n_real": n_real,
        "n_fake": n_fake,
        "seed": seed,
        "image_size": size[0],
        "real": str(real) if real is not None else "the runs' reference images (reference.txt)",
        "fit": fit,
        "resize": resize,
        "fit_source": fit_source,
        "design": design,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    layout.facts.write_text(json.dumps(study, indent=1))
    Storage(layout.ratings).create()
    return study


def read_key(study: Path) -> list[dict]:
    with StudyLayout(study).key.open(newline="") as fh:
        return list(csv.DictReader(fh))


def deck_ids(study: Path) -> list[str]:
    """The image ids of the deck, from the served folder (never from the key)."""
    return sorted(p.stem for p in StudyLayout(study).images.glob("*.png"))
