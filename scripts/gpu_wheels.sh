#!/usr/bin/env bash
# Run HERE (where pip reaches the package index) before scripts/gpu_check.sh is sent to a
# lent GPU machine: that machine has PyTorch, Lightning, scikit-image, SciPy, pandas and
# matplotlib but no network, so the few pure-Python packages it lacks travel as wheels in
# .whl/ (about 1 MB; ignored by git, carried by the device call).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .whl \
    hydra-core==1.3.8 omegaconf==2.3.1 hydra-joblib-launcher==1.2.0 torch-fidelity==0.4.0
# antlr4-python3-runtime (Hydra's parser) is published only as a source archive: build its pure-Python wheel.
"$PY" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -l .whl
