"""Margins of interest: declared from a gap, explicitly or from the real-vs-real spread, per image
size, the spread corrected for a finite pool, and files read back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fetal_dcgan.errors import UserError
from fetal_dcgan.report.margins import (
    ANY_SIZE,
    Z_DIFFERENCE,
    declare,
    margin_at,
    merge,
    read_margins,
    real_spread,
    sd_interval,
    write_margins,
)
from fetal_dcgan.report.settings import MarginSettings


def test_the_finite_pool_correction_recovers_the_sd_of_new_real_sets():
    """Set means of 400 draws from a pool of 999 vary less than means of 400 new images; the
    corrected SD of many such draws is the SD of a mean of ``set_size`` new images."""
    rng = np.random.default_rng(0)
    pool = rng.normal(0, 1, 999)
    draws = [{"x": float(rng.permutation(pool)[:400].mean())} for _ in range(4000)]
    raw = np.std([d["x"] for d in draws], ddof=1)
    assert raw == pytest.approx(pool.std() / math.sqrt(400) * math.sqrt(599 / 998), rel=0.05)  # overlap shrinks it
    spread = real_spread(draws, ["x"], drawn=400, pool=999, set_size=800)["x"]
    assert spread["sd"] == pytest.approx(pool.std() / math.sqrt(800), rel=0.05)
    assert spread["sd_low"] < spread["sd"] < spread["sd_high"] and spread["draws"] == 4000


def test_sd_interval_is_the_chi_square_interval():
    low, high = sd_interval(2.0, 8)
    from scipy import stats

    assert low == pytest.approx(2.0 * math.sqrt(7 / stats.chi2.ppf(0.975, 7)))
    assert high == pytest.approx(2.0 * math.sqrt(7 / stats.chi2.ppf(0.025, 7)))


def test_declared_margins_from_each_source():
    real = {"a": {"mean": 1.0, "sd": 0.01, "sd_low": 0.005, "sd_high": 0.02, "draws": 8}}
    real["b"] = {**real["a"], "sd": 1.0, "sd_low": 0.5, "sd_high": 2.0}
    pilot = {"a": (3.0, 0.1), "b": (1.5, 0.1)}  # a is far from real; b's gap is inside real noise
    gap = declare(real, pilot, MarginSettings())
    assert gap["a"]["source"] == "gap" and gap["a"]["margin"] == pytest.approx(0.2 * 2.0)
    assert gap["a"]["low"] == pytest.approx(0.2 * (2.0 - 0.196)) and gap["a"]["high"] == pytest.approx(0.2 * 2.196)
    assert gap["b"]["source"] == "real" and gap["b"]["margin"] == pytest.approx(Z_DIFFERENCE * 1.0)
    assert "below it" in gap["b"]["about"]
    strict = declare(real, pilot, MarginSettings(source="real"))
    assert strict["a"]["margin"] == pytest.approx(Z_DIFFERENCE * 0.01) and strict["a"]["source"] == "real"
    given = declare(real, pilot, MarginSettings(source="explicit", explicit={"a": 0.3, "c": 5.0}))
    assert (given["a"]["source"], given["a"]["margin"], given["a"]["sd"]) == ("explicit", 0.3, 0.01)
    assert given["c"]["margin"] == 5.0 and given["b"]["source"] == "real"


def test_margins_are_per_image_size_and_explicit_files_merge_over_measured(tmp_path):
    section = {
        "about": {"description": "phantom"},
        "metrics": {"lbp_l1": {"margin": 0.1, "source": "gap", "low": 0.08, "high": 0.12, "sd": 0.01, "about": "x"}},
    }
    small = {**section, "metrics": {"lbp_l1": {**section["metrics"]["lbp_l1"], "margin": 0.05}}}
    measured = read_margins(write_margins(tmp_path / "margins.json", {"64": section, "128": small}))
    assert margin_at(measured, "lbp_l1", [64])[0].value == 0.1
    strictest, note = margin_at(measured, "lbp_l1", [64, 128])
    assert strictest.value == 0.05 and "strictest" in note
    assert margin_at(measured, "lbp_l1", [256])[0] is None and margin_at(measured, "fid", [64])[0] is None
    (tmp_path / "explicit.yaml").write_text("lbp_l1: 0.2\nfid: 3\n")
    both = merge(measured, read_margins(tmp_path / "explicit.yaml"))
    margin = margin_at(both, "lbp_l1", [64])[0]
    assert (margin.value, margin.source, margin.real_sd) == (0.2, "explicit", 0.01)
    assert margin_at(both, "fid", [128])[0].value == 3.0
    assert margin_at(read_margins(tmp_path / "explicit.yaml"), "fid", [64])[0].source == "explicit"
    assert ANY_SIZE in read_margins(tmp_path / "explicit.yaml")


def test_a_file_that_is_not_margins_names_the_fix(tmp_path):
    (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="baselines --margins SWEEP"):
        read_margins(tmp_path / "bad.yaml")
