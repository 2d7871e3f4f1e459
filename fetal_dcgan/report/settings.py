"""What a study declares before it runs: its question (the primary factor, endpoints and
snapshot), its error rates, and how the equivalence margin of each endpoint is set.

It is part of every run's config (``study.*``), so a report of the sweep reads the
declaration its runs were started with; ``report --factor/--endpoints/--snapshot`` may
override it, and the report says so. The default is the paper's question: does the
training-set size ``n`` change its four metrics (FID, PSNR, MI and the LBP vector, as the
distance of sLBPv to rLBPv) at the last snapshot?
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from fetal_dcgan.rules import int_at_least, list_of, number_in, one_of, or_null, setting

#: Where a margin comes from, strictest last (docs/study.md, "Margins of interest").
MARGIN_SOURCES = ("gap", "explicit", "real")
#: The paper's four metrics, by their registered names.
PAPER_METRICS = ("fid", "psnr", "mi", "lbp")


def paper_endpoints() -> list[str]:
    """The paper's four metrics in the forms this project tests: each metric's headline key."""
    from fetal_dcgan.metrics import METRICS

    return [METRICS[name].headline.name for name in PAPER_METRICS]


def _is_name(value) -> bool:
    return isinstance(value, str) and bool(value)


@dataclass
class MarginSettings:
    """The smallest difference between levels that would matter, per endpoint."""

    source: str = setting(
        "gap",
        one_of(*MARGIN_SOURCES),
        "gap",
        "gap: a fraction of the distance from a pilot's synthetic sets to real data; explicit: the values "
        "in study.margins.explicit; real: the real-vs-real spread (the strictest)",
    )
    fraction: float = setting(
        0.2,
        number_in(0, 1, low_open=True),
        "0.2",
        "with source=gap: the share of the synthetic-to-real gap that would matter (docs/study.md says why 0.2)",
    )
    explicit: Dict[str, float] = setting(
        help="with source=explicit: {metric key: margin in its units}, e.g. {lbp_l1: 0.01}", factory=dict
    )


@dataclass
class StudySettings:
    """The study's declared question and error rates."""

    factor: str = setting("n", (_is_name, "a factor of the sweep"), "n", "the primary factor (n, lr, generator, ...)")
    endpoints: List[str] = setting(
        rule=list_of((_is_name, "a metric key")),
        example="[fid, lbp_l1]",
        help="the primary endpoints: metric keys, one multiplicity family (Benjamini-Hochberg)",
        factory=paper_endpoints,
    )
    snapshot: Optional[int] = setting(
        None, or_null(int_at_least(1)), "1000", "the epoch of the primary test; null: the last snapshot"
    )
    alpha: float = setting(0.05, number_in(0, 1, low_open=True, high_open=True), "0.05", "significance level")
    power: float = setting(0.8, number_in(0, 1, low_open=True, high_open=True), "0.8", "the power a plan aims at")
    margins: MarginSettings = setting(factory=MarginSettings)
