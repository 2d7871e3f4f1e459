"""FD extrapolated to an infinite synthetic set (Chong and Forsyth, CVPR 2020).

FD is biased upwards by the synthetic set's size, and the bias depends on the generator,
so two generators scored on sets of one size can rank differently at another. FD-infinity
computes FD against the whole reference set for random subsets of the synthetic features
of ``points`` sizes, from ``smallest`` of the set to all of it, fits FD = FD_inf + k / N
by least squares, and reports the intercept, as the authors' ``calculate_FID_infinity``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import MetricUnavailable, SpaceOptions
from fetal_dcgan.metrics.fid import FrechetReference
from fetal_dcgan.metrics.registry import Key, register_metric
from fetal_dcgan.rules import int_at_least, number_in, setting


def subset_sizes(n: int, points: int, smallest: float) -> np.ndarray:
    """``points`` sizes spaced evenly from ``smallest`` of ``n`` to ``n`` (each at least 2)."""
    return np.unique(np.linspace(max(2, round(smallest * n)), n, points).astype(int))


def fd_infinity(
    fake: torch.Tensor, real: torch.Tensor, points: int, smallest: float, seed: int, device: str = "cpu"
) -> tuple[float, float, np.ndarray]:
    """(FD_inf, the fit's slope, the subset sizes): one seeded random subset per size."""
    sizes = subset_sizes(len(fake), points, smallest)
    if len(sizes) < 2:
        raise MetricUnavailable(f"FD-infinity needs at least two subset sizes; {len(fake)} images give {len(sizes)}")
    reference, order = FrechetReference(real, device), np.random.default_rng(seed).permutation(len(fake))
    fds = np.array([reference(fake[torch.from_numpy(order[:size])]) for size in sizes])
    slope, intercept = np.polyfit(1.0 / sizes, fds, 1)
    return float(intercept), float(slope), sizes


@dataclass
class FdInfinityOptions(SpaceOptions):
    points: int = setting(15, int_at_least(2), "15", "subset sizes FD is computed at (the authors' 15)")
    smallest: float = setting(
        0.25, number_in(0, 1, low_open=True, high_open=True), "0.25", "the smallest subset, a share of the set"
    )


@register_metric(
    "fd_infinity",
    "FD extrapolated to an infinite synthetic set (Chong and Forsyth 2020)",
    (
        Key("fd_inf", "FD-infinity: the intercept of FD against 1/N over subsets of the synthetic set", better="lower"),
        Key("fd_inf_slope", "the fit's slope k of FD = FD_inf + k / N: the size bias", role="diagnostic"),
    ),
    options=FdInfinityOptions,
    default=False,  # 15 eigendecompositions a set: seconds each in Inception's 2048 dimensions on a CPU
)
def _fd_infinity(ctx: ScoringContext) -> dict:
    space = ctx.space()
    fake, real = ctx.features(space), ctx.features(space, ctx.real)
    o = ctx.options
    value, slope, sizes = fd_infinity(fake, real, o.points, o.smallest, ctx.seed, ctx.device)
    return {
        "scalars": {"fd_inf": value, "fd_inf_slope": slope},
        "status": f"ok: features: {ctx.label(space)}; {len(sizes)} sizes {sizes[0]}-{sizes[-1]}",
    }
