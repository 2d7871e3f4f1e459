"""The head-measurement model trained for real on the phantom, and the anatomy metric it
serves: known answers on real, rescaled and headless images, in evaluate and in training."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fetal_dcgan.anatomy.__main__ import main as anatomy_main
from fetal_dcgan.anatomy.model import train_model
from fetal_dcgan.data.preprocess import load_images
from fetal_dcgan.data.sources import phantom_images
from fetal_dcgan.evaluate import main as evaluate_main
from fetal_dcgan.metrics.suite import MetricSuite
from fetal_dcgan.pipeline import train

from helpers import TINY, compose_config, write_image

#: A model that trains in well under a minute on 2 cores and still measures HC within 2-3 %.
QUICK_MODEL = [
    "data.phantom.n_images=300",
    "anatomy.epochs=25",
    "anatomy.lr=5e-3",
    "anatomy.channels=[8,16,32,64]",
    "+trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "cache"  # the session cache of conftest's isolated_cache


@pytest.fixture(scope="module")
def model(cache):
    return train_model(compose_config(cache, QUICK_MODEL + [f"paths.cache_dir={cache}"]))


@pytest.fixture(scope="module")
def phantom(cache) -> torch.Tensor:
    return load_images(phantom_images(cache, n_images=300), 64, "pad", cache)


def test_measurement_model_is_accurate_on_held_out_phantom_heads(model):
    a = model.meta["accuracy"]
    assert a["n"] == 60 and model.meta["n_train"] == 240
    assert a["hc_error_pct_median"] < 5 and a["found_rate"] >= 0.95 and a["dice"] > 0.9
    assert a["hc_abs_error_mm_mean"] < 8  # HC18's measure, at 64 px
    assert (model.path / "tensorboard").is_dir() and (model.path / "checkpoints" / "last.ckpt").is_file()


def test_a_trained_model_comes_from_the_cache(model, cache, capsys):
    start = time.perf_counter()
    assert anatomy_main(["train", *QUICK_MODEL, f"paths.cache_dir={cache}"]) == 0
    assert time.perf_counter() - start < 20
    out = capsys.readouterr().out
    assert str(model.path) in out and "| phantom | 64 | 60 |" in out


def test_anatomy_known_answers(model, phantom, cache):
    suite = MetricSuite(["anatomy"], cache_dir=cache, anatomy={"model_path": str(model.path)})
    halves = suite.score(phantom[:150], phantom[150:])
    assert halves.scalars["skull_found_rate"] >= 0.95 and halves.scalars["skull_found_rate_real"] >= 0.95
    assert halves.scalars["hc_w1"] < 0.35 and halves.status["anatomy"].startswith("ok: model")
    smaller = F.interpolate(phantom[:150].float(), scale_factor=0.7, mode="bilinear", antialias=True)
    shrunk = torch.zeros(150, 1, 64, 64)
    offset = (64 - smaller.shape[-1]) // 2
    shrunk[..., offset : offset + smaller.shape[-2], offset : offset + smaller.shape[-1]] = smaller
    scaled = suite.score(shrunk.round().to(torch.uint8), phantom[150:])
    assert scaled.scalars["hc_w1"] > 1.0  # heads 30 % smaller
    speckle = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (100, 1, 64, 64), dtype=np.uint8))
    assert suite.score(speckle, phantom[150:]).scalars["skull_found_rate"] <= 0.05
    constant = torch.full((20, 1, 64, 64), 90, dtype=torch.uint8)
    assert suite.score(constant, phantom[150:]).scalars["skull_found_rate"] <= 0.05


def test_same_seed_same_weights(cache, tmp_path):
    tiny = QUICK_MODEL + ["anatomy.epochs=1"]
    first = train_model(
        compose_config(tmp_path, tiny + [f"paths.cache_dir={cache}", f"anatomy.cache_dir={tmp_path}/a"])
    )
    second = train_model(
        compose_config(tmp_path, tiny + [f"paths.cache_dir={cache}", f"anatomy.cache_dir={tmp_path}/b"])
    )
    for (name, x), (_, y) in zip(first.net.state_dict().items(), second.net.state_dict().items()):
        assert torch.equal(x, y), name


def test_evaluate_and_training_report_the_anatomy_metric(model, phantom, tmp_path, capsys):
    real, fake = tmp_path / "real", tmp_path / "fake"
    for i in range(40):
        write_image(real / f"r{i:03d}.png", phantom[i, 0].numpy())
        write_image(fake / f"f{i:03d}.png", phantom[100 + i, 0].numpy())
    out = tmp_path / "scores.json"
    assert (
        evaluate_main(
            [
                "--real",
                str(real),
                "--fake",
                str(fake),
                "--metrics",
                "anatomy",
                "--anatomy-model",
                str(model.path),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    scores = json.loads(out.read_text())
    assert scores["skull_found_rate"] >= 0.9 and len(scores["per_image"]["hc_fraction"]) == 40
    assert (tmp_path / "scores_heads.png").is_file()

    # Training finds the model for its size in the cache by itself.
    run = tmp_path / "run"
    train(compose_config(run, TINY + ["data.image_size=64", "metrics.names=[anatomy]"]))
    with (run / "metrics.csv").open() as fh:
        last = list(csv.DictReader(fh))[-1]
    assert last["status_anatomy"].startswith("ok: model") and 0 <= float(last["skull_found_rate"]) <= 1
    assert (run / "metrics" / "epoch=0003_heads.png").is_file()
    with (run / "per_image.csv").open() as fh:
        assert {"skull_found", "hc_fraction", "head_angle_deg"} <= set(next(csv.DictReader(fh)))


def test_without_a_model_the_metric_says_how_to_train_one(tmp_path):
    suite = MetricSuite(["anatomy", "psnr"], cache_dir=tmp_path, anatomy={"models_dir": str(tmp_path / "none")})
    images = torch.zeros(4, 1, 32, 32, dtype=torch.uint8)
    result = suite.score(images, images)
    assert result.status["anatomy"].startswith("unavailable: no head-measurement model for 32 px")
    assert "python -m fetal_dcgan.anatomy train data.image_size=32" in result.status["anatomy"]
    assert result.status["psnr"] == "ok"
