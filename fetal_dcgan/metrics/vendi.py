"""The Vendi score (Friedman and Dieng, TMLR 2023): the effective number of distinct images.

With unit-norm feature rows X of n images, the similarity matrix K = X X^T (k(x, x) = 1)
has eigenvalues whose shares lambda_i of n are a distribution; the Vendi score is the
exponential of its Shannon entropy, exp(-sum lambda_i ln lambda_i): 1 for n copies of one
image, n for n orthogonal ones. It is computed from the d x d matrix X^T X / n, which has
the same non-zero eigenvalues, as the authors' ``score_X``. The reference set's score is
the value to match.
"""

from __future__ import annotations

import math

import torch

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import SpaceOptions
from fetal_dcgan.metrics.registry import Key, register_metric


def vendi_score(features: torch.Tensor) -> float:
    """exp of the entropy of the eigenvalues of the cosine-similarity matrix divided by n."""
    x = torch.nn.functional.normalize(features.double(), dim=1)
    shares = torch.linalg.eigvalsh(x.T @ x / len(x))
    shares = shares[shares > 0]
    return math.exp(float(-(shares * shares.log()).sum()))


@register_metric(
    "vendi",
    "the Vendi score: the effective number of distinct images (Friedman and Dieng 2023)",
    (
        Key(
            "vendi",
            "exp of the entropy of the similarity matrix's eigenvalues: 1 for one image repeated, up to n",
            better="reference",
            reference_key="vendi_real",
            bounds=(1.0, None),
        ),
        Key("vendi_real", "the same for the reference set", role="reference"),
    ),
    options=SpaceOptions,
)
def _vendi(ctx: ScoringContext) -> dict:
    space = ctx.space()
    real = ctx.reference("vendi", lambda: vendi_score(ctx.features(space, ctx.real)), f"vendi-{space}")
    return {
        "scalars": {"vendi": vendi_score(ctx.features(space)), "vendi_real": real},
        "status": f"ok: features: {ctx.label(space)}",
    }
