"""Every preset and data source composes, and its parts instantiate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from fetal_dcgan.data.datamodule import UltrasoundDataModule
from fetal_dcgan.models.generator import ImageGenerator

from helpers import CONF_DIR, compose_config

PRESETS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
SOURCES = sorted(p.stem for p in (Path(CONF_DIR) / "data").glob("[!_]*.yaml"))


def test_presets_and_sources_are_found():
    assert {"quick", "paper64"} <= set(PRESETS)
    assert set(SOURCES) == {"phantom", "hc18", "folder"}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_and_instantiates(tmp_path, preset):
    cfg = compose_config(tmp_path, [f"experiment={preset}"])
    assert isinstance(instantiate(cfg.data), UltrasoundDataModule)
    model = instantiate(cfg.model)
    assert isinstance(model, ImageGenerator) and model.hparams.image_size == cfg.data.image_size
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    for node in cfg.callbacks.values():
        instantiate(node)
    assert max(cfg.sampling.epochs) <= cfg.trainer.max_epochs
    # only a preset named after the paper keeps the paper's reference, which overlaps training
    assert cfg.data.reference == ("independent" if preset.startswith("paper") else "held_out"), preset


def test_paper64_is_the_papers_grid(tmp_path):
    cfg = compose_config(tmp_path, ["experiment=paper64"])
    assert cfg.trainer.max_epochs == 1000 and list(cfg.sampling.epochs) == [300, 500, 800, 1000]
    assert cfg.sampling.n_images == 800 and cfg.data.image_size == 64 and cfg.model.lr == 2e-4
    assert cfg.model.beta1 == 0.5 and cfg.model.beta2 == 0.999 and cfg.model.init_std == 0.02
    # where the paper is silent, the authors' notebooks: squashed aspect, batches of 10, nearest rotation
    assert cfg.data.fit == "squash" and cfg.data.batch_size == 10
    assert cfg.data.augment.interpolation == "nearest" and cfg.data.augment.degrees == 10
    assert cfg.model.real_label == 1.0  # the notebooks' 0.9 is not the paper's "original hyperparameters"
    # the paper's reference (drawn from the training pool) and the notebooks' tensor resize, without antialiasing
    assert cfg.data.reference == "independent" and cfg.data.resize == "tensor" and cfg.data.epoch_kimg is None
    big = compose_config(tmp_path, ["experiment=paper128"])
    assert big.data.image_size == 128 and big.data.fit == "squash" and big.model.nz == big.model.ngf == 128
    assert big.data.reference == "independent" and big.data.resize == "tensor"


def test_the_default_study_holds_the_reference_out_and_resamples_the_subsets(tmp_path):
    cfg = compose_config(tmp_path, ["seed=3"])
    assert cfg.data.reference == "held_out" and cfg.data.reference_split == "test" and cfg.data.seed == 3
    assert cfg.data.reference_seed == 0 and cfg.data.resize == "antialias"
    assert compose_config(tmp_path, ["data=folder", "data.root=x"]).data.reference_split == "train"
    kimg = compose_config(tmp_path, ["experiment=size_kimg"])
    assert kimg.data.epoch_kimg == 10 and kimg.trainer.max_epochs * kimg.data.epoch_kimg == 300


STABILISER_DEFAULTS = {
    "loss": "bce",
    "d_norm": "batch",
    "minibatch_std": False,
    "r1_gamma": 0.0,
    "ema_decay": 0.0,
    "diffaugment": [],
    "ada_target": None,
    "lr_g": None,
    "lr_d": None,
}
STABILISERS = sorted(p.stem for p in (Path(CONF_DIR) / "stabiliser").glob("*.yaml"))


@pytest.mark.parametrize("preset", ["paper64", "paper128", "lr_sweep", "resolution_sweep"])
def test_paper_presets_train_the_papers_dcgan(tmp_path, preset):
    model = compose_config(tmp_path, [f"experiment={preset}"]).model
    assert {k: model[k] for k in STABILISER_DEFAULTS} == STABILISER_DEFAULTS


@pytest.mark.parametrize("stabiliser", STABILISERS)
def test_each_stabiliser_changes_only_what_it_names(tmp_path, stabiliser):
    model = instantiate(compose_config(tmp_path, [f"stabiliser={stabiliser}", "data.image_size=32"]).model)
    changed = {k for k, v in STABILISER_DEFAULTS.items() if model.hparams[k] != v}
    assert bool(changed) == (stabiliser != "baseline"), changed


def test_paper64_sweeps_training_set_size():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=paper64"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params["data.n"] == "100,300,500,800,999"


@pytest.mark.parametrize("source", SOURCES)
def test_data_sources_compose(tmp_path, source):
    root = [] if source == "phantom" else [f"data.root={tmp_path}"]
    cfg = compose_config(tmp_path, [f"data={source}", *root])
    assert cfg.data.source == source
    dm = instantiate(cfg.data)
    assert (
        dm.image_size == 64
        and dm.fit == "pad"
        and dm.augment == {"hflip": True, "degrees": 10, "interpolation": "nearest"}
    )


def test_image_size_drives_the_model(tmp_path):
    cfg = compose_config(tmp_path, ["data.image_size=128"])
    assert instantiate(cfg.model).hparams.image_size == 128


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "auto"])
def test_trainer_options_compose(tmp_path, trainer):
    cfg = compose_config(tmp_path, [f"trainer={trainer}"])
    assert cfg.trainer.accelerator == trainer


def test_commands_without_hydra_share_the_configured_cache(tmp_path, monkeypatch):
    from fetal_dcgan.utils import default_cache_dir

    monkeypatch.delenv("FETAL_DCGAN_CACHE", raising=False)
    assert default_cache_dir() == compose_config(tmp_path).paths.cache_dir == "~/.cache/fetal_dcgan"
    monkeypatch.setenv("FETAL_DCGAN_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == str(tmp_path / "cache")


def test_the_key_table_in_the_docs_is_the_declared_settings():
    from fetal_dcgan.config import markdown_table

    docs = (Path(CONF_DIR).parent / "docs" / "configuration.md").read_text()
    start, end = "<!-- keys: python -m fetal_dcgan.config -->\n", "<!-- /keys -->"
    assert start in docs and end in docs, "docs/configuration.md lost its generated key table"
    assert docs.split(start)[1].split(end)[0] == markdown_table(), (
        "docs/configuration.md is out of date: paste the output of python -m fetal_dcgan.config"
    )


def test_every_declared_setting_says_what_it_means_and_every_rule_has_an_example():
    from fetal_dcgan.config import declared_groups
    from fetal_dcgan.rules import declared

    for prefix, schema, _ in declared_groups():
        for key, f in declared(schema, prefix):
            if f.metadata:
                assert f.metadata["help"], f"{key} declares no meaning"
                assert not f.metadata["rule"] or f.metadata["example"], f"{key} has a rule but no example"


def test_a_value_of_the_wrong_type_is_refused_as_the_config_is_composed(tmp_path):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="model.lr"):
        compose_config(tmp_path, ["model.lr=fast"])


def test_a_metrics_section_of_no_metric_is_refused(tmp_path):
    from fetal_dcgan.checks import check_config
    from fetal_dcgan.errors import ConfigError

    with pytest.raises(ConfigError, match="metrics.kdi: not a setting of the metric suite nor a registered metric"):
        check_config(compose_config(tmp_path, ["+metrics.kdi.subsets=3"]))
