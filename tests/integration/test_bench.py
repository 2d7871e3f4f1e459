"""The benchmark commands run and report what they promise (their figures are in the README;
timings are never asserted here)."""

from __future__ import annotations

import json

import pytest
import torch

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
                    "finished_at": "2026-01-01T00:00:00+0000",
                    "max_epochs": 4,
                    "seconds": {"fit": fit, "training": fit - 3, "sampling": 1.0, "metrics": 2.0},
                    "metric_seconds": {"mi": 1.5, "psnr": 0.5},
                }
            )
        )
        (tmp_path / str(i) / "config.yaml").write_text(f"data:\n  n: {100 * (i + 1)}\n")
        (tmp_path / str(i) / "metrics.csv").write_text("epoch\n2\n4\n")  # two scored sets
    (tmp_path / "2").mkdir()  # an unfinished run is not counted
    assert main(["phases", str(tmp_path), "--full-epochs", "1000", "--full-sets", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 2 and result["longest_run_seconds"] == 30.0
    assert result["seconds_summed_over_runs"] == {"training": 34.0, "sampling": 2.0, "metrics": 4.0, "fit": 40.0}
    assert result["metric_seconds_summed_over_runs"] == {"mi": 3.0, "psnr": 1.0}
    # training per epoch x 1000 epochs; (sampling + metrics) per set x 4 sets; the runs side by side
    extrapolated = result["extrapolated"]
    assert [(r["n"], r["training_s"], r["sampling_and_metrics_s"]) for r in extrapolated["per_run"]] == [
        (100, 1750.0, 6.0),
        (200, 6750.0, 6.0),
    ]
    assert extrapolated["wall_s_side_by_side"] == 6756.0
    with pytest.raises(SystemExit, match="no finished runs"):
        main(["phases", str(tmp_path / "2")])


@pytest.mark.slow  # renders the 999-image phantom pool; the metrics' agreement is tested in tests/unit
def test_bench_metrics_agrees_with_the_reference_libraries(capsys):
    assert (
        main(["metrics", "--n-fake", "20", "--n-real", "15", "--image-size", "32", "--sample-pairs", "10", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["pairs"] == 300 and result["lbp_histograms_identical"]
    assert max(result["max_rel_diff"].values()) < 1e-9


@pytest.mark.slow  # a 95 MB file
def test_random_inception_weights_build_fids_network(tmp_path):
    from fetal_dcgan.bench import random_inception_weights
    from fetal_dcgan.metrics.features import InceptionFeatures, extract_features

    network = InceptionFeatures(random_inception_weights(tmp_path / "random.pth"))
    features = extract_features(network, torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8))
    assert features.shape == (3, 2048) and torch.isfinite(features).all()


@pytest.mark.slow  # the bare loop's DCGAN64 needs the full phantom at 64 px (~40 s on a fresh cache)
def test_bench_generator_times_training_and_sampling_of_any_generator(capsys):
    argv = ["generator", "experiment=ddpm_smoke", "--steps", "2", "--warmup", "1", "--n-samples", "4"]
    assert main([*argv, "--bare-steps", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["generator"] == "ddpm" and result["image_size"] == 32 and 0.1 < result["parameters_m"] < 0.2
    assert result["training_images_per_s"] > 0 and result["sampling_images_per_s"] > 0
    assert result["bare_dcgan64_images_per_s"] > 0
