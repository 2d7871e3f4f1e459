"""The random number generators' states in every full checkpoint.

A run resumed from ``checkpoints/last.ckpt`` then draws the same latent vectors, batch
orders and augmentations (data and DiffAugment) as a run that never stopped, so resuming
continues the same run instead of a different one from the same weights.
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch


class RngState(L.Callback):
    """Saves torch (CPU and CUDA), numpy and Python RNG states with the checkpoint; restores them on resume."""

    def state_dict(self) -> dict:
        # numpy's key array as a tensor: checkpoints load with torch.load(weights_only=True)
        name, keys, position, has_gauss, gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        name, keys, position, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        random.setstate(state["python"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
