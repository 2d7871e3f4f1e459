"""Equivalence margins: the smallest difference between levels that would matter.

A margin is declared before the study (``study.margins``), per metric and image size, from
one of three sources (``MARGIN_SOURCES``):

- ``gap``: a fraction (default 0.2) of the distance between a pilot's synthetic sets and
  real data, i.e. of how far the generator still is from perfect;
- ``explicit``: a value the study states (``study.margins.explicit`` or a YAML file);
- ``real``: the real-vs-real spread, ``Z_DIFFERENCE`` x SD of real sets scored as a
  synthetic set is. Two equally perfect generators differ by less than that 95 % of the
  time: the strictest margin, a noise floor rather than an effect of interest.

A gap margin below the real-vs-real margin is raised to it (a difference smaller than two
real sets' is no effect of anything) and then says ``real``. Every margin keeps the
real-vs-real SD, which the verdicts need to recognise a saturated metric.

The real draws share one finite pool, so their spread understates that of new real sets;
``real_spread`` corrects it (finite-population correction, exact for a set mean) and
scales it to the study's set size, with a chi-square interval over the draws.
``python -m fetal_dcgan.baselines --margins SWEEP`` (``report.measure``) writes the file,
``SWEEP/margins.json``, one section per image size.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from fetal_dcgan.errors import UserError
from fetal_dcgan.report.settings import MARGIN_SOURCES, MarginSettings
from fetal_dcgan.utils import atomic_write_text

MARGINS_FILE = "margins.json"
#: Two draws' scores differ by less than Z_DIFFERENCE x SD 95 % of the time.
Z_DIFFERENCE = 1.959963984540054 * math.sqrt(2)
GAP, EXPLICIT, REAL = MARGIN_SOURCES
#: The key of margins that hold for every image size (an explicit file without sizes).
ANY_SIZE = "any"


@dataclass(frozen=True)
class Margin:
    """One metric's margin at one image size: its value, source and 95 % interval, and the
    real-vs-real SD of a set of the study's size (NaN where not measured)."""

    value: float
    source: str
    low: float = math.nan
    high: float = math.nan
    real_sd: float = math.nan
    about: str = ""

    def scaled(self, factor: float) -> Margin:
        return Margin(self.value * factor, self.source, self.low * factor, self.high * factor, self.real_sd, self.about)


def sd_interval(sd: float, draws: int, level: float = 0.95) -> tuple[float, float]:
    """Chi-square interval of a standard deviation estimated from ``draws`` values."""
    df = draws - 1
    tail = (1 - level) / 2
    return sd * math.sqrt(df / stats.chi2.ppf(1 - tail, df)), sd * math.sqrt(df / stats.chi2.ppf(tail, df))


def real_spread(scores: list[dict[str, float]], keys: list[str], drawn: int, pool: int, set_size: int) -> dict:
    """Per key: mean and SD of ``scores`` (real sets of ``drawn`` images from a pool of ``pool``)
    as the SD of a new real set of ``set_size`` images, with its interval."""
    correction = math.sqrt((pool - 1) / max(pool - drawn, 1)) * math.sqrt(drawn / set_size)
    out = {}
    for key in keys:
        values = np.array([s.get(key, math.nan) for s in scores], float)
        values = values[np.isfinite(values)]
        if len(values) >= 2:
            sd = float(values.std(ddof=1)) * correction
            low, high = sd_interval(sd, len(values))
            out[key] = {"mean": float(values.mean()), "sd": sd, "sd_low": low, "sd_high": high, "draws": len(values)}
    return out


def declare(real: dict, pilot: dict, settings: MarginSettings) -> dict[str, dict]:
    """Per key, the declared margin: ``real`` from ``real_spread``; ``pilot``: {key: (mean, SE)}
    of the pilot's synthetic sets at its last snapshot."""
    out = {}
    for key in sorted(set(real) | set(settings.explicit)):
        spread = real.get(key, {})
        sd = spread.get("sd", math.nan)
        floor = {"margin": Z_DIFFERENCE * sd, "low": Z_DIFFERENCE * spread.get("sd_low", math.nan)}
        floor["high"] = Z_DIFFERENCE * spread.get("sd_high", math.nan)
        entry = {**spread, "source": REAL, **floor, "about": f"{Z_DIFFERENCE:.2f} x real-vs-real SD"}
        if settings.source == EXPLICIT and key in settings.explicit:
            value = float(settings.explicit[key])
            entry.update(source=EXPLICIT, margin=value, low=value, high=value, about="declared")
        elif settings.source == GAP and key in pilot and spread:
            mean, se = pilot[key]
            gap = abs(mean - spread["mean"])
            value = settings.fraction * gap
            about = f"{settings.fraction:g} x gap {gap:.4g} (pilot {mean:.4g}, real {spread['mean']:.4g})"
            if value > floor["margin"]:
                low = settings.fraction * max(gap - 1.96 * se, 0.0)
                entry.update(source=GAP, margin=value, low=low, high=settings.fraction * (gap + 1.96 * se), about=about)
            else:
                entry["about"] += f"; {about} is below it"
        if math.isfinite(entry["margin"]):
            out[key] = entry
    return out


def write_margins(path: Path, sections: dict[str, dict]) -> Path:
    """``sections``: {image size: {"about": {...}, "metrics": declare(...)}}."""
    payload = {"z_difference": Z_DIFFERENCE, "sizes": sections}
    atomic_write_text(json.dumps(payload, indent=1, default=float), path)
    return path


Margins = dict[str, dict[str, Margin]]  # {image size (str) or ANY_SIZE: {metric key: Margin}}


def read_margins(path: Path) -> Margins:
    """A measured ``margins.json`` or an explicit YAML/JSON file: ``{key: value}``, or
    ``{image size: {key: value}}``."""
    try:
        data = json.loads(Path(path).read_text()) if Path(path).suffix == ".json" else None
        data = yaml.safe_load(Path(path).read_text()) if data is None else data
        if isinstance(data, dict) and "sizes" in data:
            return {
                str(size): {key: _measured(m, section["about"]) for key, m in section["metrics"].items()}
                for size, section in data["sizes"].items()
            }
        return _explicit(data)
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise UserError(
            f"{path} is not a margins file ({type(exc).__name__}: {exc}): measure one with python -m "
            "fetal_dcgan.baselines --margins SWEEP, or write YAML {metric: margin} (or {image size: "
            "{metric: margin}})."
        ) from exc


def _measured(m: dict, about: dict) -> Margin:
    where = f"{about['description']}; {m.get('draws', 0)} draws; {m['about']}"
    return Margin(float(m["margin"]), m["source"], float(m["low"]), float(m["high"]), float(m.get("sd", "nan")), where)


def _explicit(data) -> Margins:
    if not isinstance(data, dict) or not data:
        raise ValueError("expected a mapping of metric keys to margins")
    nested = all(isinstance(v, dict) for v in data.values())
    sections = {str(k): v for k, v in data.items()} if nested else {ANY_SIZE: data}
    return {
        size: {str(key): Margin(float(v), EXPLICIT, float(v), float(v), about="declared") for key, v in values.items()}
        for size, values in sections.items()
    }


def merge(measured: Margins, explicit: Margins) -> Margins:
    """Explicit values over measured ones, keeping the measured real-vs-real SD."""
    out = {size: dict(values) for size, values in measured.items()}
    for size, values in explicit.items():
        for target in out if size == ANY_SIZE and out else [size]:
            for key, margin in values.items():
                sd = margin.real_sd if math.isfinite(margin.real_sd) else out.get(target, {}).get(key, margin).real_sd
                out.setdefault(target, {})[key] = Margin(**{**asdict(margin), "real_sd": sd})
    return out


def margin_at(margins: Margins, key: str, sizes: list) -> tuple[Margin | None, str]:
    """The margin of ``key`` for runs of these image sizes: the size's own, or where the runs
    differ in size the smallest (strictest) of theirs; with a note when so."""
    found = [m for size in sizes for m in [margins.get(str(size), margins.get(ANY_SIZE, {})).get(key)] if m]
    if not found or len(found) < len(sizes):
        return None, ""
    chosen = min(found, key=lambda m: m.value)
    note = "" if len(sizes) == 1 else f"image sizes {', '.join(map(str, sizes))} differ: the strictest size's margin"
    return chosen, note
