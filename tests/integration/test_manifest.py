"""Sets from any generator, listed in a manifest, through the report and the rating deck:
two "generators" (held-out real images, and blurred copies of them), 3 replicates each."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter

from fetal_dcgan.data.manifest import read_manifest
from fetal_dcgan.data.sources import phantom_images
from fetal_dcgan.evaluate import main as evaluate_main
from fetal_dcgan.report.__main__ import main as report_main
from fetal_dcgan.report.__main__ import scored_sets
from fetal_dcgan.survey.__main__ import main as survey_main

SIZE = 32
COLUMNS = ("folder", "generator", "replicate", "real", "size", "fit")


def _save(images: list[Image.Image], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        image.save(folder / f"{i:03d}.png")
    return folder


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> Path:
    """real/ (60 images) and 6 sets of 20: each replicate draws its own held-out images."""
    root = tmp_path_factory.mktemp("sets")
    files = phantom_images(root / "phantom", n_images=180, height=54, width=80)
    scans = [Image.open(f).convert("L").resize((SIZE, SIZE), Image.BILINEAR) for f in files]
    _save(scans[:60], root / "real")
    rows = []
    for replicate in range(3):
        held_out = scans[60 + 40 * replicate : 80 + 40 * replicate]
        blurred = [s.filter(ImageFilter.GaussianBlur(1.5)) for s in scans[80 + 40 * replicate : 100 + 40 * replicate]]
        for generator, images in (("held-out", held_out), ("blur", blurred)):
            _save(images, root / generator / str(replicate))
            rows.append(dict(zip(COLUMNS, (f"{generator}/{replicate}", generator, replicate, "real", SIZE, "pad"))))
    return _write_csv(root / "sets.csv", rows)


@pytest.fixture(scope="module")
def report(sets, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:  # the session's cache: module fixtures run before conftest's
        patch.setenv("FETAL_DCGAN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        assert report_main(["--sets", str(sets), "--out", str(out)]) == 0
    return out


def test_the_report_of_a_manifest_has_a_generator_factor_with_runs_as_replicates(report):
    for name in ("results.csv", "per_image.csv", "stats.csv", "pairwise.csv", "cells.csv", "stats.md", "report.html"):
        assert (report / name).is_file(), name
    results = pd.read_csv(report / "results.csv")
    assert len(results) == 6 and set(results["generator"]) == {"held-out", "blur"}
    assert results.groupby("generator")["run"].nunique().tolist() == [3, 3]
    stats = pd.read_csv(report / "stats.csv")
    lbp = stats[(stats["metric"] == "lbp_l1") & (stats["factor"] == "generator") & (stats["design"] == "runs")]
    assert len(lbp) == 1 and lbp.iloc[0]["replicates_per_group"] == 3
    assert lbp.iloc[0]["verdict"] == "differs"  # blurring changes the texture; new real images keep it
    by_generator = results.groupby("generator")[["lbp_l1", "ms_ssim_fake"]].mean()
    assert by_generator.loc["blur", "lbp_l1"] > 3 * by_generator.loc["held-out", "lbp_l1"]
    assert by_generator.loc["blur", "ms_ssim_fake"] > by_generator.loc["held-out", "ms_ssim_fake"]
    per_image = pd.read_csv(report / "per_image.csv")
    assert len(per_image) == 6 * 20 and set(per_image["run"]) == set(results["run"])
    html = (report / "report.html").read_text()
    assert "generators: blur, held-out" in html and "replicate=2" in html


def test_a_second_report_reads_every_score_from_the_cache(sets, report, isolated_cache):
    entries = sorted((isolated_cache / "sets").glob("*/scores.json"))
    assert len(entries) == 6
    stamps = [p.stat().st_mtime_ns for p in entries]
    again = scored_sets(str(sets))
    assert [p.stat().st_mtime_ns for p in entries] == stamps
    first = pd.read_csv(report / "results.csv")
    for column in ("run", "epoch", "lbp_l1", "mi_mean", "ms_ssim_fake"):
        assert first[column].tolist() == again.results[column].tolist(), column


def test_evaluate_scores_a_manifest_into_one_row_a_set(sets, tmp_path):
    out = tmp_path / "scores.csv"
    assert evaluate_main(["--sets", str(sets), "--metrics", "psnr", "lbp", "--out", str(out)]) == 0
    scores = pd.read_csv(out)
    assert len(scores) == 6 and scores["lbp_l1"].notna().all() and "mi_mean" not in scores
    assert (
        scores.groupby("generator")["lbp_l1"].mean()["blur"] > scores.groupby("generator")["lbp_l1"].mean()["held-out"]
    )


def test_a_yaml_manifest_states_the_preparation_once_and_adds_factors(sets, tmp_path):
    root = sets.parent
    manifest = tmp_path / "sets.yaml"
    manifest.write_text(
        f"real: {root / 'real'}\nsize: {SIZE}\nfit: pad\nsets:\n"
        + "".join(
            f"  - {{folder: {root / g / str(r)}, generator: {g}, replicate: {r}, epoch: {e}}}\n"
            for g in ("held-out", "blur")
            for r in range(2)
            for e in (5, 10)
        )
    )
    read = read_manifest(manifest)
    assert len(read.sets) == 8 and read.factors == ["epoch"]
    assert {s.run for s in read.sets} == {f"{g}/replicate={r}" for g in ("held-out", "blur") for r in range(2)}


def _without_real(rows, broken):
    return [{k: v for k, v in r.items() if k != "real"} for r in rows]


def _wrong_size(rows, broken):
    return rows[:2] + [{**rows[2], "size": 64}]


def _missing_folder(rows, broken):
    return rows[:1] + [{**rows[1], "folder": str(broken.parent / "missing")}]


def _same_run_twice(rows, broken):
    return rows + [dict(rows[0])]


def _unreadable_image(rows, broken):
    return rows[:1] + [{**rows[1], "folder": str(broken)}]


def _unknown_resize(rows, broken):
    return [{**r, "resize": "nearest" if i == 3 else "antialias"} for i, r in enumerate(rows)]


@pytest.mark.parametrize(
    "change, words",
    [
        (_without_real, ("set 1 ", "no real")),
        (_wrong_size, ("set 3 ", "64")),
        (_missing_folder, ("set 2 ", "is not a folder")),
        (_same_run_twice, ("sets 1 and 7", "held-out/replicate=0")),
        (_unreadable_image, ("set 2 ", "Cannot read image")),
        (_unknown_resize, ("set 4 ", "resize 'nearest'", "antialias, tensor")),
    ],
)
def test_a_bad_row_is_an_error_that_names_it(sets, tmp_path, capsys, change, words):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "000.png").write_bytes(b"not a png")
    with sets.open(newline="") as fh:
        rows = [
            {**r, "real": str(sets.parent / r["real"]), "folder": str(sets.parent / r["folder"])}
            for r in csv.DictReader(fh)
        ]
    manifest = _write_csv(tmp_path / "bad.csv", change(rows, broken))
    assert report_main(["--sets", str(manifest), "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err, err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_a_deck_is_built_from_a_manifest(sets, tmp_path):
    study = tmp_path / "study"
    assert survey_main(["build", "--fake", str(sets), "--n-real", "6", "--n-fake", "12", "--out", str(study)]) == 0
    key = pd.read_csv(study / "private" / "key.csv")
    synthetic = key[key["truth"] == "synthetic"]
    assert len(synthetic) == 12 and len(key) == 18
    assert set(synthetic["run"]) <= {s.run for s in read_manifest(sets).sets} and synthetic["run"].nunique() == 6
    sizes = {Image.open(p).size for p in (study / "images").glob("*.png")}
    assert sizes == {(SIZE, SIZE)}
    assert np.all(key.loc[key["truth"] == "real", "source"].str.contains("real"))
    assert json.loads((study / "study.json").read_text())["resize"] == "antialias"  # the manifest's default
