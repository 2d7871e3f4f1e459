"""Fréchet Radiomics Distance through the optional ``frd-score`` package.

FRD compares radiomic features (pyradiomics) of the two sets; the package reads image
folders, so both sets are written to a temporary folder as PNG first. Unavailable, with
the command that installs it, when the package is missing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.features import MetricUnavailable
from fetal_dcgan.metrics.registry import NONNEGATIVE, Key, register_metric


@register_metric(
    "frd",
    "Fréchet Radiomics Distance (optional: pip install -e '.[frd]')",
    (Key("frd", "Fréchet distance between radiomic feature fits of S and R", better="lower", bounds=NONNEGATIVE),),
    default=False,  # optional packages
)
def _frd(ctx: ScoringContext) -> dict:
    try:
        from frd_score import frd
    except ImportError:
        raise MetricUnavailable(
            "FRD needs the optional radiomics packages: pip install -e '.[frd]' (frd-score and pyradiomics-bhklab)."
        ) from None
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        for name, images in (("fake", ctx.fake), ("real", ctx.real)):
            Path(tmp, name).mkdir()
            for i, image in enumerate(images[:, 0].numpy()):
                Image.fromarray(image).save(Path(tmp, name, f"{i:05d}.png"))
        value = frd.compute_frd([str(Path(tmp, "fake")), str(Path(tmp, "real"))])
    return {"scalars": {"frd": float(value)}}
