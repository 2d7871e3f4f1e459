"""Image-quality metrics on uint8 image sets; ``MetricSuite`` runs the configured ones."""

from fetal_dcgan.metrics.suite import METRICS, MetricsResult, MetricSuite

__all__ = ["METRICS", "MetricSuite", "MetricsResult"]
