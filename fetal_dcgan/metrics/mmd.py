"""Maximum mean discrepancy with a Gaussian RBF kernel, as CMMD (Jayasumana et al., CVPR 2024).

FD assumes Gaussian features and is biased by the set size; MMD assumes neither. As CMMD
does with CLIP embeddings, the features are scaled to unit norm, the kernel is
exp(-|x - y|^2 / (2 sigma^2)) with sigma = ``bandwidth`` (CMMD's 10) and the value is
multiplied by ``scale`` (CMMD's 1000). The estimate is the unbiased one (each set's kernel
mean leaves out the diagonal); CMMD's published code averages over the diagonal too, which
adds (2 - k_xx - k_yy) / n-sized terms that do not vanish for equal distributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import SpaceOptions
from fetal_dcgan.metrics.registry import Key, register_metric
from fetal_dcgan.rules import number_in, setting


def _kernel(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    return torch.exp(-torch.cdist(x, y).square() / (2 * bandwidth**2))


def _within(x: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Mean kernel value over pairs of distinct rows."""
    n = len(x)
    return (_kernel(x, x, bandwidth).sum() - n) / (n * (n - 1))


def unbiased_mmd2(fake: torch.Tensor, real: torch.Tensor, bandwidth: float) -> float:
    """The unbiased MMD^2 between two sets of rows (each at least 2)."""
    cross = _kernel(fake, real, bandwidth).mean()
    return float(_within(fake, bandwidth) + _within(real, bandwidth) - 2 * cross)


@dataclass
class MmdOptions(SpaceOptions):
    bandwidth: float = setting(10.0, number_in(0, 1e6, low_open=True), "10", "the RBF kernel's sigma (CMMD's 10)")
    scale: float = setting(1000.0, number_in(0, 1e9, low_open=True), "1000", "the value is multiplied by this")


@register_metric(
    "mmd",
    "unbiased RBF-kernel MMD^2 on unit-norm features, as CMMD (Jayasumana et al. 2024)",
    (Key("mmd", "unbiased MMD^2 x scale between the synthetic and reference features", better="lower"),),
    options=MmdOptions,
)
def _mmd(ctx: ScoringContext) -> dict:
    space, o = ctx.space(), ctx.options
    fake, real = (
        torch.nn.functional.normalize(x.double(), dim=1) for x in (ctx.features(space), ctx.features(space, ctx.real))
    )
    return {
        "scalars": {"mmd": o.scale * unbiased_mmd2(fake.to(ctx.device), real.to(ctx.device), o.bandwidth)},
        "status": f"ok: features: {ctx.label(space)}",
    }
