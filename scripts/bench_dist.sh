#!/usr/bin/env bash
# Steps/s of the unified GRPO stage on CPU: one process, and two Gloo ranks (--nproc 2) sharing
# the same global batch. Steps/s is taken between the first and the last step's metric rows, so
# loading and the first step's warm-up are left out.
#   scripts/bench_dist.sh [INIT] [DATA_DIR]   (defaults: runs/pretrain, runs/data)
# Environment: STEPS (default 5), BATCH (global groups per step, default 8), BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
INIT=${1:-runs/pretrain}
DATA=${2:-runs/data}
STEPS=${STEPS:-5}
BATCH=${BATCH:-8}
CORL=${BUILD_DIR:-build}/corl
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
COMMON=(--config configs/unified.yaml --init "$INIT" --set data.train="$DATA/train.jsonl"
        --set data.eval="$DATA/eval.jsonl" --set grpo.max_steps="$STEPS"
        --set train.checkpoint_every=0 --set eval.prompts=0 --set eval.questions=0)

steps_per_second() {  # metrics.jsonl -> steps/s between the first and last step rows
  python3 -c "
import json, sys
t = [r['time'] for r in map(json.loads, open('$1')) if 'updates' in r]
print(f'{(len(t) - 1) / (t[-1] - t[0]):.4f}')"
}

# BATCH / NPROC groups a rank: completions per micro-step x configs/unified.yaml's 4 micro-steps
# / its G of 8.
run() {  # run NAME NPROC THREADS
  local name=$1 nproc=$2 threads=$3 launch=()
  ((nproc > 1)) && launch=(--nproc "$nproc")
  "$CORL" train "${launch[@]}" "${COMMON[@]}" --set run.threads="$threads" \
    --set grpo.per_device_train_batch_size=$((BATCH * 2 / nproc)) --out "$OUT/$name" >/dev/null 2>&1
  steps_per_second "$OUT/$name/metrics.jsonl"
}

echo "bench_dist: $(nproc) CPU cores, $BATCH groups x 8 rollouts per step, $STEPS steps"
one2=$(run one-2t 1 2)
echo "1 process,  2 threads:        $one2 steps/s"
one1=$(run one-1t 1 1)
echo "1 process,  1 thread:         $one1 steps/s"
two1=$(run two-1t 2 1)
echo "2 Gloo ranks, 1 thread each:  $two1 steps/s"
python3 -c "print(f'2 ranks / 1 process (2 threads): {$two1 / $one2:.2f}x; 2 ranks / 1 process (1 thread): {$two1 / $one1:.2f}x')"
