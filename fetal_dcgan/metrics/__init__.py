"""Image-quality metrics on uint8 image sets; ``MetricSuite`` runs the configured ones.

Importing the package registers the built-in metrics, in the order they run and are
reported (``registry.METRICS``).
"""

from fetal_dcgan.metrics import fid, kid, psnr, mutual_info, lbp, diversity, memorisation, copying  # noqa: F401, I001
from fetal_dcgan.metrics import prdc  # noqa: F401
from fetal_dcgan.metrics import relative_fd, fd_infinity, mmd, vendi, frd, anatomy  # noqa: F401
from fetal_dcgan.metrics.registry import METRICS
from fetal_dcgan.metrics.suite import MetricsResult, MetricSuite

__all__ = ["METRICS", "MetricSuite", "MetricsResult"]
