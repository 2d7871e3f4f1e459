"""The head's ellipse from a segmentation, and the measurements HC18 takes from it.

At 64 px a head is about 20 pixels across, so one pixel of boundary is 5-10 % of its
circumference: the ellipse is fitted to the probability map's weighted moments (a filled
ellipse of semi-axes a, b has second central moments a²/4 and b²/4), which keeps the
sub-pixel information a thresholded mask throws away. Only the largest connected
component above the threshold counts, grown by a pixel to keep its soft edge. All of it
runs on whole batches; the only per-image step is the connected-component labelling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import ndimage

from fetal_dcgan.data.preprocess import fitted_scale
from fetal_dcgan.imaging.ellipse import ramanujan


def largest_components(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Per image (N, H, W), the largest connected region above ``threshold``, grown by one pixel."""
    regions = np.zeros(prob.shape, bool)
    grow = ndimage.generate_binary_structure(2, 2)
    for i, p in enumerate(prob):
        labels, count = ndimage.label(p > threshold)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            regions[i] = ndimage.binary_dilation(labels == 1 + int(np.argmax(sizes)), grow)
    return regions


def ellipse_masks(e: dict[str, np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterise ellipses (pixel centres inside) as bool masks (N, height, width)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = xx[None] - e["cx"][:, None, None], yy[None] - e["cy"][:, None, None]
    c, s = np.cos(e["angle"])[:, None, None], np.sin(e["angle"])[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (dx * c + dy * s) / e["a"][:, None, None]
        v = (-dx * s + dy * c) / e["b"][:, None, None]
    return u * u + v * v <= 1


def fit_ellipses(prob: torch.Tensor | np.ndarray, threshold: float = 0.5, min_pixels: int = 4) -> dict[str, np.ndarray]:
    """Ellipses of heads in probability maps (N, 1, H, W) in [0, 1]: centre (px), semi-axes
    a >= b (px), major-axis angle (radians in (-pi/2, pi/2], y down), ``fit_iou`` (IoU of the
    thresholded region and its ellipse: 1 for an ellipse) and ``found`` (a region of at
    least ``min_pixels``); NaN where nothing is found."""
    p = np.asarray(prob.detach().cpu().numpy() if torch.is_tensor(prob) else prob, np.float64)[:, 0]
    height, width = p.shape[-2:]
    regions = largest_components(p, threshold)
    core = regions & (p > threshold)
    w = p * regions
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    m00 = w.sum((1, 2))
    found = core.sum((1, 2)) >= min_pixels
    safe = np.where(found, m00, 1.0)
    cx, cy = (w * xx).sum((1, 2)) / safe, (w * yy).sum((1, 2)) / safe
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    cov = (
        np.stack(
            [
                np.stack([(w * dx * dx).sum((1, 2)), (w * dx * dy).sum((1, 2))], -1),
                np.stack([(w * dx * dy).sum((1, 2)), (w * dy * dy).sum((1, 2))], -1),
            ],
            -2,
        )
        / safe[:, None, None]
    )
    values, vectors = np.linalg.eigh(cov)  # ascending
    a, b = 2 * np.sqrt(np.clip(values[:, 1], 0, None)), 2 * np.sqrt(np.clip(values[:, 0], 0, None))
    angle = np.arctan2(vectors[:, 1, 1], vectors[:, 0, 1])
    angle = np.where(angle > np.pi / 2, angle - np.pi, np.where(angle <= -np.pi / 2, angle + np.pi, angle))
    out = {"found": found, "cx": cx, "cy": cy, "a": a, "b": b, "angle": angle}
    for k in ("cx", "cy", "a", "b", "angle"):
        out[k] = np.where(found, out[k], np.nan)
    inside = ellipse_masks(out, height, width)
    union = (inside | core).sum((1, 2))
    out["fit_iou"] = np.where(found, (inside & core).sum((1, 2)) / np.maximum(union, 1), np.nan)
    return out


def hc_pixels(e: dict[str, np.ndarray]) -> np.ndarray:
    """Head circumference in pixels of the measured resolution (Ramanujan, as HC18)."""
    return ramanujan(e["a"], e["b"])


def perimeter_mm(e: dict[str, np.ndarray], mm_x: np.ndarray, mm_y: np.ndarray, points: int = 720) -> np.ndarray:
    """Circumference in mm of each ellipse when a pixel is ``mm_x`` wide and ``mm_y`` tall
    (unequal after ``fit=squash``): the length of the ellipse traced at ``points`` points."""
    t = np.linspace(0, 2 * np.pi, points + 1)[None]
    c, s = np.cos(e["angle"])[:, None], np.sin(e["angle"])[:, None]
    x = e["a"][:, None] * np.cos(t) * c - e["b"][:, None] * np.sin(t) * s
    y = e["a"][:, None] * np.cos(t) * s + e["b"][:, None] * np.sin(t) * c
    return np.hypot(np.diff(x, axis=1) * np.asarray(mm_x)[:, None], np.diff(y, axis=1) * np.asarray(mm_y)[:, None]).sum(
        1
    )


def pixel_mm_at(sizes: np.ndarray, pixel_mm: np.ndarray, size: int, fit: str) -> tuple[np.ndarray, np.ndarray]:
    """Width and height in mm of a pixel after fitting images of ``sizes`` (width, height)
    with ``pixel_mm`` pixels into ``size`` x ``size`` with ``fit``."""
    scale = np.array([fitted_scale(int(w), int(h), size, fit) for w, h in sizes]).reshape(-1, 2)
    return pixel_mm / scale[:, 0], pixel_mm / scale[:, 1]


@dataclass
class PlausibleRange:
    """What a head looks like in real annotated images: the ranges of its area (share of
    the image), axis ratio b/a and centre (share of width and height), widened by a margin,
    and the least IoU of a segmentation with its own ellipse."""

    area: tuple[float, float]
    axis_ratio: tuple[float, float]
    cx: tuple[float, float]
    cy: tuple[float, float]
    min_fit_iou: float

    @classmethod
    def of(cls, e: dict[str, np.ndarray], size: int, margin: float, min_fit_iou: float) -> "PlausibleRange":
        """The ranges of annotated heads ``e`` measured at ``size`` px, each widened on both
        sides by ``margin`` times its width."""

        def span(values: np.ndarray) -> tuple[float, float]:
            lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
            return lo - margin * (hi - lo), hi + margin * (hi - lo)

        q = quantities(e, size)
        return cls(span(q["area"]), span(q["axis_ratio"]), span(q["cx"]), span(q["cy"]), float(min_fit_iou))

    def contains(self, e: dict[str, np.ndarray], size: int) -> np.ndarray:
        q = quantities(e, size)
        ok = e["found"] & (e["fit_iou"] >= self.min_fit_iou)
        for name in ("area", "axis_ratio", "cx", "cy"):
            lo, hi = getattr(self, name)
            ok &= (q[name] >= lo) & (q[name] <= hi)
        return ok

    def to_dict(self) -> dict:
        return asdict(self)


def quantities(e: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Size-free descriptions of each head: area and centre as shares of the image, b/a."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "area": np.pi * e["a"] * e["b"] / size**2,
            "axis_ratio": e["b"] / e["a"],
            "cx": e["cx"] / size,
            "cy": e["cy"] / size,
        }
