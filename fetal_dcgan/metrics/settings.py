"""The ``metrics`` group's settings: the suite's own (declared here) and one section per
metric that declares options (``register_metric(options=...)``). ``conf/metrics/default.yaml``
ties options that follow the run (the cache, the audited rotations, the anatomy model) to it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

from omegaconf import DictConfig, OmegaConf

from fetal_dcgan.metrics.features import FeatureSettings
from fetal_dcgan.metrics.registry import METRICS
from fetal_dcgan.rules import Rule, int_at_least, setting


def default_metrics() -> list[str]:
    """The metrics registered as run by default, in their order."""
    return [name for name, metric in METRICS.items() if metric.default]


def _registered_names() -> Rule:
    return (lambda v: isinstance(v, list) and set(v) <= set(METRICS)), "a list of registered metrics"


def _device() -> Rule:
    return (
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None
    ), "auto, cpu, cuda or cuda:N"


@dataclass
class SuiteSettings:
    _target_: str = "fetal_dcgan.metrics.suite.MetricSuite"
    names: List[str] = setting(
        rule=_registered_names(),
        example="[fid,kid,psnr,mi,lbp]",
        help="metrics to run, any registered (docs/metrics.md); frd needs pip install -e '.[frd]', "
        "anatomy a head-measurement model (python -m fetal_dcgan.anatomy train)",
        factory=default_metrics,
    )
    modules: List[str] = setting(help="modules that register metrics of their own", factory=list)
    device: str = setting(
        "auto", _device(), "auto", "where metrics run (features, all-pairs PSNR and MI, LBP): auto (the GPU if any)"
    )
    seed: int = setting(2020, int_at_least(0), "2020", "KID subsets, bootstrap resamples, MS-SSIM pairs")
    ci_resamples: int = setting(
        200, int_at_least(0), "200 (0: no intervals)", "bootstrap resamples for CIs; a metric's ci_share scales it"
    )
    cache_dir: Optional[str] = setting(None, help="reference-set statistics, keyed by a hash of the images")
    features: FeatureSettings = setting(factory=FeatureSettings)


def metrics_node() -> DictConfig:
    """The ``metrics`` group's schema: the suite's settings, typed, and each metric's declared
    section, typed and closed; the group stays open to sections of metrics that modules
    register (``metrics.modules``), checked once they are loaded."""
    node = OmegaConf.structured(SuiteSettings)
    OmegaConf.set_struct(node, False)
    for name, metric in METRICS.items():
        if metric.has_section:
            node[name] = OmegaConf.structured(metric.options)
            OmegaConf.set_struct(node[name], True)
    return node
