"""Positive and negative controls of the memorisation and diversity keys: sets whose answer
is known, built from real images, scored like any synthetic set (``bench controls``, the
table in docs/metrics.md, and the test that asserts each key's direction).

Given training images and two disjoint halves of held-out real images (one is the
reference the metrics compare with, the other supplies new images), the controls are the
training images themselves (a copycat generator), augmented copies (training's flips and
rotations and mild noise), half copies and half new images, new real images (must pass),
and a collapsed set (one new image repeated with mild noise).
"""

from __future__ import annotations

import math

import torch

from fetal_dcgan.data.augment import flip_rotate, to_unit
from fetal_dcgan.metrics.registry import SET_SIZES, key_names

#: Grey levels of the mild noise added to augmented copies and to the collapsed set.
NOISE = 2.0
CONTROLS = ("copies", "augmented copies", "half copies", "held-out real", "collapsed")


def _noisy(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=generator) * NOISE
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def augmented(images: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Each image mirrored at random and rotated within [-degrees, degrees], with mild noise."""
    angles = (torch.rand(len(images), generator=generator) * 2 - 1) * math.radians(degrees)
    flips = torch.rand(len(images), generator=generator) < 0.5
    moved = (flip_rotate(to_unit(images), angles, flips) * 255).round().to(torch.uint8)
    return _noisy(moved, generator)


def control_sets(train: torch.Tensor, new: torch.Tensor, n: int, degrees: float, seed: int = 0) -> dict:
    """The five controls of ``n`` images each (uint8, N x 1 x H x W): from the training images
    and from ``new`` real images that neither training nor the reference holds (with fewer
    than ``n`` of either, images repeat, which the diversity keys read as duplicates)."""
    generator = torch.Generator().manual_seed(seed)
    copies = train[torch.arange(n) % len(train)]
    half = n // 2
    return {
        "copies": copies,
        "augmented copies": augmented(copies, degrees, generator),
        "half copies": torch.cat([copies[:half], new[torch.arange(n - half) % len(new)]]),
        "held-out real": new[torch.arange(n) % len(new)],
        "collapsed": _noisy(new[:1].expand(n, *new.shape[1:]), generator),
    }


def table_keys() -> list[str]:
    """Every set-level key of the checked metrics, in registration order."""
    sizes = {k.name for k in SET_SIZES}
    return [name for name in key_names(CONTROL_METRICS, level="set") if name not in sizes]


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    """One row per control, one column per key of the checked metrics."""
    columns = table_keys()
    lines = ["| control | " + " | ".join(f"`{k}`" for k in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, scores in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores.get(k, float('nan')):.3g}" for k in columns) + " |")
    return "\n".join(lines) + "\n"


#: The metrics whose keys the controls check.
CONTROL_METRICS = ("memorisation", "copying", "diversity")


def score_controls(
    train: torch.Tensor, held_out: torch.Tensor, n: int, degrees: float, seed: int = 0, **options: dict
) -> dict[str, dict[str, float]]:
    """Every control's set-level scores. The held-out images are halved: the first half is
    the reference (and the memorisation audit's and C_T's new real images), the second
    supplies the controls' new images. ``options``: metric sections, e.g. ``copying={...}``."""
    from fetal_dcgan.metrics.suite import MetricSuite

    half = len(held_out) // 2
    reference, new = held_out[:half], held_out[half:]
    options = {"memorisation": {"degrees": degrees}, **options}
    suite = MetricSuite(list(CONTROL_METRICS), device="cpu", ci_resamples=0, seed=seed, **options)
    return {
        name: suite.score(fake, reference, train, reference).scalars
        for name, fake in control_sets(train, new, n, degrees, seed).items()
    }


def phantom_controls(n_train: int, n_held_out: int, n: int, image_size: int, degrees: float = 10.0) -> dict:
    """``score_controls`` on the built-in phantom: training images from its pool, held-out
    ones from its test split."""
    from fetal_dcgan.data.preprocess import load_images
    from fetal_dcgan.data.sources import phantom_images
    from fetal_dcgan.utils import default_cache_dir

    cache = default_cache_dir()
    train = load_images(phantom_images(cache, n_images=999)[:n_train], image_size, "pad", cache)
    test = phantom_images(cache, n_images=999, split="test", n_test=n_held_out)
    return score_controls(train, load_images(test, image_size, "pad", cache), n, degrees)


if __name__ == "__main__":
    print(markdown_table(phantom_controls(n_train=400, n_held_out=800, n=400, image_size=64)), end="")
