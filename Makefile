# fetal_dcgan: `make help` lists the targets. Hydra overrides go in ARGS, e.g.
#   make train ARGS="data=hc18 data.root=/data/HC18 data.n=300"
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision are pinned to the release this project is tested with.
TORCH ?= torch==2.14.1 torchvision==0.29.1
ARGS ?=
# The demo's head-measurement model: 10 epochs (about a minute; Dice 0.98 on held-out phantom scans)
DEMO_ANATOMY ?= anatomy.epochs=10
DIR ?= outputs
LOGDIR ?= $(DIR)
SWEEP ?= multirun/smoke

STUDY ?= study
SLURM_LOCAL := scripts/slurm_local.sh
.PHONY: help install lint format train sweep smoke report survey evaluate test test-unit test-all test-slurm bench bench-train bench-sweep bench-metrics tensorboard clean slurm-up slurm-down

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv and install the package (editable) with dev extras

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e '.[dev]'
	touch $@

train: install ## Train on the built-in phantom (quick preset), after the anatomy metric's measurement model (cached); Hydra overrides in ARGS
	$(BIN)/python -m fetal_dcgan.anatomy train $(DEMO_ANATOMY) $(ARGS) || echo "make train: no head-measurement model for this data; the anatomy metric will say why"
	$(BIN)/python -m fetal_dcgan.train $(ARGS)

sweep: install ## The paper's grid at 64 px (experiment=paper64; needs a GPU to finish in hours)
	$(BIN)/python -m fetal_dcgan.train -m experiment=paper64 $(ARGS)

smoke: install ## The paper's grid shape in about a minute on a CPU (multirun/smoke)
	$(BIN)/python -m fetal_dcgan.train -m experiment=smoke $(ARGS)

report: install ## Tables, statistics, figures and report.html of a sweep: make report SWEEP=multirun/paper64
	$(BIN)/python -m fetal_dcgan.report $(SWEEP) $(ARGS)

survey: install ## Serve a rating study built with `python -m fetal_dcgan.survey build`: make survey STUDY=dir
	$(BIN)/python -m fetal_dcgan.survey serve $(STUDY) $(ARGS)

evaluate: install ## Score a folder of synthetic images: make evaluate REAL=dir FAKE=dir [ARGS="--resize 64"]
	$(BIN)/python -m fetal_dcgan.evaluate --real $(REAL) --fake $(FAKE) $(ARGS)

bench: bench-train bench-metrics bench-sweep ## Run the CPU benchmarks

bench-train: install ## Training path vs a bare PyTorch loop (DCGAN64, batch 64, CPU)
	$(BIN)/python -m fetal_dcgan.bench train

bench-sweep: install ## A scaled-down paper64 grid (n = 100, 300; 4 epochs; 4 sets of 800), timed per phase
	$(BIN)/python -m fetal_dcgan.bench sweep

bench-metrics: install ## Time all-pairs PSNR, MI/NMI and LBPv (800 x 800) against scikit-image/scikit-learn
	$(BIN)/python -m fetal_dcgan.bench metrics

lint: install ## ruff: lint (pycodestyle, pyflakes, import order, function length) and the format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format the code and sort imports with ruff
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

test: install ## Run the tests (slow ones and the Slurm ones excluded)
	$(BIN)/python -m pytest -m "not slow and not slurm" $(ARGS)

test-unit: install ## Only the unit tests (tests/unit: metrics, statistics, data, config; about a minute)
	$(BIN)/python -m pytest tests/unit -m "not slow" $(ARGS)

test-all: install ## Run every test, slow ones included
	$(BIN)/python -m pytest $(ARGS)

tensorboard: install ## Serve TensorBoard over DIR (default outputs/; DIR=multirun/paper64 for a sweep)
	$(BIN)/tensorboard --logdir $(LOGDIR)

clean: ## Remove runs, sweeps and test caches (keeps .venv and the data cache)
	rm -rf outputs lightning_logs .pytest_cache
	find multirun -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

slurm-up: ## Start a single-node Slurm cluster on this machine (as root; partition `local`)
	$(SLURM_LOCAL)

slurm-down: ## Stop the Slurm daemons that slurm-up started
	$(SLURM_LOCAL) --stop

test-slurm: install ## Sweeps as real Slurm jobs: requeue, a killed cell, array parallelism (needs make slurm-up)
	$(BIN)/python -m pytest -m "slurm and not slow" $(ARGS)
