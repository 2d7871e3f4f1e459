"""The benchmark commands run and report what they promise (their figures are in the README;
timings are never asserted here)."""

from __future__ import annotations

import json

import pytest

from fetal_dcgan.bench import main


@pytest.mark.slow  # two real benchmark loops (~45 s on 2 cores); make bench runs them in full
@pytest.mark.parametrize("options", [[], ["--channels-last", "--precision", "bf16-mixed"]])
def test_bench_train_reports_both_loops_and_their_ratio(capsys, options):
    assert (
        main(["train", "--image-size", "32", "--batch-size", "16", "--steps", "3", "--warmup", "1", "--json", *options])
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["bare_images_per_s"] > 0 and result["images_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["images_per_s"] / result["bare_images_per_s"], rel=0.01)
    assert result["channels_last"] == bool(options) and result["peak_rss_mb"] > 0


def test_bench_phases_sums_a_sweeps_finished_runs(tmp_path, capsys):
    for i, fit in enumerate((10.0, 30.0)):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "finished.json").write_text(
            json.dumps(
                {
                    "max_epochs": 4,
                    "seconds": {"fit": fit, "training": fit - 3, "sampling": 1.0, "metrics": 2.0},
                    "metric_seconds": {"mi": 1.5, "psnr": 0.5},
                }
            )
        )
    (tmp_path / "2").mkdir()  # an unfinished run is not counted
    assert main(["phases", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 2 and result["longest_run_seconds"] == 30.0
    assert result["seconds_summed_over_runs"] == {"training": 34.0, "sampling": 2.0, "metrics": 4.0, "fit": 40.0}
    assert result["metric_seconds_summed_over_runs"] == {"mi": 3.0, "psnr": 1.0}
    with pytest.raises(SystemExit, match="no finished runs"):
        main(["phases", str(tmp_path / "2")])


def test_bench_metrics_agrees_with_the_reference_libraries(capsys):
    assert (
        main(["metrics", "--n-fake", "20", "--n-real", "15", "--image-size", "32", "--sample-pairs", "10", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["pairs"] == 300 and result["lbp_histograms_identical"]
    assert max(result["max_rel_diff"].values()) < 1e-9
