"""Hashes of uint8 image sets: cache keys for statistics, and which images a model saw."""

from __future__ import annotations

import hashlib

import torch


def images_digest(images: torch.Tensor | None) -> str:
    """A hash of a uint8 image set's shape and pixels ("none" for no set)."""
    if images is None:
        return "none"
    h = hashlib.sha256(str(tuple(images.shape)).encode())
    h.update(images.contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:24]


def image_digests(images: torch.Tensor) -> list[str]:
    """A short hash of each uint8 image's pixels: which images a model was trained on."""
    array = images.contiguous().cpu().numpy()
    return [hashlib.sha256(image.tobytes()).hexdigest()[:16] for image in array]
