"""The memorisation and diversity keys on sets whose answer is known (docs/metrics.md,
"Controls"): each key must point the expected way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fetal_dcgan.data.phantom import PhantomSpec, render_image
from fetal_dcgan.metrics.controls import CONTROLS, score_controls


def _phantom(n: int, first: int) -> torch.Tensor:
    spec = PhantomSpec(n_images=n, height=64, width=64, first_index=first)
    return torch.from_numpy(np.stack([render_image(spec, i) for i in range(first, first + n)]))[:, None]


@pytest.fixture(scope="module")
def scores() -> dict:
    train, held_out = _phantom(120, 0), _phantom(160, 1000)
    return score_controls(
        train,
        held_out,
        n=80,
        degrees=10.0,
        copying={"cells": 3, "min_cell_images": 10},
        diversity={"ms_ssim_pairs": 400},
    )


def test_every_control_was_scored(scores):
    assert list(scores) == list(CONTROLS)
    assert all(s["ct_cells"] >= 1 for s in scores.values() if s is not scores["collapsed"])


def test_copies_and_augmented_copies_are_flagged(scores):
    for name in ("copies", "augmented copies"):
        s = scores[name]
        assert s["copy_ratio"] > 0.8 and s["copy_ratio_features"] > 0.5, name
        assert s["ct_z"] < -3, name
        assert s["authenticity"] < 0.5 * s["authenticity_real"], name
    assert scores["copies"]["authenticity"] == 0


def test_held_out_real_images_pass(scores):
    s = scores["held-out real"]
    assert s["copy_ratio"] < 0.2 and s["copy_ratio_features"] < 0.2
    assert -3 < s["ct_z"] < 3
    assert s["authenticity"] == pytest.approx(s["authenticity_real"], abs=0.2)
    assert s["collapse"] == 0 and s["duplicate_rate"] == 0


def test_half_copies_sit_between(scores):
    half, copies, real = scores["half copies"], scores["copies"], scores["held-out real"]
    for key in ("copy_ratio", "ct_z", "authenticity"):
        assert min(copies[key], real[key]) < half[key] < max(copies[key], real[key]), key


def test_a_collapsed_set_is_flagged_by_diversity_not_as_copies(scores):
    s = scores["collapsed"]
    assert s["collapse"] == 1 and s["ms_ssim_fake"] > s["ms_ssim_real"] and s["duplicate_rate"] > 0.5
    assert s["copy_ratio"] < 0.2
    assert scores["copies"]["collapse"] == 0
