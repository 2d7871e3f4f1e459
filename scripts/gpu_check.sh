#!/usr/bin/env bash
# GPU checks in one call on a lent GPU machine (README: Performance). That machine has
# PyTorch, Lightning and the scientific stack but no network: first run
# scripts/gpu_wheels.sh here, then in one device call, carrying .whl:
#     bash scripts/gpu_check.sh        (estimated, not yet measured: about 9 minutes; timeout_s=590)
# PARTS picks steps ("tests bench grid" by default; "tests bench" then "grid" on the warm
# machine splits it into two calls); GRID_SECONDS caps the grid (300). ACCELERATOR=cpu
# DEVICE=cpu GRID_SECONDS=60 STEPS=3 rehearses the script on a machine without a GPU.
# Writes at most 8 files to $OUT: the GPU tests' log, the training and metrics benchmarks,
# the real paper64 grid's log and per-phase times, and a sheet of its final samples.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_results}
PARTS=${PARTS:-tests bench grid}
GRID_SECONDS=${GRID_SECONDS:-300}
ACCELERATOR=${ACCELERATOR:-gpu}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-200}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export FETAL_DCGAN_CACHE=$PWD/.cache-gpu
{ nvidia-smi; "$PY" -c "import torch, lightning; print(torch.__version__, lightning.__version__, torch.cuda.is_available())"; } \
    > "$OUT/machine.txt" 2>&1
has() { [[ " $PARTS " == *" $1 "* ]]; }

# 1. Tests of the GPU paths and of every speed option and device-aware metric (about 1 min).
has tests && timeout 150 "$PY" -m pytest -q -p no:cacheprovider tests/integration/test_gpu.py tests/integration/test_speed_options.py \
    tests/unit/test_metrics.py 2>    tests/test_metrics.py 2>&11 | tail -40 > "$OUT/gpu_tests.log"

# 2. Training throughput: bare loop vs the training path, per speed option (about 2 min).
if has bench; then
    for options in "" "--channels-last --precision bf16-mixed" "--compile default" "--compile reduce-overhead" \
                   "--batch-size 256"; do
        timeout 90 "$PY" -m fetal_dcgan.bench train --accelerator "$ACCELERATOR" --steps "$STEPS" --warmup 20 --json \
            $options 2>>"$OUT/bench.log" | tail -1 >> "$OUT/bench_train.jsonl"
    done
    timeout 90 "$PY" -m fetal_dcgan.bench metrics --device "$DEVICE" --json 2>>"$OUT/bench.log" | tail -1 \
        > "$OUT/bench_metrics.json"
fi
has grid || { ls -l "$OUT"; exit 0; }

# 3. The paper's whole 64 px grid, as a user runs it (goal: under 5 minutes on one H100).
SWEEP=/tmp/paper64
start=$(date +%s)
# In a session of its own, so that its process group (the sweep and its joblib workers) can be
# ended by its id afterwards, and nothing else on the machine.
setsid timeout "$GRID_SECONDS" "$PY" -m fetal_dcgan.train -m experiment=paper64 trainer="$ACCELERATOR" \
    jobs=shared_gpu hydra.sweep.dir="$SWEEP" "+trainer.enable_progress_bar=false" > "$OUT/paper64.log" 2>&1 &
grid=$!
wait "$grid"
echo "exit $? after $(( $(date +%s) - start )) s of wall time (limit $GRID_SECONDS s)" >> "$OUT/paper64.log"
kill -- -"$grid" 2>/dev/null; sleep 2  # workers a timeout left behind, by the grid's process group only
"$PY" -m fetal_dcgan.bench phases "$SWEEP" > "$OUT/paper64_phases.json" 2>&1
tail -1 "$OUT/paper64.log"
"$PY" - "$SWEEP" "$OUT/paper64_samples.png" <<'EOF' 2>>"$OUT/paper64.log"
import sys
from pathlib import Path

from torchvision.utils import save_image

from fetal_dcgan.data.preprocess import read_image_set

sets = sorted(Path(sys.argv[1]).glob("*/samples/epoch=*"))
if sets:
    images = read_image_set(sorted(sets[-1].glob("*.png"))[:64]).float() / 255
    save_image(images, sys.argv[2], nrow=8, padding=2)
    print(f"sample sheet from {sets[-1]}")
EOF
ls -l "$OUT"
