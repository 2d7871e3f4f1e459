"""Mutual information (bits) and normalised MI between every synthetic and reference image.

Both come from entropies of 256-bin grey-level histograms: MI = H(s) + H(r) - H(s, r)
and NMI = (H(s) + H(r)) / H(s, r) (scikit-image's definition). A joint histogram per pair
would be 65,536 bins, mostly empty; instead each pair's pixels are coded as s * 256 + r,
sorted (numpy's radix sort for 16-bit keys, in parallel threads), and the sum of c log c
over runs of equal codes gives the joint entropy from only the bins that occur. On a GPU
the same sort-and-count runs in torch, a block of pairs at a time.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from fetal_dcgan.metrics.context import ScoringContext
from fetal_dcgan.metrics.registry import Key, register_metric


def _sum_c_log_c(sorted_codes: np.ndarray) -> np.ndarray:
    """For each row of sorted codes, sum over distinct values of count * ln(count)."""
    rows, width = sorted_codes.shape
    starts = np.ones(sorted_codes.shape, dtype=bool)
    starts[:, 1:] = sorted_codes[:, 1:] != sorted_codes[:, :-1]
    positions = np.flatnonzero(starts)
    counts = np.diff(np.append(positions, rows * width)).astype(np.float64)
    row_first = np.searchsorted(positions, np.arange(rows) * width)
    return np.add.reduceat(counts * np.log(counts), row_first)


def entropies(images: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each uint8 image's grey-level histogram, shape (N,)."""
    flat = images.reshape(len(images), -1)
    n_images, n = flat.shape
    offsets = np.arange(n_images)[:, None] * 256
    counts = np.bincount((flat + offsets).ravel(), minlength=n_images * 256).reshape(n_images, 256)
    c = counts.astype(np.float64)
    clogc = np.where(counts > 0, c * np.log(np.maximum(c, 1.0)), 0.0)
    return math.log(n) - clogc.sum(1) / n


#: Pixel pairs coded per block; with its temporaries a block takes about 20 bytes a pair,
#: so each worker thread stays near 350 MB whatever the image and set sizes.
BLOCK_PAIRS = 2**24


def _blocks(n_fake: int, n_real: int, pixels: int, block_pairs: int) -> list[tuple[slice, slice]]:
    """(synthetic rows, reference rows) of blocks of about ``block_pairs`` pixel pairs that
    together cover every pair of images."""
    r_chunk = min(n_real, max(1, block_pairs // pixels))
    s_chunk = max(1, block_pairs // (r_chunk * pixels))
    return [
        (slice(i, i + s_chunk), slice(j, j + r_chunk))
        for i in range(0, n_fake, s_chunk)
        for j in range(0, n_real, r_chunk)
    ]


def _pair_codes(s_block, r_block):
    """Each pair's pixels coded as s * 256 + r (s already shifted), one row per pair."""
    return (s_block[:, None, :] | r_block[None, :, :]).reshape(-1, s_block.shape[1])


def joint_entropies(fake: np.ndarray, real: np.ndarray, workers: int | None = None) -> np.ndarray:
    """(len(fake), len(real)) joint entropies (nats) of the 256x256 grey-level histograms."""
    s = fake.reshape(len(fake), -1).astype(np.uint16) << 8
    r = real.reshape(len(real), -1).astype(np.uint16)
    n = s.shape[1]
    out = np.empty((len(s), len(r)))

    def block(rows: tuple[slice, slice]) -> None:
        codes = _pair_codes(s[rows[0]], r[rows[1]])
        codes.sort(axis=1, kind="stable")  # radix sort for 16-bit keys
        out[rows] = (math.log(n) - _sum_c_log_c(codes) / n).reshape(out[rows].shape)

    with ThreadPoolExecutor(workers or torch.get_num_threads()) as pool:  # cpu_threads when set
        list(pool.map(block, _blocks(len(s), len(r), n, BLOCK_PAIRS)))
    return out


def _sum_c_log_c_torch(sorted_codes: torch.Tensor) -> torch.Tensor:
    """``_sum_c_log_c`` for a tensor on any device (on the CPU numpy's version is 1.4x faster)."""
    rows, width = sorted_codes.shape
    starts = torch.ones_like(sorted_codes, dtype=torch.bool)
    starts[:, 1:] = sorted_codes[:, 1:] != sorted_codes[:, :-1]
    positions = starts.flatten().nonzero().squeeze(1)
    counts = torch.diff(positions, append=positions.new_tensor([rows * width])).double()
    return torch.zeros(rows, dtype=torch.float64, device=sorted_codes.device).index_add_(
        0, positions // width, counts * counts.log()
    )


#: Pixel pairs per block on a GPU: int32 codes, their sort and its indices, about 1 GB.
DEVICE_BLOCK_PAIRS = 2**26


def joint_entropies_torch(fake: torch.Tensor, real: torch.Tensor) -> np.ndarray:
    """``joint_entropies`` computed with torch on the tensors' device (a GPU)."""
    s = fake.reshape(len(fake), -1).int() << 8
    r = real.reshape(len(real), -1).int()
    n = s.shape[1]
    out = torch.empty(len(s), len(r), dtype=torch.float64, device=s.device)
    for rows in _blocks(len(s), len(r), n, DEVICE_BLOCK_PAIRS):
        codes = _pair_codes(s[rows[0]], r[rows[1]]).sort(dim=1).values
        out[rows] = (math.log(n) - _sum_c_log_c_torch(codes) / n).view(out[rows].shape)
    return out.cpu().numpy()


def pairwise_mutual_information(
    fake: torch.Tensor, real: torch.Tensor, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """(len(fake), len(real)) matrices of MI in bits and of NMI (NaN where both images are
    constant, since NMI is then 0 / 0). The joint entropies, the bulk of the work, run on
    ``device``: numpy's radix sort on the CPU (3x faster there than torch's sort), torch elsewhere."""
    s, r = fake.reshape(len(fake), -1), real.reshape(len(real), -1)
    if torch.device(device).type == "cpu":
        h_sr = joint_entropies(s.cpu().numpy(), r.cpu().numpy())
    else:
        h_sr = joint_entropies_torch(s.to(device), r.to(device))
    s, r = s.cpu().numpy(), r.cpu().numpy()
    marginal = entropies(s)[:, None] + entropies(r)[None, :]
    mi = np.maximum(marginal - h_sr, 0.0) / math.log(2)  # clipped at 0 like scikit-learn
    nmi = np.full_like(h_sr, np.nan)
    np.divide(marginal, h_sr, out=nmi, where=h_sr > 0)
    return mi, nmi


def _nan_max(values: np.ndarray) -> np.ndarray:
    """Row maxima ignoring NaN; NaN for rows that are all NaN."""
    filled = np.where(np.isnan(values), -np.inf, values).max(1)
    return np.where(np.isneginf(filled), np.nan, filled)


def _nan_mean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def mutual_information(fake: torch.Tensor, real: torch.Tensor, device: str | torch.device = "cpu") -> dict:
    """All-pairs MI in bits and NMI; per synthetic image its best match of each."""
    mi, nmi = pairwise_mutual_information(fake, real, device)
    best_nmi = _nan_max(nmi)
    return {
        "scalars": {
            "mi_mean": float(mi.mean()),
            "mi_best_mean": float(mi.max(1).mean()),
            "nmi_mean": _nan_mean(nmi),
            "nmi_best_mean": _nan_mean(best_nmi),
        },
        "per_image": {"mi_best": mi.max(1), "mi_best_ref": mi.argmax(1), "nmi_best": best_nmi},
    }


@register_metric(
    "mi",
    "mutual information and normalised MI of grey levels over all pairs",
    (
        Key("mi_mean", "mean MI over every pair (s, r)", better="higher", unit="bits", plotted=True),
        Key("mi_best_mean", "per synthetic image its highest MI over R, averaged", better="higher", unit="bits"),
        Key("nmi_mean", "mean NMI (H(s) + H(r)) / H(s, r) over every pair, in [1, 2]", better="higher", plotted=True),
        Key("nmi_best_mean", "per synthetic image its highest NMI over R, averaged", better="higher"),
        Key("mi_best", "highest MI of the image over R", level="image", better="higher", unit="bits"),
        Key("mi_best_ref", "index in R of that match", level="image", role="diagnostic"),
        Key("nmi_best", "highest NMI of the image over R", level="image", better="higher"),
    ),
)
def _mi(ctx: ScoringContext) -> dict:
    return mutual_information(ctx.fake, ctx.real, ctx.device)
