"""Benchmarks: ``python -m fetal_dcgan.bench {train,metrics,suite,sweep,phases} [--json]``.

``train`` runs the same DCGAN steps twice in one process: as a bare PyTorch loop on
in-memory tensors, and through the project's real training path (the phantom datamodule
with augmentation, the LightningModule, the default logger), and reports both speeds and
their ratio. ``metrics`` scores a synthetic set against a reference set of phantom images with the
project's vectorised PSNR, MI/NMI and LBPv, then times scikit-image / scikit-learn on a
random sample of the same pairs, extrapolates their time to all pairs, and reports how
closely the two agree.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from fetal_dcgan.config import compose_config
from fetal_dcgan.data.preprocess import load_images
from fetal_dcgan.data.sources import phantom_images
from fetal_dcgan.imaging.psnr import pairwise_psnr
from fetal_dcgan.metrics.lbp import lbp_histograms
from fetal_dcgan.metrics.mutual_info import pairwise_mutual_information
from fetal_dcgan.models.dcgan import COMPILE_MODES
from fetal_dcgan.runs import PHASES, FinishedRun, RunLayout, read_csv, read_finished, run_setting
from fetal_dcgan.utils import default_cache_dir


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phantom_sets(n_fake: int, n_real: int, image_size: int, cache_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the first phantom images; synthetic: the last ones with added noise."""
    cache = cache_dir or default_cache_dir()
    files = phantom_images(cache, n_images=max(999, n_fake, n_real))
    images = load_images(files, image_size, "pad", cache)
    real = images[:n_real]
    noise = torch.randint(-12, 13, images[:n_fake].shape, generator=torch.Generator().manual_seed(0))
    fake = (images[-n_fake:].int() + noise).clamp(0, 255).to(torch.uint8)
    return fake, real


def bench_metrics(
    n_fake: int, n_real: int, image_size: int, sample_pairs: int, cache_dir: str | None, device: str = "cpu"
) -> dict:
    from skimage.feature import local_binary_pattern
    from skimage.metrics import normalized_mutual_information, peak_signal_noise_ratio
    from sklearn.metrics import mutual_info_score

    fake, real = phantom_sets(n_fake, n_real, image_size, cache_dir)
    timings = {}
    if device != "cpu":  # warm up: CUDA context, kernels, cuBLAS/cuSOLVER handles
        pairwise_psnr(fake[:8].to(device), real[:8].to(device))
        pairwise_mutual_information(fake[:8], real[:8], device)
        lbp_histograms(fake[:8], device=device)
    start = time.perf_counter()
    psnr = pairwise_psnr(fake.to(device), real.to(device)).cpu().numpy()
    timings["psnr"] = time.perf_counter() - start
    start = time.perf_counter()
    mi, nmi = pairwise_mutual_information(fake, real, device)
    timings["mi_nmi"] = time.perf_counter() - start
    start = time.perf_counter()
    # both sets timed, as in a real scoring
    hist_fake, _ = lbp_histograms(fake, device=device), lbp_histograms(real, device=device)
    timings["lbp"] = time.perf_counter() - start
    ours_total = sum(timings.values())

    rng = np.random.default_rng(0)
    pairs = list(zip(rng.integers(0, n_fake, sample_pairs), rng.integers(0, n_real, sample_pairs)))
    f, r = fake[:, 0].numpy(), real[:, 0].numpy()
    start = time.perf_counter()
    ref_psnr = [peak_signal_noise_ratio(r[j], f[i], data_range=255) for i, j in pairs]
    ref_mi = [mutual_info_score(f[i].ravel(), r[j].ravel()) / math.log(2) for i, j in pairs]
    ref_nmi = [normalized_mutual_information(f[i], r[j], bins=256) for i, j in pairs]
    per_pair = (time.perf_counter() - start) / sample_pairs
    lbp_images = min(100, n_fake)
    start = time.perf_counter()
    ref_hist = [
        np.bincount(local_binary_pattern(img, 8, 1).astype(int).ravel(), minlength=256) for img in f[:lbp_images]
    ]
    per_image_lbp = (time.perf_counter() - start) / lbp_images
    reference_total = per_pair * n_fake * n_real + per_image_lbp * (n_fake + n_real)

    def max_rel(ours: np.ndarray, theirs: list[float]) -> float:
        theirs = np.asarray(theirs)
        return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)))

    index = tuple(np.array(pairs).T)
    return {
        "n_fake": n_fake,
        "n_real": n_real,
        "image_size": image_size,
        "device": device,
        "pairs": n_fake * n_real,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "seconds_total": round(ours_total, 2),
        "reference_seconds_estimated": round(reference_total, 1),
        "reference_sampled_pairs": sample_pairs,
        "speedup": round(reference_total / ours_total, 1),
        "max_rel_diff": {
            "psnr": max_rel(psnr[index], ref_psnr),
            "mi": max_rel(mi[index], ref_mi),
            "nmi": max_rel(nmi[index], ref_nmi),
        },
        "lbp_histograms_identical": bool(np.array_equal(hist_fake[:lbp_images], np.stack(ref_hist))),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "torch_threads": torch.get_num_threads(),
    }


def random_inception_weights(path: Path) -> Path:
    """A file of random weights for torch-fidelity's FID Inception, so that FID and KID can be
    timed where the real weights cannot be downloaded: the same network and arithmetic, with
    meaningless values."""
    from unittest import mock

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with mock.patch("torch.load"), mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict"):
        network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="random")
    torch.save(network.state_dict(), path)
    return path


def bench_suite(overrides: list[str], n_fake: int, train_anatomy: bool) -> dict:
    """The configured metric suite (``conf/metrics``, on its device) on one synthetic set of the
    configured data, per metric: the first set a run scores (reference statistics computed) and
    a later one (statistics cached). The synthetic set is the pool's last images with noise, so
    memorisation values mean nothing here; only times do. ``train_anatomy``: train (or find)
    the head-measurement model first, timed, so ``anatomy`` is scored."""
    from hydra.utils import instantiate

    cfg = compose_config(overrides)
    datamodule = instantiate(cfg.data, n=None)
    datamodule.setup("fit")
    anatomy_seconds = None
    if train_anatomy and "anatomy" in cfg.metrics.names:
        from fetal_dcgan.anatomy.model import train_model

        start = time.perf_counter()
        train_model(cfg)
        anatomy_seconds = round(time.perf_counter() - start, 1)
    pool = datamodule.train_images
    noise = torch.randint(-12, 13, pool[-n_fake:].shape, generator=torch.Generator().manual_seed(0))
    fake = (pool[-n_fake:].int() + noise).clamp(0, 255).to(torch.uint8)
    suite = instantiate(cfg.metrics)
    scored = {}
    for label in ("first_set", "later_set"):
        result = suite.score(fake, datamodule.reference, pool, datamodule.held_out, datamodule.train_groups)
        scored[label] = {k: round(v, 2) for k, v in result.seconds.items()}
        scored[label]["total"] = round(sum(result.seconds.values()), 2)
    return {
        "overrides": overrides,
        "image_size": int(cfg.data.image_size),
        "n_fake": len(fake),
        "n_real": len(datamodule.reference),
        "device": suite.device,
        "anatomy_model_seconds": anatomy_seconds,
        "seconds": scored,
        "status": result.status,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "torch_threads": torch.get_num_threads(),
    }


def _bare_loop(
    images: torch.Tensor, model: L.LightningModule, batch_size: int, steps: int, warmup: int, device: str, options: dict
) -> float:
    """Images/s of a plain DCGAN loop (PyTorch DCGAN example) on tensors already in memory,
    with the project run's networks (built from the same config: nz, ngf, ndf, speed options)."""
    import torch.nn.functional as F

    model.configure_model()
    model = model.to(device)
    g, d = model.generator, model.discriminator
    autocast = torch.autocast(torch.device(device).type, torch.bfloat16, enabled=options["precision"] == "bf16-mixed")
    opt_g, opt_d = model.configure_optimizers()  # the same Adam settings as the training path
    data = images.to(device).float().div(127.5).sub(1)
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        real = data[torch.randint(0, len(data), (batch_size,), device=device)]
        with autocast:
            fake = g(torch.randn(batch_size, model.hparams.nz, device=device))
            logits_real, logits_fake = d(real), d(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                logits_real, torch.ones_like(logits_real)
            ) + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with autocast:
            logits = d(fake)
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """Times training batches from ``warmup`` on, inside a real Lightning fit."""

    def __init__(self, warmup: int, device: str):
        self.warmup, self.device = warmup, device
        self.batches, self.images, self.start = 0, 0, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.batches == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1
        if self.start is not None:
            self.images += len(batch)

    def images_per_s(self) -> float:
        _sync(self.device)
        return self.images / (time.perf_counter() - self.start)


def bench_train(
    image_size: int,
    batch_size: int,
    steps: int,
    warmup: int,
    accelerator: str,
    cache_dir: str | None,
    precision: str = "32-true",
    channels_last: bool = False,
    compile: str | None = None,
) -> dict:
    """Bare-loop and training-path images/s for the same networks, batch, data and options."""
    options = {"precision": precision, "channels_last": channels_last, "compile": compile}
    from hydra.utils import instantiate
    from omegaconf import open_dict

    device = "cuda" if accelerator == "gpu" else "cpu"
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_config(
            [
                "stabiliser=baseline",  # the bare loop is the paper's DCGAN step
                f"data.image_size={image_size}",
                f"data.batch_size={batch_size}",
                "model.ngf=64",
                "model.ndf=64",
                f"trainer.accelerator={accelerator}",
                f"trainer.precision={precision}",
                f"model.channels_last={channels_last}",
                f"model.compile={compile or 'null'}",
                "+trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
            ]
            + ([f"paths.cache_dir={cache_dir}"] if cache_dir else [])
        )
        with open_dict(cfg):
            cfg.paths.output_dir = out
        L.seed_everything(0, verbose=False)
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        bare = _bare_loop(datamodule.train_images, instantiate(cfg.model), batch_size, steps, warmup, device, options)
        timer = StepTimer(warmup, device)
        trainer = instantiate(
            cfg.trainer,
            max_steps=2 * (warmup + steps),
            max_epochs=-1,
            callbacks=[timer],
            logger=[instantiate(node) for node in cfg.logger.values()],
            enable_checkpointing=False,
        )
        # max_steps counts both optimizers' steps (two per batch) under manual optimization.
        trainer.fit(instantiate(cfg.model), datamodule=datamodule)
        project = timer.images_per_s()
    return {
        "image_size": image_size,
        "batch_size": batch_size,
        "steps": steps,
        "accelerator": accelerator,
        **{k: cfg.model[k] for k in ("nz", "ngf", "ndf")},
        **options,
        "bare_images_per_s": round(bare, 1),
        "images_per_s": round(project, 1),
        "ratio": round(project / bare, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "torch_threads": torch.get_num_threads(),
    }


class StopAfter(L.Callback):
    """Ends a fit after ``batches`` training batches, whatever a step means to the model."""

    def __init__(self, batches: int):
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        trainer.should_stop = trainer.should_stop or self.seen >= self.batches


def bare_dcgan64(steps: int = 40, warmup: int = 5) -> float:
    """The day's reference speed: images/s of the bare DCGAN64 loop (``bench train``'s)."""
    from hydra.utils import instantiate

    cfg = compose_config(["stabiliser=baseline", "data.batch_size=64", "model.ngf=64", "model.ndf=64"])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    plain = {"precision": "32-true", "channels_last": False, "compile": None}
    return _bare_loop(datamodule.train_images, instantiate(cfg.model), 64, steps, warmup, "cpu", plain)


def bench_generator(overrides: list[str], steps: int, warmup: int, n_samples: int, bare_steps: int = 40) -> dict:
    """Training images/s (a real Lightning fit) and sampling images/s (``write_sample_set``, as
    snapshots sample) of the configured generator on the CPU, beside the bare DCGAN64 loop."""
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from fetal_dcgan.callbacks.snapshot import write_sample_set

    bare = bare_dcgan64(bare_steps)
    cfg = compose_config([*overrides, "trainer.accelerator=cpu", "trainer.enable_model_summary=false"])
    with tempfile.TemporaryDirectory() as out, open_dict(cfg):
        cfg.paths.output_dir = out
        L.seed_everything(0, verbose=False)
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        model = instantiate(cfg.model)
        timer = StepTimer(warmup, "cpu")
        trainer = instantiate(
            cfg.trainer,
            max_epochs=-1,
            callbacks=[timer, StopAfter(warmup + steps)],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
        )
        trainer.fit(model, datamodule=datamodule)
        training = timer.images_per_s()
        start = time.perf_counter()
        write_sample_set(model, Path(out, "samples"), n_samples, 0, cfg.sampling.batch_size)
        sampling = n_samples / (time.perf_counter() - start)
    return {
        "overrides": overrides,
        "generator": model.generator_name,
        "image_size": int(cfg.data.image_size),
        "batch_size": int(cfg.data.batch_size),
        "parameters_m": round(sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6, 2),
        "bare_dcgan64_images_per_s": round(bare, 1),
        "training_images_per_s": round(training, 1),
        "sampling_images_per_s": round(sampling, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "torch_threads": torch.get_num_threads(),
    }


def bench_sweep(
    sizes: list[int],
    epochs: int,
    snapshots: list[int],
    n_images: int,
    image_size: int,
    accelerator: str,
    cache_dir: str | None,
    batch_size: int = 64,
) -> dict:
    """A scaled-down paper64 grid through ``train``: wall time per phase (train, sample, score)."""
    from omegaconf import open_dict

    from fetal_dcgan.pipeline import train

    phases = {"training": 0.0, "sampling": 0.0, "metrics": 0.0, "total": 0.0}
    by_metric: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as out:
        for n in sizes:
            cfg = compose_config(
                [
                    "experiment=paper64",
                    f"data.n={n}",
                    f"data.image_size={image_size}",
                    f"data.batch_size={batch_size}",
                    f"trainer.max_epochs={epochs}",
                    f"sampling.epochs=[{','.join(map(str, snapshots))}]",
                    f"sampling.n_images={n_images}",
                    f"trainer.accelerator={accelerator}",
                    "+trainer.enable_progress_bar=false",
                    "trainer.enable_model_summary=false",
                ]
                + ([f"paths.cache_dir={cache_dir}"] if cache_dir else [])
            )
            with open_dict(cfg):
                cfg.paths.output_dir = f"{out}/n={n}"
            start = time.perf_counter()
            record = train(cfg)
            phases["total"] += time.perf_counter() - start
            for phase in ("training", "sampling", "metrics"):
                phases[phase] += record.phase(phase)
            for name, seconds in record.metric_seconds.items():
                by_metric[name] = by_metric.get(name, 0.0) + seconds
    return {
        "sizes": sizes,
        "epochs": epochs,
        "snapshots": snapshots,
        "n_images": n_images,
        "image_size": image_size,
        "accelerator": accelerator,
        "sets": len(sizes) * len(set(snapshots) | {epochs}),
        "seconds": {k: round(v, 1) for k, v in phases.items()},
        "metric_seconds": {k: round(v, 1) for k, v in by_metric.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def sweep_phases(sweep_dir: str | Path, full_epochs: int | None = None, full_sets: int | None = None) -> dict:
    """Per-phase seconds summed over a real sweep's finished runs (their ``finished.json``),
    for timing the actual command, e.g. ``-m experiment=paper64 trainer=gpu jobs=shared_gpu``.
    With ``full_epochs`` and ``full_sets``, each run is also extrapolated linearly to that many
    epochs and scored sets (training time per epoch and scoring time per set held), and the
    grid's wall time to the longest such run (the runs side by side, as ``jobs=shared_gpu``)."""
    runs = [(d, read_finished(d)) for d in sorted(Path(sweep_dir).glob("*/"))]
    runs = [(d, r) for d, r in runs if r]
    if not runs:
        raise SystemExit(f"error: no finished runs (*/finished.json) under {sweep_dir}: run the sweep first.")
    records = [r for _, r in runs]
    phases = {phase: round(sum(r.phase(phase) for r in records), 1) for phase in PHASES}
    metrics: dict[str, float] = {}
    for record in records:
        for name, seconds in record.metric_seconds.items():
            metrics[name] = metrics.get(name, 0.0) + seconds
    result = {
        "sweep_dir": str(sweep_dir),
        "runs": len(records),
        "seconds_summed_over_runs": phases,
        "metric_seconds_summed_over_runs": {k: round(v, 1) for k, v in metrics.items()},
        "longest_run_seconds": round(max(r.phase("fit") for r in records), 1),
    }
    if full_epochs and full_sets:
        result["extrapolated"] = _extrapolate(
            [(run_setting(d, "data.n"), len(read_csv(RunLayout(d).metrics_csv)), r) for d, r in runs],
            full_epochs,
            full_sets,
        )
    return result


def _extrapolate(runs: list[tuple[int | None, int, FinishedRun]], full_epochs: int, full_sets: int) -> dict:
    """Each run (its n, its scored sets, its record) at ``full_epochs`` and ``full_sets``, in seconds."""
    per_run = []
    for n, sets, record in runs:
        training = record.phase("training") * full_epochs / record.max_epochs
        scoring = (record.phase("sampling") + record.phase("metrics")) * full_sets / max(sets, 1)
        per_run.append(
            {
                "n": n,
                "epochs": record.max_epochs,
                "sets": sets,
                "training_s": round(training, 1),
                "sampling_and_metrics_s": round(scoring, 1),
            }
        )
    return {
        "full_epochs": full_epochs,
        "full_sets": full_sets,
        "per_run": per_run,
        "wall_s_side_by_side": round(max(r["training_s"] + r["sampling_and_metrics_s"] for r in per_run), 1),
    }


#: Named speed options for ``bench train --variants``: each one's settings over 32-bit NCHW eager.
VARIANTS = {
    "fp32": {},
    "bf16": {"precision": "bf16-mixed"},
    "channels_last": {"channels_last": True},
    "bf16_channels_last": {"precision": "bf16-mixed", "channels_last": True},
    "compile": {"compile": "default"},
    "bf16_compile": {"precision": "bf16-mixed", "compile": "default"},
}


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int, nargs="+", default=[64], help="one or more sizes, each measured")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="timed steps, after warm-up steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--precision", choices=("32-true", "bf16-mixed"), default="32-true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", choices=COMPILE_MODES[1:], default=None)
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, help="measure each of these named options instead of the flags"
    )
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", action="store_true", help="print JSON only (one line a measurement)")


def _run_train(args: argparse.Namespace) -> None:
    plain = {"precision": "32-true", "channels_last": False, "compile": None}
    flags = {"precision": args.precision, "channels_last": args.channels_last, "compile": args.compile}
    settings = [{**plain, **VARIANTS[v]} for v in args.variants] if args.variants else [flags]
    for image_size in args.image_size:
        for options in settings:
            result = bench_train(
                image_size, args.batch_size, args.steps, args.warmup, args.accelerator, args.cache_dir, **options
            )
            print(json.dumps(result) if args.json else _train_summary(result), flush=True)


def _train_summary(result: dict) -> str:
    return (
        f"DCGAN{result['image_size']}, batch {result['batch_size']}, nz {result['nz']}, ngf {result['ngf']}, "
        f"ndf {result['ndf']}, {result['accelerator']}, {result['precision']}, "
        f"channels_last={result['channels_last']}, compile={result['compile']}, {result['steps']} timed steps:\n"
        f"  bare PyTorch loop      {result['bare_images_per_s']:8.1f} images/s\n"
        f"  fetal_dcgan training   {result['images_per_s']:8.1f} images/s   ratio {result['ratio']:.3f}\n"
        f"  peak RSS {result['peak_rss_mb']:.0f} MB"
    )


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="100,300", help="training-set sizes (comma separated)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--snapshots", default="2,4")
    parser.add_argument("--n-images", type=int, default=800)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="training batch (paper64 itself uses the notebooks' 10, slower on a CPU)",
    )
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", action="store_true")


def _run_sweep(args: argparse.Namespace) -> None:
    result = bench_sweep(
        [int(v) for v in args.sizes.split(",")],
        args.epochs,
        [int(v) for v in args.snapshots.split(",")],
        args.n_images,
        args.image_size,
        args.accelerator,
        args.cache_dir,
        args.batch_size,
    )
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"paper64 grid scaled down: n in {result['sizes']}, {args.epochs} epochs, {result['sets']} sets of "
        f"{args.n_images} images, {args.accelerator}:"
    )
    for phase in ("training", "sampling", "metrics", "total"):  # total includes data set-up
        print(f"  {phase:<9} {result['seconds'][phase]:8.1f} s")
    print("  metrics: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["metric_seconds"].items()))


def _phases_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir")
    parser.add_argument("--full-epochs", type=int, help="extrapolate each run to this many epochs ...")
    parser.add_argument("--full-sets", type=int, help="... and this many scored sets")


def _run_phases(args: argparse.Namespace) -> None:
    print(json.dumps(sweep_phases(args.sweep_dir, args.full_epochs, args.full_sets)))


def _metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-fake", type=int, default=800)
    parser.add_argument("--n-real", type=int, default=800)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--sample-pairs", type=int, default=300, help="pairs timed with the reference libraries")
    parser.add_argument("--device", default="cpu", help="where the project's metrics run: cpu, cuda")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", action="store_true", help="print JSON only")


def _run_metrics(args: argparse.Namespace) -> None:
    result = bench_metrics(args.n_fake, args.n_real, args.image_size, args.sample_pairs, args.cache_dir, args.device)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['pairs']} pairs of {args.image_size}x{args.image_size} images "
        f"({args.n_fake} synthetic x {args.n_real} reference)"
    )
    for name, seconds in result["seconds"].items():
        print(f"  {name:<8} {seconds:8.2f} s")
    print(
        f"  total    {result['seconds_total']:8.2f} s   "
        f"(scikit-image/scikit-learn loop: ~{result['reference_seconds_estimated']:.0f} s "
        f"from {args.sample_pairs} sampled pairs; {result['speedup']}x)"
    )
    print(f"  max relative difference on sampled pairs: {result['max_rel_diff']}")
    print(f"  LBP histograms identical to scikit-image: {result['lbp_histograms_identical']}")
    print(f"  peak RSS {result['peak_rss_mb']:.0f} MB")


def _suite_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="training's Hydra overrides, e.g. experiment=paper64")
    parser.add_argument("--n-fake", type=int, default=800)
    parser.add_argument("--train-anatomy", action="store_true", help="train (or find) the anatomy model first")
    parser.add_argument(
        "--random-inception",
        action="store_true",
        help="time FID/KID with random Inception weights (values meaningless)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON only")


def _run_suite(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.random_inception and random_inception_weights(Path(tmp, "random-inception.pth"))
        overrides = args.overrides + ([f"metrics.features.weights_path={weights}"] if weights else [])
        result = bench_suite(overrides, args.n_fake, args.train_anatomy)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['n_fake']} synthetic vs {result['n_real']} reference images, {result['image_size']} px, "
        f"metrics on {result['device']}:"
    )
    for label, seconds in result["seconds"].items():
        print(f"  {label:<10} " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))
    if result["anatomy_model_seconds"] is not None:
        print(f"  head-measurement model trained or found in {result['anatomy_model_seconds']} s")
    print("  not ok: " + (", ".join(f"{k}: {v}" for k, v in result["status"].items() if v != "ok") or "none"))


def _generator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="training's Hydra overrides, e.g. experiment=ddpm64")
    parser.add_argument("--steps", type=int, default=20, help="timed training batches, after warm-up ones")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=64, help="images sampled as a snapshot samples them")
    parser.add_argument("--bare-steps", type=int, default=40, help="timed steps of the bare DCGAN64 loop")
    parser.add_argument("--json", action="store_true", help="print JSON only")


def _run_generator(args: argparse.Namespace) -> None:
    result = bench_generator(args.overrides, args.steps, args.warmup, args.n_samples, args.bare_steps)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['generator']} ({result['parameters_m']} M trainable parameters), {result['image_size']} px, "
        f"batch {result['batch_size']}, cpu:\n"
        f"  training   {result['training_images_per_s']:8.1f} images/s\n"
        f"  sampling   {result['sampling_images_per_s']:8.2f} images/s\n"
        f"  bare DCGAN64 loop (the day's reference) {result['bare_dcgan64_images_per_s']:.1f} images/s"
    )


#: Each subcommand: its help, the arguments it takes and what it runs.
COMMANDS = {
    "train": ("bare PyTorch loop vs the project's training path, same settings", _train_arguments, _run_train),
    "sweep": ("a scaled-down paper64 grid, timed per phase", _sweep_arguments, _run_sweep),
    "phases": (
        "per-phase seconds of a finished real sweep, from its finished.json files",
        _phases_arguments,
        _run_phases,
    ),
    "metrics": ("all-pairs PSNR, MI/NMI and LBPv against scikit-image/scikit-learn", _metrics_arguments, _run_metrics),
    "suite": ("the configured metric suite on one synthetic set, per metric", _suite_arguments, _run_suite),
    "generator": (
        "training and sampling images/s of the configured generator (e.g. experiment=ddpm64)",
        _generator_arguments,
        _run_generator,
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fetal_dcgan.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (summary, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=summary))
    args = parser.parse_args(argv)
    COMMANDS[args.command][2](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
