"""Each metric is declared once, and no other module spells its keys; layouts agree with the config."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import fetal_dcgan
from fetal_dcgan.metrics import METRICS, registry
from fetal_dcgan.runs import RunLayout

from helpers import compose_config

PACKAGE = Path(fetal_dcgan.__file__).parent
ROOT = PACKAGE.parent


def test_a_key_cannot_be_declared_by_two_metrics():
    with pytest.raises(ValueError, match="already declared"):
        registry.register_metric("copycat", "", (registry.Key("psnr_mean", ""),))(lambda ctx: {})
    assert "copycat" not in METRICS


def _string_literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


#: Literals that spell a key's name but mean something else.
HOMONYMS = {
    ("fetal_dcgan/bench.py", "precision"),  # Lightning's numeric precision (32-true, bf16-mixed)
    ("fetal_dcgan/report/settings.py", "fid"),  # the FID metric's registered name, which its key shares
}


def test_no_metric_key_is_spelled_outside_its_metrics_module():
    declared_in = {}
    for metric in METRICS.values():
        module = Path(sys.modules[metric.compute.__module__].__file__)
        for key in metric.keys:
            declared_in.setdefault(key.name, set()).add(module)
    found = []
    for path in PACKAGE.rglob("*.py"):
        for literal in _string_literals(path) & set(declared_in):
            if path not in declared_in[literal] and (str(path.relative_to(ROOT)), literal) not in HOMONYMS:
                found.append(f"{path.relative_to(ROOT)}: {literal!r}")
    assert not found, "metric keys spelled outside their declaration: " + ", ".join(sorted(found))


def test_the_key_table_in_the_docs_is_the_registry():
    docs = (ROOT / "docs" / "metrics.md").read_text()
    start, end = "<!-- keys: python -m fetal_dcgan.metrics.registry -->\n", "<!-- /keys -->"
    assert start in docs and end in docs, "docs/metrics.md lost its generated key table"
    assert docs.split(start)[1].split(end)[0] == registry.markdown_table(), (
        "docs/metrics.md is out of date: paste the output of python -m fetal_dcgan.metrics.registry"
    )


def test_lightnings_folders_in_the_config_are_the_run_layout(tmp_path):
    cfg = compose_config(tmp_path, [])
    layout = RunLayout(tmp_path)
    assert Path(cfg.callbacks.checkpoint.dirpath) == layout.checkpoints
    assert layout.last_checkpoint.name == f"{cfg.callbacks.checkpoint.filename}.ckpt"
    assert Path(cfg.logger.tensorboard.save_dir) / cfg.logger.tensorboard.name == layout.tensorboard


def test_figures_are_drawn_for_the_suites_metrics_and_a_failing_one_is_skipped(tmp_path, monkeypatch):
    import torch

    from fetal_dcgan.metrics.suite import MetricsResult, MetricSuite

    def broken(fake, train, result, path):
        raise RuntimeError("cannot draw")

    def drawn(fake, train, result, path):
        path.write_text(str(len(fake)))
        return path

    monkeypatch.setitem(METRICS, "psnr", METRICS["psnr"])
    monkeypatch.setitem(METRICS, "lbp", METRICS["lbp"])
    registry.register_figure("psnr", "broken")(broken)
    registry.register_figure("lbp", "count")(drawn)
    suite = MetricSuite(["psnr", "lbp"], cache_dir=None)
    written = suite.figures(
        torch.zeros(3, 1, 8, 8, dtype=torch.uint8), None, MetricsResult(), lambda name: tmp_path / f"x_{name}.png"
    )
    assert written == [tmp_path / "x_count.png"] and (tmp_path / "x_count.png").read_text() == "3"
    assert (
        MetricSuite(["psnr"], cache_dir=None).figures(
            torch.zeros(1, 1, 8, 8, dtype=torch.uint8), None, MetricsResult(), lambda n: tmp_path / n
        )
        == []
    )
