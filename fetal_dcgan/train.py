"""Train a DCGAN: ``python -m fetal_dcgan.train [overrides]`` (``-m`` for a sweep).

``train(cfg)`` does the work and can be called from Python or tests with a composed
config; ``main`` is only the Hydra wrapper that turns user errors into a clear message.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fetal_dcgan.errors import ConfigError, UserError

log = logging.getLogger(__name__)

# The dataset lives in memory as one tensor and is batched by indexing: worker processes
# would only add copies, so Lightning's advice to add dataloader workers does not apply.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


def checkpoint_to_resume(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint to continue from: ``ckpt_path``, or with ``resume`` the run's last one."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"ckpt_path={path} does not exist: give the path of a .ckpt file, e.g. "
                              "<run dir>/checkpoints/last.ckpt.")
        return str(path)
    if cfg.get("resume"):
        last = run_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            return str(last)
        log.warning("resume=true but %s has no checkpoint yet: starting from scratch.", run_dir)
    return None


def _instantiate_all(group: DictConfig | None) -> list:
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def train(cfg: DictConfig) -> dict[str, str]:
    """Compose the parts from ``cfg``, fit, and return where the results are.

    Everything is built and the data read and checked before the first file is written
    to the run directory, so bad input leaves nothing that looks like a result.
    """
    run_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    ckpt_path = checkpoint_to_resume(cfg, run_dir)
    datamodule.setup("fit")
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=_instantiate_all(cfg.get("logger")) or False)
    datamodule.write_manifest(run_dir)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    log.info("Run directory: %s", run_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return {"run_dir": str(run_dir), "samples": str(run_dir / "samples"),
            "checkpoints": str(run_dir / "checkpoints")}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except UserError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
