"""Turn a finished sweep into tables, statistics, figures and one HTML page."""

from fetal_dcgan.report.collect import Sweep, load_sweep
from fetal_dcgan.report.stats import axis_tests, pairwise_tests

__all__ = ["Sweep", "load_sweep", "axis_tests", "pairwise_tests"]
