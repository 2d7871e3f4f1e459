"""Local binary pattern vectors (LBPv): 256-bin histograms of 8-neighbour LBP codes.

Codes are computed for a whole batch at once and match scikit-image's
``local_binary_pattern(image, P=8, R=1, method="default")`` bit for bit: the same
neighbour offsets (rounded to 5 decimals), the same bilinear interpolation in the same
floating-point order, zeros outside the image, and bit i set when neighbour i >= centre.
The set's LBPv is the sum of its images' histograms normalised to 1; the study's named
elements V8, V20, V143, V240 are the bins of those code values. The paper's Fig. 2 plots
them as rLBPv - sLBPv in codes per image (the difference of fractions times the pixels of
an image): ``lbp_vNN_diff``, the score the sweep tests and ratings are related to.
"""

from __future__ import annotations

import numpy as np
import torch

from fetal_dcgan.metrics.bootstrap import bootstrap_ci
from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.registry import NONNEGATIVE, Key, MetricOptions, interval, register_metric

NAMED_ELEMENTS = (8, 20, 143, 240)
N_CODES = 256
#: The set-level vectors (in each snapshot's .npz): rLBPv and sLBPv.
REFERENCE_VECTOR, SYNTHETIC_VECTOR = "lbp_reference", "lbp_synthetic"


def lbp_codes(images: torch.Tensor, radius: float = 1.0) -> torch.Tensor:
    """LBP code (0..255) of every pixel of a batch of gray images (N, [1,] H, W) -> int64."""
    x = images.reshape(-1, *images.shape[-2:]).double()
    n, h, w = x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))  # zeros outside, room for ceil(r + R)
    angles = 2 * np.pi * np.arange(8, dtype=np.float64) / 8
    rows_off = np.round(-radius * np.sin(angles), 5)
    cols_off = np.round(radius * np.cos(angles), 5)
    r_grid = np.arange(h, dtype=np.float64)[:, None] * np.ones((1, w))
    c_grid = np.ones((h, 1)) * np.arange(w, dtype=np.float64)[None, :]
    codes = torch.zeros((n, h, w), dtype=torch.int64, device=x.device)

    def on_device(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(x.device)

    def pixel(rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        return padded[:, on_device(rows.astype(np.int64) + 2), on_device(cols.astype(np.int64) + 2)]

    for bit, (dr_off, dc_off) in enumerate(zip(rows_off, cols_off)):
        rr, cc = r_grid + dr_off, c_grid + dc_off
        minr, maxr, minc, maxc = np.floor(rr), np.ceil(rr), np.floor(cc), np.ceil(cc)
        dr, dc = on_device(rr - minr), on_device(cc - minc)
        top = (1 - dc) * pixel(minr, minc) + dc * pixel(minr, maxc)
        bottom = (1 - dc) * pixel(maxr, minc) + dc * pixel(maxr, maxc)
        texture = (1 - dr) * top + dr * bottom
        codes |= ((texture - x) >= 0).long() << bit
    return codes


def lbp_histograms(images: torch.Tensor, batch_size: int = 256, device: str | torch.device = "cpu") -> np.ndarray:
    """Per-image LBP code counts, (N, 256) int64, computed on ``device`` in batches to bound memory."""
    out = np.empty((len(images), N_CODES), np.int64)
    for start in range(0, len(images), batch_size):
        codes = lbp_codes(images[start : start + batch_size].to(device))
        offsets = torch.arange(len(codes), device=codes.device)[:, None, None] * N_CODES
        counts = torch.bincount((codes + offsets).flatten(), minlength=len(codes) * N_CODES)
        out[start : start + len(codes)] = counts.reshape(-1, N_CODES).cpu().numpy()
    return out


def lbp_vector(histograms: np.ndarray) -> np.ndarray:
    """A set's LBPv: its images' code counts summed and normalised to sum 1."""
    total = histograms.sum(0).astype(np.float64)
    return total / total.sum()


def l1_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Sum of absolute differences along the last axis."""
    return np.abs(p - q).sum(-1)


def chi2_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Symmetric chi-square distance sum((p - q)^2 / (p + q)) over bins where p + q > 0."""
    total = p + q
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, (p - q) ** 2 / safe, 0.0).sum(-1)


def lbp(
    fake: torch.Tensor,
    real_histograms: np.ndarray,
    fake_histograms: np.ndarray | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """rLBPv vs sLBPv: distances, named elements and per-image distances to rLBPv."""
    fake_hist = lbp_histograms(fake, device=device) if fake_histograms is None else fake_histograms
    reference, synthetic = lbp_vector(real_histograms), lbp_vector(fake_hist)
    per_image = fake_hist / fake_hist.sum(1, keepdims=True)
    scalars = {
        "lbp_l1": float(l1_distance(synthetic, reference)),
        "lbp_chi2": float(chi2_distance(synthetic, reference)),
    }
    pixels = int(np.prod(fake.shape[-2:]))
    for code in NAMED_ELEMENTS:
        scalars[f"lbp_v{code}"] = float(synthetic[code])
        scalars[f"lbp_v{code}_reference"] = float(reference[code])
        scalars[f"lbp_v{code}_diff"] = float((reference[code] - synthetic[code]) * pixels)
    return {
        "scalars": scalars,
        "per_image": {
            "lbp_l1": l1_distance(per_image, reference),
            "lbp_chi2": chi2_distance(per_image, reference),
            **{f"lbp_v{code}": per_image[:, code] for code in NAMED_ELEMENTS},
        },
        "vectors": {
            REFERENCE_VECTOR: reference,
            SYNTHETIC_VECTOR: synthetic,
            "lbp_abs_diff": np.abs(synthetic - reference),
            "lbp_per_image": fake_hist,
        },
    }


def _element_keys() -> list[Key]:
    out = []
    for code in NAMED_ELEMENTS:
        out += [
            Key(
                f"lbp_v{code}_diff",
                f"rLBPv - sLBPv at element {code} in codes per image (the paper's units; "
                "0: as often as in the reference)",
                unit="codes per image",
                plotted=True,
            ),
            Key(
                f"lbp_v{code}",
                f"element {code} of sLBPv (a fraction of all codes)",
                role="diagnostic",
                better="reference",
                reference_key=f"lbp_v{code}_reference",
            ),
            Key(f"lbp_v{code}_reference", f"element {code} of rLBPv", role="reference"),
        ]
    return out


@register_metric(
    "lbp",
    "local binary pattern vectors: sLBPv against rLBPv",
    (
        Key("lbp_l1", "L1 distance between sLBPv and rLBPv", better="lower", plotted=True, bounds=(0.0, 2.0)),
        Key(
            "lbp_chi2",
            "symmetric chi-square distance between sLBPv and rLBPv",
            better="lower",
            plotted=True,
            bounds=NONNEGATIVE,
        ),
        *_element_keys(),
        *interval("lbp_l1"),
        Key("lbp_l1", "L1 distance of the image's own LBP histogram to rLBPv", level="image", better="lower"),
        Key("lbp_chi2", "chi-square distance of the image's histogram to rLBPv", level="image", better="lower"),
        *(
            Key(f"lbp_v{code}", f"element {code} of the image's LBP histogram", level="image")
            for code in NAMED_ELEMENTS
        ),
        Key(
            REFERENCE_VECTOR,
            "rLBPv: the reference set's 256-bin LBP histogram, normalised to 1",
            level="vector",
            role="reference",
        ),
        Key(SYNTHETIC_VECTOR, "sLBPv: the synthetic set's LBP histogram, normalised to 1", level="vector"),
        Key("lbp_abs_diff", "|sLBPv - rLBPv| per code", level="vector"),
        Key("lbp_per_image", "each synthetic image's 256-bin LBP code counts", level="image-vector"),
    ),
    options=MetricOptions,
)
def _lbp(ctx: ScoringContext) -> dict:
    real_hist = ctx.reference("lbp", lambda: lbp_histograms(ctx.real, device=ctx.device), "lbp-P8-R1-default")
    out = lbp(ctx.fake, real_hist, device=ctx.device)
    fake_hist, reference = out["vectors"]["lbp_per_image"], out["vectors"][REFERENCE_VECTOR]
    low, high = bootstrap_ci(
        lambda i: l1_distance(lbp_vector(fake_hist[i]), reference),
        len(fake_hist),
        ctx.resamples(),
        ctx.seed,
        estimate=out["scalars"]["lbp_l1"],
    )
    out["scalars"].update(lbp_l1_ci_low=low, lbp_l1_ci_high=high)
    return out
