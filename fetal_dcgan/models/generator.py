"""What the study needs of a generator, whichever it is (the DCGAN, the diffusion model).

Snapshots, TensorBoard grids and the metrics talk to this interface only: a seeded draw of
the generator's input (``noise``), images as uint8 from that input (``generate``), and how
far training has gone (``images_seen``, ``steps``), so a new generator needs nothing else
to join sweeps, reports and rating decks. ``TrainingProgress`` and ``standard_normal`` are
the parts both models share.
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


class TrainingProgress:
    """A LightningModule mixin: ``images_seen`` kept in every checkpoint, so kimg goes on
    counting after a resume."""

    images_seen: int = 0

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["images_seen"] = self.images_seen

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.images_seen = int(checkpoint.get("images_seen", 0))


def standard_normal(shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) samples on ``device``, drawn from ``generator`` (on its own device) when given."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)
