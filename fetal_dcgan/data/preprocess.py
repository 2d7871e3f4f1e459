"""Read images of any common format as 8-bit gray and fit them into a square.

The result of preprocessing a whole dataset is one uint8 tensor (N, 1, S, S), cached on
disk under a hash of the files (path, size, mtime) and the settings, so a dataset is
decoded and resized once and then lives in memory as a tensor.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from fetal_dcgan.errors import ConfigError, DataError, UserError
from fetal_dcgan.runs import RunLayout, run_of, run_setting
from fetal_dcgan.utils import atomic_save, check_image_size

#: Bump when reading or resizing changes, so cached tensors are rebuilt.
PREPROCESS_VERSION = 1
FIT_MODES = ("pad", "crop", "squash")
#: antialias: PIL bilinear, which low-pass filters when shrinking; tensor: bilinear on a float
#: tensor without antialiasing, as torchvision's Resize on tensors did in the paper's notebooks.
RESIZE_MODES = ("antialias", "tensor")


def read_gray(path: str | Path) -> np.ndarray:
    """Decode an image as 8-bit grayscale (RGB via ITU-R 601 luma; 16-bit scaled by 255/65535)."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                maximum = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
                return np.clip(np.rint(arr * (255.0 / maximum)), 0, 255).astype(np.uint8)
            if img.mode == "F":
                arr = np.asarray(img, dtype=np.float64)
                return np.clip(np.rint(arr * 255.0 if arr.max() <= 1.0 else arr), 0, 255).astype(np.uint8)
            return np.asarray(
                img.convert("RGB").convert("L") if img.mode in ("P", "RGBA", "LA", "CMYK") else img.convert("L")
            )
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"Cannot read image {path}: {exc}. The file is corrupt or truncated; "
            "replace it or remove it from the data folder."
        ) from exc


def fitted_scale(width: int, height: int, size: int, fit: str) -> tuple[float, float]:
    """How ``fit_square`` scales an image of ``width`` x ``height`` along x and y (the
    resized width over the original, likewise for height): what a pixel measures afterwards."""
    if fit == "squash":
        return size / width, size / height
    scale = (min if fit == "pad" else max)(size / width, size / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return new_w / width, new_h / height


def resample(image: np.ndarray, width: int, height: int, resize: str = "antialias") -> np.ndarray:
    """Bilinear resize of a uint8 gray image, antialiased (PIL) or not (a float tensor, as
    ``transforms.Resize`` on a tensor with ``antialias=False``), back to uint8."""
    if resize == "antialias":
        return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    x = torch.from_numpy(image).float().div(255)[None, None]
    x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=False)
    return x[0, 0].mul(255).round().clamp(0, 255).to(torch.uint8).numpy()


def fit_square(image: np.ndarray, size: int, fit: str, resize: str = "antialias") -> np.ndarray:
    """Resize a gray image to ``size`` x ``size``.

    pad: keep the aspect ratio and letterbox with black; crop: fill the square and cut the
    centre; squash: stretch (the paper's behaviour, which distorts the head's shape).
    ``resize``: one of ``RESIZE_MODES``.
    """
    h, w = image.shape
    sx, sy = fitted_scale(w, h, size, fit)
    new_w, new_h = round(w * sx), round(h * sy)
    resized = resample(image, new_w, new_h, resize)
    if fit == "squash":
        return resized
    if fit == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return resized[top : top + size, left : left + size]
    canvas = np.zeros((size, size), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def check_settings(image_size: int, fit: str, resize: str = "antialias") -> None:
    if fit not in FIT_MODES:
        raise ConfigError(f"data.fit={fit!r} is not a fit mode: use one of {', '.join(FIT_MODES)}.")
    if resize not in RESIZE_MODES:
        raise ConfigError(
            f"data.resize={resize!r}: use antialias (PIL bilinear) or tensor (no antialiasing, as "
            "the paper's notebooks)."
        )
    check_image_size(image_size)


def _cache_key(
    files: list[Path], image_size: int, fit: str, read: Callable = read_gray, resize: str = "antialias"
) -> str:
    stats = [(str(p.resolve()), (s := p.stat()).st_size, s.st_mtime_ns) for p in files]
    payload = {"version": PREPROCESS_VERSION, "size": image_size, "fit": fit, "files": stats, "resize": resize}
    if read is not read_gray:
        payload["read"] = f"{read.__module__}.{read.__qualname__}"
    payload = json.dumps(payload)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def read_image_set(
    files: list[Path],
    size: int | None = None,
    fit: str = "pad",
    workers: int | None = None,
    read: Callable[[Path], np.ndarray] = read_gray,
    resize: str = "antialias",
) -> torch.Tensor:
    """Images as one uint8 tensor (N, 1, H, W): fitted into ``size`` x ``size``, or, with
    no size, as they are, which requires every image to have the same size. ``read``
    decodes one file into a uint8 array (annotation masks have their own)."""

    def load(path: Path) -> np.ndarray:
        image = read(path)
        return image if size is None else fit_square(image, size, fit, resize)

    with ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        arrays = list(pool.map(load, files))
    if size is None:
        first = arrays[0].shape
        for path, array in zip(files, arrays):
            if array.shape != first:
                raise DataError(
                    f"Image sizes differ: {path} is {array.shape[1]}x{array.shape[0]} but {files[0]} is "
                    f"{first[1]}x{first[0]}. Resize them to a common size (evaluate: --resize 64)."
                )
    return torch.from_numpy(np.stack(arrays)).unsqueeze(1)


def load_images(
    files: list[Path],
    image_size: int,
    fit: str,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    read: Callable[[Path], np.ndarray] = read_gray,
    resize: str = "antialias",
) -> torch.Tensor:
    """All ``files`` fitted to ``image_size`` as uint8 (N, 1, S, S), from the cache when current."""
    check_settings(image_size, fit, resize)
    cache = None
    if cache_dir is not None:
        key = _cache_key(files, image_size, fit, read, resize)
        cache = Path(cache_dir).expanduser() / "preprocessed" / f"{key}.pt"
        if cache.is_file():
            return torch.load(cache, weights_only=True)
    images = read_image_set(files, image_size, fit, workers, read, resize)
    if cache is not None:
        atomic_save(images, cache)
    return images


class Preparation(NamedTuple):
    """How real images are prepared to match synthetic sets, and where that was read."""

    fit: str
    size: int | None
    resize: str
    source: str


def preprocessing(
    folders: list[Path], fit: str | None, size: int | None, fit_flag: str = "--fit", size_flag: str = "--resize"
) -> Preparation:
    """How real images must be prepared to match synthetic sets: ``data.fit``,
    ``data.image_size`` and ``data.resize`` from the runs' ``config.yaml`` (so nothing but the
    generator tells the two apart), which options given by hand must agree with; for
    folders that are not runs, the options as given (fit: pad, resize: antialias by default)."""
    found = {}
    for run in {run_of(f) for f in folders} - {None}:  # a config.yaml's folder is its own run
        if RunLayout(run).config.is_file():  # a run that stopped before training wrote it has no settings
            found[run] = tuple(run_setting(run, f"data.{key}") for key in ("fit", "image_size", "resize"))
    if len(set(found.values())) > 1:
        raise UserError(
            "The synthetic sets were trained with different preprocessing: "
            + "; ".join(f"{run}: fit={f}, image_size={s}, resize={r}" for run, (f, s, r) in sorted(found.items()))
            + ". Use sets of one preprocessing at a time."
        )
    if not found:
        return Preparation(fit or "pad", size, "antialias", "as given")  # data.fit's and data.resize's defaults
    run_fit, run_size, run_resize = next(iter(found.values()))
    for flag, given, wanted, key in (
        (fit_flag, fit, run_fit, "data.fit"),
        (size_flag, size, run_size, "data.image_size"),
    ):
        if given is not None and given != wanted:
            raise UserError(
                f"{flag} {given} differs from the run's {key}={wanted} (in "
                f"{RunLayout(next(iter(found))).config}): real images must be prepared as the generator's "
                f"training images were. Drop {flag} or give {flag} {wanted}."
            )
    source = f"from {RunLayout(next(iter(found))).config}"
    return Preparation(run_fit, run_size, run_resize or "antialias", source)
