"""Train a DCGAN from a composed config: ``train(cfg)``, shared by every command that trains.

A pure function of the config (compose, instantiate, fit), as lightning-hydra-template's
``train``; ``python -m fetal_dcgan.train`` is its Hydra wrapper, and ``bench`` and the tests
call it directly.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from fetal_dcgan.callbacks.metrics import SnapshotMetrics
from fetal_dcgan.callbacks.snapshot import SampleSnapshots
from fetal_dcgan.checks import check_config
from fetal_dcgan.errors import ConfigError, UserError
from fetal_dcgan.runs import FinishedRun, RunLayout, last_checkpoint, read_finished, write_finished

log = logging.getLogger(__name__)

# The dataset lives in memory as one tensor and is batched by indexing: worker processes
# would only add copies, so Lightning's advice to add dataloader workers does not apply.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


def checkpoint_to_resume(cfg: DictConfig, run_dir: Path) -> str | None:
    """The checkpoint to continue from: ``ckpt_path``, or with ``resume`` the run's last one."""
    if cfg.ckpt_path:
        path = Path(cfg.ckpt_path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"ckpt_path={path} does not exist: give the path of a .ckpt file, e.g. <run dir>/checkpoints/last.ckpt."
            )
        return str(path)
    last = last_checkpoint(run_dir)
    if cfg.resume and last.is_file():
        log.info("Continuing from %s", last)
        return str(last)
    return None


def instantiate(node: DictConfig, **kwargs):
    """Hydra's ``instantiate``, letting a ``UserError`` raised by a constructor through
    unwrapped, so the command line prints its message and exits with status 2."""
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, UserError):
            raise exc.__cause__ from None
        raise


def _instantiate_all(group: DictConfig | None) -> list:
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def check_devices(accelerator: str | None, metrics_device: str | None) -> None:
    """A GPU asked for where PyTorch sees none: say so, instead of Lightning's 'No supported
    gpu backend found!' or a metric failing at every snapshot."""
    if torch.cuda.is_available():
        return
    if accelerator in ("gpu", "cuda"):
        raise ConfigError(
            "trainer=gpu, but PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False): "
            "use trainer=auto (the default: the GPU when there is one) or trainer=cpu."
        )
    if str(metrics_device).startswith("cuda"):
        raise ConfigError(
            f"metrics.device={metrics_device}, but PyTorch sees no CUDA GPU here: "
            "use metrics.device=auto (the default) or metrics.device=cpu."
        )


def share_machine(gpu_memory_fraction: float | None, cpu_threads: int | None) -> None:
    """Limit this run's share of the GPU's memory and of the CPU cores, so several runs of
    a sweep can work side by side (``jobs=shared_gpu``); the values are checked as declared."""
    if gpu_memory_fraction is not None and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(gpu_memory_fraction)
    if cpu_threads is not None:
        torch.set_num_threads(cpu_threads)


def cluster_plugins() -> list:
    """Under Slurm, Lightning would requeue the job itself on a signal; Hydra's submitit
    launcher already requeues it (and the run resumes from its last checkpoint), so
    Lightning's own requeueing is turned off."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def slurm_job() -> str | None:
    """This process's Slurm job as ``jobid`` or ``arrayjob_task``; None outside Slurm."""
    env = os.environ
    if "SLURM_ARRAY_JOB_ID" in env:
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '')}"
    return env.get("SLURM_JOB_ID")


def configured_suite(options: dict | None = None):
    """Training's metric suite (``conf/metrics``, composed as training composes it) with
    ``options`` (dotted keys; None values left as configured) set on top and checked."""
    from fetal_dcgan.config import compose_config

    cfg = compose_config()
    for key, value in (options or {}).items():  # typed values, set on the composed config: no quoting
        if value is not None:
            OmegaConf.update(cfg, key, value, merge=False)
    check_config(cfg)
    check_devices(None, cfg.metrics.device)
    return hydra_instantiate(cfg.metrics)


def train(cfg: DictConfig) -> FinishedRun:
    """Compose the parts from ``cfg``, fit, and return the run's ``finished.json`` record.

    Everything is built and the data read and checked before the first file is written
    to the run directory, so bad input leaves nothing that looks like a result. With
    ``resume`` (the default) a run directory that already finished is left as it is.
    """
    run_dir = Path(cfg.paths.output_dir)
    finished = read_finished(run_dir)
    if cfg.resume and finished and finished.max_epochs == cfg.trainer.max_epochs:
        log.info("%s already finished %d epochs: skipping it.", run_dir, finished.max_epochs)
        return finished
    check_config(cfg)
    check_devices(cfg.trainer.get("accelerator"), cfg.metrics.device)  # trainer: Lightning's arguments
    share_machine(cfg.gpu_memory_fraction, cfg.cpu_threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    callbacks = _instantiate_all(cfg.callbacks)
    ckpt_path = checkpoint_to_resume(cfg, run_dir)
    datamodule.setup("fit")
    trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=_instantiate_all(cfg.logger) or False,
        plugins=cluster_plugins() or None,
    )
    datamodule.write_manifest(run_dir)
    OmegaConf.save(cfg, RunLayout(run_dir).config, resolve=True)
    job = slurm_job()
    log.info("Run directory: %s%s", run_dir, f" (Slurm job {job})" if job else "")
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    trainer.save_checkpoint(last_checkpoint(run_dir))  # the final state, so the run can be extended
    seconds = {"fit": time.perf_counter() - start, "sampling": 0.0, "metrics": 0.0}
    by_metric: dict[str, float] = {}
    for callback in callbacks:  # phases timed by the callbacks that ran inside fit
        if isinstance(callback, SampleSnapshots):
            seconds["sampling"] += callback.seconds
        elif isinstance(callback, SnapshotMetrics):
            seconds["metrics"] += callback.seconds
            by_metric.update(callback.seconds_by_metric)
    seconds["training"] = seconds["fit"] - seconds["sampling"] - seconds["metrics"]
    return write_finished(run_dir, cfg.trainer.max_epochs, seconds, by_metric)
