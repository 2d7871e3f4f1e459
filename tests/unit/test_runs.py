"""What counts as a run, for every reader: training started there (Hydra's record or the
resolved config), so a report lists a cell that failed its checks and evaluate finds a run
made without Hydra."""

from __future__ import annotations

from fetal_dcgan.runs import RunLayout, find_runs, run_of


def test_a_run_is_a_folder_training_started_in_and_sweeps_list_them_in_job_order(tmp_path):
    (tmp_path / "10" / ".hydra").mkdir(parents=True)
    (tmp_path / "10" / ".hydra" / "config.yaml").write_text("{}")  # stopped by its checks
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "config.yaml").write_text("{}")  # trained without Hydra
    (tmp_path / "report").mkdir()  # not a run
    assert find_runs(tmp_path) == [tmp_path / "2", tmp_path / "10"]
    assert find_runs(tmp_path / "2") == [tmp_path / "2"]
    assert RunLayout(tmp_path / "10").is_run() and not RunLayout(tmp_path / "report").is_run()
    samples = tmp_path / "2" / "samples" / "epoch=0003"
    samples.mkdir(parents=True)
    assert run_of(samples) == tmp_path / "2" and run_of(tmp_path / "report") is None
