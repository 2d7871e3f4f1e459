"""The error a metric raises when it cannot be computed here (a missing weights file, too
few images): the suite records it as that metric's ``unavailable`` status."""


class MetricUnavailable(Exception):
    """A metric cannot be computed in this environment; the message says what to do."""
