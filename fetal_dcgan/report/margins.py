"""Equivalence margins: how far two equally perfect generators' scores lie apart.

A margin is the real-vs-real spread of a metric at the study's set size: several sets of
real images the generator never saw, each scored against the same reference set exactly
as a synthetic set is, give each metric a standard deviation SD; two such sets differ by
less than z * sqrt(2) * SD (z = 1.96: 2.77 SD) 95 % of the time, and that is the margin
within which levels of a factor count as equivalent. ``python -m fetal_dcgan.baselines
--margins SWEEP`` measures it with the sweep's own data, preparation and metric settings
and writes ``SWEEP/margins.json``, which ``report`` reads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from fetal_dcgan.errors import UserError
from fetal_dcgan.utils import atomic_write_text

MARGINS_FILE = "margins.json"
#: Two draws' scores differ by less than Z_DIFFERENCE x SD 95 % of the time.
Z_DIFFERENCE = 1.959963984540054 * math.sqrt(2)


def margins_from_draws(scores: list[dict[str, float]], keys: list[str]) -> dict[str, dict]:
    """Per key: the mean and SD of the real-vs-real scores, and the margin Z_DIFFERENCE x SD."""
    out = {}
    for key in keys:
        values = np.array([s.get(key, math.nan) for s in scores], float)
        values = values[np.isfinite(values)]
        if len(values) >= 2:
            sd = float(values.std(ddof=1))
            out[key] = {"mean": float(values.mean()), "sd": sd, "margin": Z_DIFFERENCE * sd, "draws": len(values)}
    return out


def write_margins(path: Path, metrics: dict[str, dict], about: dict) -> Path:
    atomic_write_text(json.dumps({**about, "z_difference": Z_DIFFERENCE, "metrics": metrics}, indent=1), path)
    return path


def read_margins(path: Path) -> dict[str, tuple[float, str]]:
    """{metric: (margin, where it came from)} from a margins file."""
    try:
        data = json.loads(Path(path).read_text())
        about = (
            f"{Path(path).name}: {data['z_difference']:.2f} x SD of real-vs-real scores of "
            f"{data['set_size']} vs {data['reference_n']} images ({data['description']})"
        )
        return {key: (float(m["margin"]), f"{about}; {m['draws']} draws") for key, m in data["metrics"].items()}
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(
            f"{path} is not a margins file ({exc}): write one with python -m fetal_dcgan.baselines --margins SWEEP."
        ) from exc
