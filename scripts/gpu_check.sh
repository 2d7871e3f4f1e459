#!/usr/bin/env bash
# The GPU checks in one call on a lent GPU machine (docs/performance.md, "The GPU check"). That machine
# has PyTorch, Lightning and the scientific stack but no network: run scripts/gpu_wheels.sh
# here first, then in one device call carrying .whl:   bash scripts/gpu_check.sh
# (7.4 minutes on an H200 with these defaults: give the call timeout_s=500 at least)
#
# Steps (PARTS; all by default), each writing to $OUT (8 files at most) and each checked:
#   imports  machine.txt         what is missing first, then the GPU, torch and Lightning
#   tests    gpu_tests.log       the GPU, speed-option and metric tests (or TESTS)
#   bench    bench_train.jsonl   images/s per DCGAN size (SIZES) x speed option (VARIANTS), and
#                                torch.compile (COMPILED) at the first size; bare loop and training
#                                path side by side. bench_metrics.jsonl: all-pairs PSNR, MI, LBP
#   suite    bench_metrics.jsonl the whole metric suite per synthetic set (anatomy model trained first;
#                                SUITE_ARGS: --random-inception, so FID and KID are timed)
#   grid     paper64.log, paper64_phases.json, paper64_samples.png: the real paper64 sweep command
#            (jobs=shared_gpu), cut to GRID_EPOCHS epochs, extrapolated to 1000 epochs and 4 sets a run
# A step that leaves an empty log, invalid JSON or no passed test fails the script (exit 1,
# naming the steps) after the other steps ran. Caches and the sweep live in a temporary
# folder, never in the checkout. Rehearse without a GPU (tests/integration/test_gpu_check.py):
#   ACCELERATOR=cpu SIZES=64 VARIANTS="fp32 bf16" COMPILED= STEPS=3 GRID_EPOCHS=2 \
#   GRID_ARGS="data.n=20,40 sampling.n_images=40" \
#   SUITE_ARGS="anatomy.epochs=1 data.reference_n=100 metrics.ci_resamples=4 --n-fake 100" \
#   bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PARTS=${PARTS:-imports tests bench suite grid}
ACCELERATOR=${ACCELERATOR:-gpu}
SIZES=${SIZES:-64 128 256}
VARIANTS=${VARIANTS:-fp32 bf16 bf16_channels_last}
COMPILED=${COMPILED-compile}
STEPS=${STEPS:-100}
GRID_EPOCHS=${GRID_EPOCHS:-10}
GRID_SECONDS=${GRID_SECONDS:-150}
GRID_ARGS=${GRID_ARGS:-}
SUITE_ARGS=${SUITE_ARGS---random-inception}
PY=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
OUT=${OUT:-$WORK/results}
mkdir -p "$OUT"
if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl \
        || { echo "error: installing .whl failed"; exit 1; }
    export PYTHONPATH=$WORK/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export FETAL_DCGAN_CACHE=$WORK/cache
[ "$ACCELERATOR" = gpu ] && DEVICE=cuda || DEVICE=cpu
has() { [[ " $PARTS " == *" $1 "* ]]; }
failed=()
fail() { failed+=("$1: $2"); echo "FAILED $1: $2"; }
# json_lines STEP FILE N: FILE holds at least N lines, each a JSON object.
json_lines() {
    "$PY" - "$3" "$2" <<'EOF' || fail "$1" "$2 does not hold $3 JSON lines"
import json, sys
from pathlib import Path

path = Path(sys.argv[2])
lines = [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
assert len(lines) >= int(sys.argv[1]) and all(isinstance(json.loads(line), dict) for line in lines)
EOF
}
started=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - started )) s)"; }

if has imports; then
    step imports
    { "$PY" scripts/gpu_imports.py || echo "(missing imports: the steps that need them will fail)"
      (nvidia-smi || echo "no nvidia-smi here") 2>&1 | head -15
      "$PY" -c "import sys, torch, lightning; print(sys.version.split()[0], 'torch', torch.__version__, 'lightning',
                lightning.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.is_available() and torch.cuda.get_device_name())"
    } > "$OUT/machine.txt" 2>&1
    cat "$OUT/machine.txt"
    grep -q "^imports: " "$OUT/machine.txt" || fail imports "no import report"
    grep -q "^MISSING " "$OUT/machine.txt" && fail imports "$(grep -c '^MISSING ' "$OUT/machine.txt") modules missing"
fi

if has tests; then
    step tests
    # shellcheck disable=SC2046
    timeout 300 "$PY" -m pytest -q -p no:cacheprovider -m "not slow" ${TESTS:-$("$PY" scripts/gpu_imports.py --tests)} \
        > "$OUT/gpu_tests.log" 2>&1
    tail -3 "$OUT/gpu_tests.log"
    grep -Eq "[1-9][0-9]* passed" "$OUT/gpu_tests.log" || fail tests "no test passed"
    grep -Eq "[0-9]+ (failed|errors?)\b" "$OUT/gpu_tests.log" && fail tests "failures in gpu_tests.log"
fi

if has bench; then
    step bench
    bench_train() {  # sizes, then variants
        timeout 300 "$PY" -m fetal_dcgan.bench train --accelerator "$ACCELERATOR" --image-size $1 --variants $2 \
            --steps "$STEPS" --warmup 20 --json | tee -a "$OUT/bench_train.jsonl"
    } 2>> "$OUT/bench.log"
    bench_train "$SIZES" "$VARIANTS"
    [ -n "$COMPILED" ] && bench_train "${SIZES%% *}" "$COMPILED"
    json_lines bench "$OUT/bench_train.jsonl" $(( $(wc -w <<< "$SIZES") * $(wc -w <<< "$VARIANTS") + $(wc -w <<< "$COMPILED") ))
    timeout 120 "$PY" -m fetal_dcgan.bench metrics --device "$DEVICE" --json > "$OUT/bench_metrics.jsonl" 2>> "$OUT/bench.log"
    json_lines bench "$OUT/bench_metrics.jsonl" 1
fi

if has suite; then
    step suite
    # shellcheck disable=SC2086
    timeout 420 "$PY" -m fetal_dcgan.bench suite experiment=paper64 trainer="$ACCELERATOR" $SUITE_ARGS --train-anatomy \
        --json 2>> "$OUT/bench.log" | grep '^{' | tee -a "$OUT/bench_metrics.jsonl"
    json_lines suite "$OUT/bench_metrics.jsonl" 2
    grep -q '"first_set"' "$OUT/bench_metrics.jsonl" || fail suite "no suite timing in bench_metrics.jsonl"
fi

if has grid; then
    step grid
    SWEEP=$WORK/paper64
    start=$(date +%s)
    # A session of its own, so that the sweep and its joblib workers can be ended by their group id.
    # shellcheck disable=SC2086
    setsid timeout "$GRID_SECONDS" "$PY" -m fetal_dcgan.train -m experiment=paper64 trainer="$ACCELERATOR" \
        jobs=shared_gpu hydra.sweep.dir="$SWEEP" trainer.max_epochs="$GRID_EPOCHS" \
        "sampling.epochs=[$(( GRID_EPOCHS / 2 )),$GRID_EPOCHS]" +trainer.enable_progress_bar=false $GRID_ARGS \
        > "$OUT/paper64.log" 2>&1 &
    grid=$!
    wait "$grid"
    echo "exit $? after $(( $(date +%s) - start )) s of wall time (limit $GRID_SECONDS s)" | tee -a "$OUT/paper64.log"
    kill -- -"$grid" 2>/dev/null
    "$PY" -m fetal_dcgan.bench phases "$SWEEP" --full-epochs 1000 --full-sets 4 > "$OUT/paper64_phases.json" 2>&1
    cat "$OUT/paper64_phases.json"
    json_lines grid "$OUT/paper64_phases.json" 1
    "$PY" - "$SWEEP" "$OUT/paper64_samples.png" <<'EOF' >> "$OUT/paper64.log" 2>&1
import sys
from pathlib import Path

from torchvision.utils import save_image

from fetal_dcgan.data.preprocess import read_image_set

sets = sorted(Path(sys.argv[1]).glob("*/samples/epoch=*"), key=lambda p: (p.name, p.parent.parent.name))
images = read_image_set(sorted(sets[-1].glob("*.png"))[:64]).float() / 255
save_image(images, sys.argv[2], nrow=8, padding=2)
print(f"sample sheet from {sets[-1]}")
EOF
    [ -s "$OUT/paper64_samples.png" ] || fail grid "no sample sheet"
fi

rm -rf "$WORK/cache" "$WORK/paper64" "$WORK/site"
step done
ls -l "$OUT"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'gpu_check FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "gpu_check: every step wrote its results"
