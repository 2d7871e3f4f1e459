#!/usr/bin/env bash
# Run HERE (where pip reaches the package index) before scripts/gpu_check.sh is sent to a lent
# GPU machine: it has no network, so the packages its image lacks (scripts/gpu_wheels.txt)
# travel as wheels in .whl/ (about 3 MB; ignored by git, carried by the device call).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mapfile -t packages < <(grep -v '^#' scripts/gpu_wheels.txt | grep .)
binary=() source=()
for package in "${packages[@]}"; do
    # antlr4-python3-runtime (Hydra's parser) is published only as a source archive
    if [[ $package == antlr4-python3-runtime==* ]]; then source+=("$package"); else binary+=("$package"); fi
done
rm -rf .whl && mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "${binary[@]}"
"$PY" -m pip wheel -q --no-deps -w .whl "${source[@]}"
ls -l .whl
[ "$(ls .whl/*.whl | wc -l)" -eq "${#packages[@]}" ] || { echo "error: expected ${#packages[@]} wheels in .whl" >&2; exit 1; }
