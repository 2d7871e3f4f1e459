"""Frechet distances that need no download: in a fixed random network's features, and
relative to the distance between two halves of the real set.

``fd_random`` is the Frechet distance in the features of a fixed, seeded, randomly
initialised network: not FID, comparable only with other ``fd_random`` values.
``relative_fd`` divides FD(S, R_a) by FD(R_b, R_a) for disjoint random halves of the
reference set, in the best feature space available: about 1 for a set as good as real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import SpaceOptions
from fetal_dcgan.metrics.fid import bootstrap_fd, frechet_distance
from fetal_dcgan.metrics.registry import NONNEGATIVE, Key, ci_share, interval, register_metric


def relative_fd(fake: torch.Tensor, real: torch.Tensor, seed: int = 0) -> float:
    """FD(S, R_a) / FD(R_b, R_a) for disjoint random halves R_a, R_b of the real set, with S
    subsampled to |R_b|: both distances then have the same sample sizes, so a synthetic set
    as good as real data scores about 1 (FD's small-sample bias cancels)."""
    rng = np.random.default_rng(seed)
    order = torch.from_numpy(rng.permutation(len(real)))
    half_a, half_b = real[order[: len(real) // 2]], real[order[len(real) // 2 :]]
    m = min(len(fake), len(half_b))
    subset = torch.from_numpy(rng.choice(len(fake), m, replace=False))
    baseline = frechet_distance(half_b[:m], half_a)
    return frechet_distance(fake[subset], half_a) / baseline if baseline > 0 else float("nan")


@dataclass
class FdOptions(SpaceOptions):
    ci_share: float = ci_share(0.25)


@register_metric(
    "fd",
    "Frechet distance in random-network features, and relative to real-vs-real",
    (
        Key(
            "fd_random",
            "Frechet distance in the features of a fixed random network (not FID)",
            better="lower",
            bounds=NONNEGATIVE,
        ),
        *interval("fd_random"),
        Key(
            "relative_fd",
            "FD(S, R_a) / FD(R_b, R_a) for two halves of R, in the best features available; about 1 for real data",
            better="lower",
            plotted=True,
            bounds=NONNEGATIVE,
        ),
    ),
    options=FdOptions,
)
def _fd(ctx: ScoringContext) -> dict:
    fake, real = ctx.features("random-conv"), ctx.features("random-conv", ctx.real)
    scalars = {"fd_random": frechet_distance(fake, real)}
    scalars["fd_random_ci_low"], scalars["fd_random_ci_high"] = bootstrap_fd(ctx, fake, real, scalars["fd_random"])
    space = ctx.space()
    scalars["relative_fd"] = relative_fd(ctx.features(space), ctx.features(space, ctx.real), ctx.seed)
    return {"scalars": scalars, "status": f"ok: relative_fd in {ctx.label(space)} features"}
