"""The Obuchowski-Rockette MRMC analysis reproduces the published results of the Van Dyke
data: OR-DBM MRMC's output as printed by RJafroc (dataset02) and MRMCaov (VanDyke)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fetal_dcgan.errors import UserError
from fetal_dcgan.survey.mrmc import analyse, read_table

DATA = Path(__file__).parents[1] / "data" / "vandyke.txt"


def vandyke() -> pd.DataFrame:
    """The shipped transcription as the long table: reader, case, truth, treatment, rating."""
    rows = []
    for line in DATA.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        reader, treatment, negatives, positives = line.split()
        for case, digit in enumerate(negatives + positives):
            truth = int(case >= len(negatives))
            rows.append({"reader": reader, "case": case, "truth": truth, "treatment": treatment, "rating": int(digit)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def result():
    table = vandyke()
    assert len(table) == 1140 and table.groupby("truth")["case"].nunique().tolist() == [69, 45]
    return analyse(table)


def test_reader_aucs_are_the_published_ones(result):
    auc = result["readers"].pivot(index="treatment", columns="reader", values="auc").round(4)
    assert auc.loc["0"].tolist() == [0.9196, 0.8588, 0.9039, 0.9731, 0.8298]
    assert auc.loc["1"].tolist() == [0.9478, 0.9053, 0.9217, 0.9994, 0.9300]


def test_variance_components_and_mean_squares(result):
    c = result["components"]
    published = {  # MRMCaov summary(mrmc(empirical_auc(truth, rating), treatment, reader, case, VanDyke))
        "var": 0.0008022883,
        "cov1": 0.0003466137,
        "cov2": 0.0003440748,
        "cov3": 0.0002390284,
        "ms_T": 0.004796171,
        "ms_TR": 0.0005510306,
    }
    for key, value in published.items():
        assert c[key] == pytest.approx(value, rel=5e-7), key


def test_rrrc_the_published_f_ddf_p_and_intervals(result):
    test = result["tests"].set_index("analysis").loc["RRRC"]
    assert (round(test.statistic, 6), round(test.ddf, 5), round(test.p_value, 8)) == (4.456319, 15.25967, 0.05166569)
    diff = result["differences"].set_index("analysis").loc["RRRC"]
    assert round(diff.estimate, 8) == -0.04380032 and round(diff.se, 8) == 0.02074862
    assert (round(diff.ci_low, 10), round(diff.ci_high, 10)) == (-0.0879594986, 0.0003588544)
    each = result["treatments"].query("analysis == 'RRRC'").set_index("treatment")
    assert each.estimate.round(7).tolist() == [0.8970370, 0.9408374]
    assert each.se.round(7).tolist() == [0.0331736, 0.0215664]
    assert each.df.round(5).tolist() == [12.74465, 12.71019]
    assert each.ci_low.round(7).tolist() == [0.8252236, 0.8941378]
    assert each.ci_high.round(7).tolist() == [0.9688505, 0.9875369]
    assert (each.p_value < 1e-6).all()  # readers tell the classes apart in both treatments


def test_frrc_and_rrfc_the_published_tests_and_intervals(result):
    tests = result["tests"].set_index("analysis")
    assert round(tests.loc["FRRC"].statistic, 8) == 5.47595324 and round(tests.loc["FRRC"].p_value, 5) == 0.01928
    assert round(tests.loc["FRRC"].error_ms, 7) == 0.0008759
    assert round(tests.loc["RRFC"].statistic, 3) == 8.704 and round(tests.loc["RRFC"].p_value, 5) == 0.04196
    diff = result["differences"].set_index("analysis")
    assert round(diff.loc["FRRC"].se, 9) == 0.018717483 and round(diff.loc["FRRC"].statistic, 2) == -2.34
    assert (round(diff.loc["FRRC"].ci_low, 5), round(diff.loc["FRRC"].ci_high, 6)) == (-0.08049, -0.007115)
    assert (round(diff.loc["RRFC"].ci_low, 5), round(diff.loc["RRFC"].ci_high, 5)) == (-0.08502, -0.00258)
    assert round(diff.loc["RRFC"].se, 5) == 0.01485 and diff.loc["RRFC"].df == 4
    frrc = result["treatments"].query("analysis == 'FRRC'")
    assert frrc.se.round(5).tolist() == [0.02429, 0.01678]
    assert frrc.ci_low.round(4).tolist() == [0.8494, 0.9080] and frrc.ci_high.round(4).tolist() == [0.9446, 0.9737]
    rrfc = result["treatments"].query("analysis == 'RRFC'")
    assert rrfc.se.round(5).tolist() == [0.02483, 0.01615] and (rrfc.df == 4).all()
    assert rrfc.ci_low.round(4).tolist() == [0.8281, 0.8960] and rrfc.ci_high.round(4).tolist() == [0.9660, 0.9857]


def test_the_command_writes_tables_and_refuses_a_bad_table(tmp_path):
    from fetal_dcgan.survey.__main__ import main

    vandyke().to_csv(tmp_path / "vd.csv", index=False)
    assert main(["mrmc", str(tmp_path / "vd.csv"), "--out", str(tmp_path / "out")]) == 0
    for name in ("readers", "treatments", "tests", "differences"):
        assert (tmp_path / "out" / f"mrmc_{name}.csv").is_file()
    assert read_table(tmp_path / "vd.csv").shape == (1140, 5)
    bad = vandyke().iloc[1:]  # reader 0 lost one reading of case 0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["mrmc", str(tmp_path / "bad.csv")]) == 2
    with pytest.raises(UserError, match="every reader must rate every case"):
        analyse(bad)


def test_cases_a_treatment_lacks_only_share_the_common_cases():
    """Two treatments with their own positives and shared negatives (real images shared,
    synthetic ones per generator): each treatment's AUCs equal those of its own cases alone."""
    table = vandyke()
    own = table[
        ~((table.treatment == "0") & (table.case >= 92)) & ~((table.treatment == "1") & table.case.between(69, 91))
    ]
    result = analyse(own)
    alone = analyse(own[own.treatment == "0"])
    assert np.allclose(result["readers"].query("treatment == '0'").auc, alone["readers"].auc) and math.isfinite(
        result["tests"].statistic[0]
    )


@pytest.mark.slow  # 6 s; the analysis itself is checked against the Van Dyke results above
def test_rrrc_keeps_its_level_when_readers_differ_in_how_well_they_separate():
    """300 simulated null studies (4 readers, 34 real and 36 synthetic images, no mean
    difference, a reader x truth SD of 0.6 against an answer SD of 0.7): the RRRC test of the
    reader-averaged AUC against 0.5 rejects within the Monte-Carlo band around 5 %."""
    from fetal_dcgan.survey.analysis import reader_table

    from helpers import simulate_ratings

    rejected = []
    for seed in range(300):
        answers = simulate_ratings(seed, effect=0.0, set_sd=0.0, truth_sd=0.6)
        row = analyse(reader_table(answers))["treatments"].set_index("analysis").loc["RRRC"]
        rejected.append(row.p_value < 0.05)
    assert 0.025 <= np.mean(rejected) <= 0.075
