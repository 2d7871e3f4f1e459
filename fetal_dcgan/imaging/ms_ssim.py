"""MS-SSIM of many pairs drawn from one set of images.

The arithmetic is torchmetrics' (Gaussian window of 11 pixels, sigma 1.5, reflect padding,
K1 = 0.01, K2 = 0.03, similarity averaged over the whole map and contrast-structure over the
unpadded interior, ReLU on negative terms, 2 x 2 average pooling between scales). Two things
make it fast on a CPU: padding and the Gaussian together are one linear map per axis, so a
filtered image is two small matrix products; and an image's local mean and second moment
are filtered once per image, not once per pair, leaving one filtered product a pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def reflect_gaussian_matrix(size: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """(size, size) matrix M with M @ v = Gaussian filter of v reflect-padded by WINDOW // 2."""
    pad = WINDOW // 2
    offsets = torch.arange(WINDOW, dtype=torch.float64) - pad
    weights = torch.exp(-((offsets / SIGMA) ** 2) / 2)
    weights /= weights.sum()
    source = torch.arange(size)[:, None] + torch.arange(WINDOW)[None, :] - pad  # (size, WINDOW)
    source = source.abs()  # reflect at the start ...
    source = torch.where(source >= size, 2 * (size - 1) - source, source)  # ... and at the end
    matrix = torch.zeros(size, size, dtype=torch.float64)
    matrix.scatter_add_(1, source, weights.expand(size, WINDOW).clone())
    return matrix.to(dtype=dtype, device=device)


def _filtered(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return rows @ x @ cols.T


def _pair_term(
    x: torch.Tensor,
    moments: tuple[torch.Tensor, torch.Tensor],
    i: torch.Tensor,
    j: torch.Tensor,
    axes: tuple[torch.Tensor, torch.Tensor],
    whole_similarity: bool,
) -> torch.Tensor:
    """Per pair: the contrast-structure term over the interior, or (at the last scale) SSIM over
    the whole map, as torchmetrics averages them."""
    mean, second = moments
    mu_i, mu_j = mean[i], mean[j]
    cross = _filtered(x[i] * x[j], *axes) - mu_i * mu_j
    var_i = (second[i] - mu_i**2).clamp_(min=0)
    var_j = (second[j] - mu_j**2).clamp_(min=0)
    upper = 2 * cross + K2**2
    lower = var_i + var_j + K2**2
    if whole_similarity:
        luminance = (2 * mu_i * mu_j + K1**2) / (mu_i**2 + mu_j**2 + K1**2)
        return (luminance * upper / lower).flatten(1).mean(1)
    pad = WINDOW // 2
    return (upper / lower)[..., pad:-pad, pad:-pad].flatten(1).mean(1)


def ms_ssim_of_pairs(
    images: torch.Tensor, i: torch.Tensor, j: torch.Tensor, betas: Sequence[float], batch_size: int = 500
) -> torch.Tensor:
    """MS-SSIM of (images[i[k]], images[j[k]]) for uint8 images (N, C, H, W), data range 255;
    each scale needs more than WINDOW // 2 pixels a side."""
    x = images.float() / 255
    weights = torch.tensor(betas, dtype=x.dtype, device=x.device)
    terms = []
    for scale in range(len(betas)):
        height, width = x.shape[-2:]
        axes = (
            reflect_gaussian_matrix(height, x.dtype, x.device),
            reflect_gaussian_matrix(width, x.dtype, x.device),
        )
        moments = (_filtered(x, *axes), _filtered(x * x, *axes))
        last = scale == len(betas) - 1
        terms.append(
            torch.cat(
                [
                    _pair_term(x, moments, i[k : k + batch_size], j[k : k + batch_size], axes, last)
                    for k in range(0, len(i), batch_size)
                ]
            ).relu()
        )
        x = F.avg_pool2d(x, 2)
    return (torch.stack(terms) ** weights[:, None]).prod(0)
