"""An ellipse's perimeter, as HC18 measures head circumference."""

from __future__ import annotations

import numpy as np


def ramanujan(a, b):
    """Ramanujan's approximation of an ellipse's perimeter from its semi-axes (HC18's HC)."""
    return np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b)))
