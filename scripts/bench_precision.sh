#!/usr/bin/env bash
# The unified GRPO stage's step in float32 and under bf16 autocast (run.autocast), on this CPU:
# the quickstart's recipe and ranks, STEPS steps each from the same base, one after the other.
# Prints seconds per step and per phase (rollout, rewards with the KL reference's log-probs,
# update), left out the first two steps (loading, warm-up), and bf16's ratio to float32.
#   scripts/bench_precision.sh [INIT] [DATA_DIR]   (defaults: models/shapeworld-base, runs/data)
# Environment: STEPS (default 8), BUILD_DIR.
# shellcheck disable=SC2046  # $(machine_flags CONFIG) is meant to split into its flags
set -euo pipefail
cd "$(dirname "$0")/.."
INIT=${1:-models/shapeworld-base}
DATA=${2:-runs/data}
STEPS=${STEPS:-8}
CORL=${BUILD_DIR:-build}/corl
source scripts/lib/stages.sh
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "bench_precision: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
  "bf16 products: $(grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo native || echo emulated)"
for precision in none bf16; do
  "$CORL" train --config configs/unified.yaml --init "$INIT" $(machine_flags configs/unified.yaml) \
    --set data.train="$DATA/train.jsonl" --set data.eval="$DATA/eval.jsonl" \
    --set grpo.max_steps="$STEPS" --set train.checkpoint_every=0 --set run.autocast=$precision \
    --out "$OUT/$precision" >/dev/null 2>&1
done
.venv/bin/python - "$OUT" <<'PY'
import json, statistics, sys
phases = ["time_rollout", "time_reward", "time_update"]
mean = {}
for precision in ["none", "bf16"]:
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/{precision}/metrics.jsonl")][2:]
    mean[precision] = {p: statistics.mean(r[p] for r in rows) for p in phases}
    total = sum(mean[precision].values())
    parts = " / ".join(f"{mean[precision][p]:.2f}" for p in phases)
    print(f"{precision:>4}: {total:.2f} s/step (rollout / rewards / update: {parts} s)")
ratio = sum(mean["bf16"].values()) / sum(mean["none"].values())
print(f"bf16 / float32: {ratio:.2f}x the step time")
PY
