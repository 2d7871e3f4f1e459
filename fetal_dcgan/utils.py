"""Small helpers shared across the package."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from fetal_dcgan.errors import ConfigError, UserError

#: The project's Hydra config folder.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def default_cache_dir() -> str:
    """The cache folder of commands that do not compose the Hydra config: ``paths.cache_dir``
    of ``conf/paths/default.yaml`` (``FETAL_DCGAN_CACHE``, else the default written there)."""
    from omegaconf import OmegaConf

    return str(OmegaConf.load(CONF_DIR / "paths" / "default.yaml").cache_dir)


def atomic_save(obj, path: str | Path) -> None:
    """``torch.save`` through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_npz(path: str | Path, **arrays) -> None:
    """``numpy.savez`` through a temporary file and a rename."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write a text file through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_image_size(image_size: int) -> int:
    """The DCGAN doubles from 4x4 up to the image, so sizes are powers of two from 32."""
    if image_size < 32 or image_size & (image_size - 1):
        raise ConfigError(
            f"data.image_size={image_size} is not supported: the DCGAN needs a power of two "
            "of at least 32 (the study uses 64, 128 or 256)."
        )
    return image_size


def read_table_with(path: str | Path, columns: tuple[str, ...], what: str):
    """A CSV (a pandas DataFrame) that must hold ``columns``; ``what`` says what such a file
    is and where one comes from, for the error that names the missing ones."""
    import pandas as pd

    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table]
    if missing:
        raise UserError(f"{path} lacks the columns {missing}: {what}")
    return table
