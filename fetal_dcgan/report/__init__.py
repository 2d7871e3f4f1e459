"""Turn a finished sweep into tables, statistics, figures and one HTML page."""

from fetal_dcgan.report.collect import Sweep, load_sweep
from fetal_dcgan.report.stats import sweep_statistics

__all__ = ["Sweep", "load_sweep", "sweep_statistics"]
