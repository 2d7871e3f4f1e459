#!/usr/bin/env bash
# GPU checks in one go, for a lent GPU machine (see the README's Performance section):
# installs the project, runs the GPU tests and the GPU benchmarks, writes results to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
make install > "$OUT/install.log" 2>&1 || { tail -50 "$OUT/install.log"; exit 1; }
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
export FETAL_DCGAN_CACHE=$PWD/.cache-gpu
.venv/bin/python -m pytest -q tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log"
.venv/bin/python -m fetal_dcgan.bench train --accelerator gpu --steps 200 --json | tee "$OUT/bench_train_gpu.json"
.venv/bin/python -m fetal_dcgan.bench train --accelerator gpu --batch-size 256 --steps 100 --json | tee -a "$OUT/bench_train_gpu.json"
.venv/bin/python -m fetal_dcgan.bench sweep --accelerator gpu --sizes 100,300,500,800,999 --epochs 20 \
    --snapshots 5,10,15,20 --json | tee "$OUT/bench_sweep_gpu.json"
