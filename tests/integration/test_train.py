"""End to end: real Lightning training from a composed config, resume, the CLI, sweeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fetal_dcgan.callbacks.snapshot import write_sample_set
from fetal_dcgan.errors import UserError
from fetal_dcgan.models.dcgan import DCGAN
from fetal_dcgan.pipeline import train

from helpers import REPO, TINY, TINY_ANY_SOURCE, compose_config, noise_image, write_image


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fetal_dcgan.train", *args],
        cwd=cwd,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def sample_files(run: Path, epoch: int) -> list[Path]:
    return sorted((run / "samples" / f"epoch={epoch:04d}").glob("*.png"))


def test_short_run_leaves_checkpoints_tensorboard_and_samples(tmp_path):
    run = tmp_path / "run"
    train(compose_config(run, TINY))
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.ckpt", "epoch=0002.ckpt", "epoch=0003.ckpt"}
    for epoch in (2, 3):
        files = sample_files(run, epoch)
        assert [f.name for f in files] == [f"{i:04d}.png" for i in range(10)]
        with Image.open(files[0]) as img:
            assert img.mode == "L" and img.size == (32, 32)
    assert not list((run / "samples").glob(".*"))  # no temporary folders left
    # Same latents for every snapshot: sets differ, but only because the weights do.
    assert not np.array_equal(
        np.asarray(Image.open(sample_files(run, 2)[0])), np.asarray(Image.open(sample_files(run, 3)[0]))
    )
    resolved = (run / "config.yaml").read_text()
    assert "${" not in resolved and f"output_dir: {run}" in resolved
    subset = (run / "subset.txt").read_text().splitlines()
    assert len(subset) == 48 and all(Path(p).is_file() for p in subset)
    assert len((run / "reference.txt").read_text().splitlines()) == 16
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    assert {"train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"} <= set(events.Tags()["scalars"])
    assert {"samples/fixed_noise", "train/real_batch"} <= set(events.Tags()["images"])
    assert len(events.Images("samples/fixed_noise")) == 3
    weights = torch.load(run / "checkpoints" / "epoch=0003.ckpt", weights_only=False)
    assert "optimizer_states" not in weights and weights["epoch"] == 2
    restored = DCGAN.load_from_checkpoint(run / "checkpoints" / "epoch=0003.ckpt")
    assert restored.hparams.image_size == 32
    finished = json.loads((run / "finished.json").read_text())
    phases = finished["seconds"]
    assert phases["training"] + phases["sampling"] + phases["metrics"] == pytest.approx(phases["fit"], abs=0.01)
    assert set(finished["metric_seconds"]) == set(compose_config(run, TINY).metrics.names)
    assert sum(finished["metric_seconds"].values()) <= phases["metrics"]


def test_resume_after_a_crash_continues_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    settings = TINY + ["trainer.max_epochs=4", "checkpoint_every=2"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(
            compose_config(
                run, settings + ["+callbacks.crash._target_=helpers.CrashAtEpoch", "+callbacks.crash.epoch=3"]
            )
        )
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    # Saved after epoch 2; 3 batches an epoch, and Lightning counts both optimizers' steps.
    steps_per_epoch = 3 * 2
    assert last["epoch"] == 1 and last["global_step"] == 2 * steps_per_epoch
    snapshot_2 = sample_files(run, 2)[0].stat().st_mtime_ns
    assert not (run / "samples" / "epoch=0004").exists()

    train(compose_config(run, settings + ["resume=true"]))
    final = torch.load(run / "checkpoints" / "epoch=0004.ckpt", weights_only=False)
    assert final["global_step"] == 4 * steps_per_epoch  # epochs 3 and 4 only were trained again
    assert sample_files(run, 2)[0].stat().st_mtime_ns == snapshot_2
    assert len(sample_files(run, 4)) == 10


def test_a_resumed_run_with_stabilisers_continues_exactly(tmp_path):
    """Weights, EMA, ADA's p, the optimizers and the RNG states come back from last.ckpt: the
    resumed run ends where an uninterrupted one does, bit for bit."""
    settings = TINY + [
        "trainer.max_epochs=4",
        "checkpoint_every=2",
        "sampling.epochs=[]",
        "metrics.names=[psnr]",
        "model.ema_decay=0.9",
        "model.r1_gamma=0.1",
        "model.r1_every=2",
        "model.diffaugment=[brightness,translation,cutout]",
        "model.ada_target=0.6",
        "model.ada_images=200",
    ]
    train(compose_config(tmp_path / "straight", settings))
    interrupted = tmp_path / "interrupted"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(
            compose_config(
                interrupted, settings + ["+callbacks.crash._target_=helpers.CrashAtEpoch", "+callbacks.crash.epoch=3"]
            )
        )
    train(compose_config(interrupted, settings))
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 4 * 3 * 2
    assert a["state_dict"].keys() == b["state_dict"].keys() and "ada.p" in a["state_dict"]
    assert any(k.startswith("generator_ema.") for k in a["state_dict"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]), [
        k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])
    ][:5]


def test_equal_kimg_epochs_snapshot_at_the_same_images_seen_for_every_n_and_resume_exactly(tmp_path):
    """data.epoch_kimg: an epoch is 40 images (3 batches of 16, 16, 8) whatever n is, so the
    snapshots of n = 12 and n = 40 fall at the same images seen and the same step; a run
    interrupted between its snapshots ends as an uninterrupted one, bit for bit."""
    import pandas as pd

    settings = TINY + [
        "data.epoch_kimg=0.04",
        "trainer.max_epochs=4",
        "checkpoint_every=2",
        "sampling.epochs=[2]",
        "metrics.names=[psnr]",
    ]
    rows = {}
    for n in (12, 40):
        train(compose_config(tmp_path / str(n), settings + [f"data.n={n}"]))
        rows[n] = pd.read_csv(tmp_path / str(n) / "metrics.csv")
        assert rows[n]["kimg"].tolist() == [0.08, 0.16] and rows[n]["step"].tolist() == [6, 12]
    interrupted = tmp_path / "interrupted"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(
            compose_config(
                interrupted,
                settings + ["data.n=12", "+callbacks.crash._target_=helpers.CrashAtEpoch", "+callbacks.crash.epoch=3"],
            )
        )
    assert torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=False)["images_seen"] == 80
    train(compose_config(interrupted, settings + ["data.n=12"]))
    a = torch.load(tmp_path / "12" / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["images_seen"] == b["images_seen"] == 160
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (tmp_path / "12" / "metrics.csv").read_text() == (interrupted / "metrics.csv").read_text()


def test_explicit_ckpt_path_must_exist(tmp_path):
    from fetal_dcgan.errors import ConfigError

    with pytest.raises(ConfigError, match="ckpt_path=.*does not exist"):
        train(compose_config(tmp_path, TINY + [f"ckpt_path={tmp_path / 'missing.ckpt'}"]))


def test_half_written_sample_set_is_never_taken_for_a_whole_one(tmp_path):
    model = DCGAN(image_size=32, nz=8, ngf=4, ndf=4)
    real_generate, calls = model.generate, []

    def failing_generate(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_generate(*args)

    model.generate = failing_generate
    out = tmp_path / "samples" / "epoch=0005"
    with pytest.raises(RuntimeError, match="disk full"):
        write_sample_set(model, out, n_images=8, seed=0, batch_size=4)
    assert not out.exists()
    model.generate = real_generate
    write_sample_set(model, out, n_images=8, seed=0, batch_size=4)
    assert len(list(out.glob("*.png"))) == 8
    assert [p.name for p in out.parent.iterdir()] == ["epoch=0005"]


def test_sample_batches_are_full_training_size_batches(tmp_path):
    """BatchNorm's batch statistics of every image come from a batch of the training batch size,
    and image i has the same latent whatever the batch size."""
    model = DCGAN(image_size=32, nz=16, ngf=8, ndf=8)
    sizes, real_generate = [], model.generate
    model.generate = lambda z, batchnorm, generator: sizes.append(len(z)) or real_generate(z, batchnorm, generator)
    write_sample_set(model, tmp_path / "a", n_images=10, seed=0, batch_size=4)
    assert sizes == [4, 4, 4]  # the last two images share their batch with two dropped padding images
    write_sample_set(model, tmp_path / "b", n_images=10, seed=0, batch_size=3, batchnorm="running")
    write_sample_set(model, tmp_path / "c", n_images=10, seed=0, batch_size=7, batchnorm="running")
    for name in ("0000.png", "0009.png"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()


def test_multirun_over_n_gives_nested_subsets_of_their_own_per_replicate(tmp_path):
    """The default design: each replicate (seed) draws its own nested subsets; every cell is
    scored against the same held-out reference, none of which any cell trains on."""
    import pandas as pd

    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "data.n=10,20",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        *TINY,
        "trainer.max_epochs=2",
        "metrics.names=[psnr]",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    subsets, references = {}, set()
    for job in ("0", "1", "2", "3"):  # n=10 seed 0, n=10 seed 1, n=20 seed 0, n=20 seed 1
        run = sweep / job
        assert (run / ".hydra" / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
        subsets[job] = set((run / "subset.txt").read_text().splitlines())
        references.add((run / "reference.txt").read_text())
        assert (pd.read_csv(run / "metrics.csv")["reference_in_training"] == 0).all()
    assert [len(subsets[j]) for j in "0123"] == [10, 10, 20, 20]
    assert subsets["0"] < subsets["2"] and subsets["1"] < subsets["3"]  # nested within a replicate
    assert subsets["0"] != subsets["1"]  # each replicate its own draw
    assert len(references) == 1 and not set(references.pop().splitlines()) & subsets["3"]


def _corrupt_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "corrupt"
    good = write_image(folder / "good.png", noise_image(0))
    (folder / "broken.png").write_bytes(good.read_bytes()[:150])
    return folder


def _hc18_without_scans(tmp_path: Path) -> Path:
    root = tmp_path / "hc18"
    write_image(root / "training_set" / "000_HC_Annotation.png", np.zeros((8, 8), np.uint8))
    return root


BAD_INPUTS = {
    "missing data directory": (lambda t: ["data=folder", f"data.root={t / 'nowhere'}"], "does not exist"),
    "empty data directory": (lambda t: ["data=folder", f"data.root={t}"], "No images found"),
    "hc18 without training images": (
        lambda t: ["data=hc18", f"data.root={_hc18_without_scans(t)}"],
        "No HC18 training_set images",
    ),
    "corrupt image": (lambda t: ["data=folder", f"data.root={_corrupt_folder(t)}"], "broken.png"),
    "n larger than the dataset": (lambda t: ["data.n=49"], "dataset of 48 images"),
    "n below one": (lambda t: ["data.n=0"], "data.n=0"),
    "unsupported image size": (lambda t: ["data.image_size=100"], "data.image_size=100 is not supported"),
    "snapshot after the last epoch": (lambda t: ["sampling.epochs=[2,9]"], "sampling.epochs [9] fall outside"),
    "unknown compile mode": (lambda t: ["model.compile=fast"], "model.compile='fast'"),
    "gpu memory share above 1": (lambda t: ["gpu_memory_fraction=2"], "gpu_memory_fraction=2.0: use"),
    **(
        {}
        if torch.cuda.is_available()
        else {
            "gpu asked for without one": (lambda t: ["trainer=gpu"], "trainer=gpu, but PyTorch sees no CUDA GPU"),
            "metrics on a missing gpu": (lambda t: ["metrics.device=cuda"], "metrics.device=cuda, but PyTorch"),
        }
    ),
    "unknown option": (lambda t: ["data.nn=5"], "Could not override 'data.nn'"),
}


#: Cases that go through ``python -m fetal_dcgan.train`` (a process each, about 5 s).
CLI_CASES = ("corrupt image", "unknown option", "missing data directory")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_clearly_and_writes_no_results(tmp_path, case):
    """Each bad input is refused with its message before anything is written; a few cases
    go through the command line (exit status 2, the message on stderr, no traceback), the
    others call the same ``train(cfg)`` in this process."""
    make_args, message = BAD_INPUTS[case]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    run = tmp_path / "run"
    args = make_args(data_dir)
    tiny = TINY if any(a.startswith("data.n") or a.startswith("data.image") for a in args) else TINY_ANY_SOURCE
    if case in CLI_CASES:
        result = run_cli(*tiny, f"hydra.run.dir={run}", *args)
        assert result.returncode == (1 if case == "unknown option" else 2), result.stderr[-2000:]  # 1: Hydra's own
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    else:
        with pytest.raises(UserError) as refused:
            train(compose_config(run, [*tiny, *args]))
        assert message in str(refused.value)
    for result_like in ("samples", "checkpoints", "subset.txt", "config.yaml", "tensorboard"):
        assert not (run / result_like).exists(), result_like


@pytest.mark.slow
def test_default_quick_run(tmp_path):
    """The README's main job as written (quick preset on the full phantom)."""
    result = run_cli(f"hydra.run.dir={tmp_path / 'run'}", "trainer=cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    for epoch in (10, 20, 25):
        assert len(sample_files(tmp_path / "run", epoch)) == 800


def test_training_is_reproducible_and_learns(tmp_path):
    """Same seed, same weights; and after a few epochs the samples are images, not a constant."""
    settings = TINY + ["trainer.max_epochs=6", "sampling.epochs=[3]", "sampling.n_images=16", "metrics.names=[psnr]"]
    train(compose_config(tmp_path / "a", settings))
    train(compose_config(tmp_path / "b", settings))
    a = torch.load(tmp_path / "a" / "checkpoints" / "epoch=0006.ckpt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "epoch=0006.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    images = np.stack([np.asarray(Image.open(p)) for p in sample_files(tmp_path / "a", 6)]).astype(float)
    assert images.std(axis=(1, 2)).min() > 5  # every image has structure
    assert np.abs(images[0] - images[1]).mean() > 1  # and they differ from each other
    events = EventAccumulator(str(tmp_path / "a" / "tensorboard")).Reload()
    for tag, (low, high) in {"train/loss_d": (0.01, 5), "train/loss_g": (0.01, 15)}.items():
        values = [e.value for e in events.Scalars(tag)]
        assert all(low < v < high for v in values), (tag, values)


BAD_VALUES = [  # (override, the key the message must name)
    ("data.fit=stretch", "data.fit"),
    ("data.image_size=48", "data.image_size"),
    ("data.n=0", "data.n"),
    ("data.reference_n=0", "data.reference_n"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.augment.interpolation=cubic", "data.augment.interpolation"),
    ("data.augment.degrees=-5", "data.augment.degrees"),
    ("data.group_by=patient", "data.group_by"),
    ("data.reference=both", "data.reference"),
    ("model.nz=0", "model.nz"),
    ("model.lr=-1", "model.lr"),
    ("model.beta1=1.5", "model.beta1"),
    ("model.real_label=0", "model.real_label"),
    ("model.compile=fast", "model.compile"),
    ("sampling.batchnorm=bogus", "sampling.batchnorm"),
    ("sampling.n_images=0", "sampling.n_images"),
    ("sampling.batch_size=0", "sampling.batch_size"),
    ("callbacks.image_grid.every_n_epochs=0", "every_n_epochs"),
    ("metrics.names=[psnr,fidd]", "metrics.names"),
    ("metrics.ci_resamples=-1", "metrics.ci_resamples"),
    ("metrics.kid.subset_size=1", "metrics.kid.subset_size"),
    ("metrics.device=tpu", "metrics.device"),
    ("metrics.fid.ci_share=2", "metrics.fid.ci_share"),
    ("metrics.prdc.k=0", "metrics.prdc.k"),
    ("metrics.diversity.duplicate_psnr_db=0", "metrics.diversity.duplicate_psnr_db"),
    ("metrics.memorisation.quantile=0", "metrics.memorisation.quantile"),
    ("metrics.anatomy.min_heads=0", "metrics.anatomy.min_heads"),
    ("anatomy.inference_batch_size=0", "anatomy.inference_batch_size"),
    ("trainer.max_epochs=0", "trainer.max_epochs"),
    ("checkpoint_every=0", "checkpoint_every"),
]


@pytest.mark.parametrize("override,key", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_every_bad_config_value_is_refused_before_anything_is_written(tmp_path, override, key):
    from fetal_dcgan.errors import UserError  # the command line prints it and exits with status 2

    run = tmp_path / "run"
    with pytest.raises(UserError) as error:
        train(compose_config(run, [*TINY, override]))
    assert key in str(error.value) and "=" in str(error.value)
    for result_like in ("samples", "checkpoints", "subset.txt", "config.yaml", "tensorboard"):
        assert not (run / result_like).exists(), result_like
