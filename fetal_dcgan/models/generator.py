"""What the study needs of a generator, whichever it is (the DCGAN, the diffusion model).

Snapshots, TensorBoard grids and the metrics talk to this interface only: a seeded draw of
the generator's input (``noise``), images as uint8 from that input (``generate``), and how
far training has gone (``images_seen``, ``steps``), so a new generator needs nothing else
to join sweeps, reports and rating decks.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class ImageGenerator(Protocol):
    #: The generator's name in results (``metrics.csv``'s ``generator``, the report's factor).
    generator_name: str
    #: Real images shown in training so far (kimg = images_seen / 1000).
    images_seen: int
    #: An image depends on the others of its batch (BatchNorm with batch statistics), so sets
    #: are generated in full batches of the training size.
    batch_statistics: bool

    @property
    def steps(self) -> int:
        """Training iterations so far."""

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The input of ``n`` images, drawn from ``generator`` when given (so a seed fixes a set)."""

    def generate(self, z: torch.Tensor, batchnorm: str = "batch", generator: str = "ema") -> torch.Tensor:
        """uint8 images (N, 1, S, S) from ``noise``'s output, deterministically; ``generator``:
        ``ema`` (the weight average, where the model keeps one) or ``raw``; ``batchnorm``:
        the statistics BatchNorm layers use, where the model has them."""
