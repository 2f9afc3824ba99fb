#!/usr/bin/env bash
# A unified GRPO step with a slow remote reward against the same step with the built-in one. The
# remote reward is the reference server's geneval scorer (scripts/reward_server.py: the built-in
# geneval's scores, so every run trains alike) made slow: each batch waits SLEEP seconds before it
# is scored. Runs, each STEPS steps of configs/unified.yaml from INIT:
#   built-in     geneval in the process
#   remote       the server, BATCHES requests a step all in flight at once (max_in_flight)
#   remote-1     the same, one request in flight at a time
# Seconds a step are taken between the first and the last step's metric rows (the first step's
# warm-up left out); "waited" is the mean time_reward_wait, the part of the step spent waiting
# for the server after the step's own work was done.
#   scripts/bench_reward_server.sh [INIT] [DATA_DIR]   (defaults: models/shapeworld-base, a fresh
#                                                       ShapeWorld dataset)
# Environment: STEPS (default 3), PROMPTS (groups of 8 a step, default 4), SLEEP (seconds per
# batch, default 3), BATCHES (requests per step, default 4), BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
INIT=${1:-models/shapeworld-base}
DATA=${2:-}
STEPS=${STEPS:-3}
PROMPTS=${PROMPTS:-4}
SLEEP=${SLEEP:-3}
BATCHES=${BATCHES:-4}
CORL=$(realpath "${BUILD_DIR:-build}/corl")
OUT=$(mktemp -d)
SERVER=
trap '[[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null; rm -rf "$OUT"' EXIT

if [[ -z $DATA ]]; then
  DATA=$OUT/data
  "$CORL" data --config configs/world.yaml --set data.train_size=1024 --set data.eval_size=8 \
    --out "$DATA" >/dev/null 2>&1
fi
# configs/unified.yaml's G of 8 and 4 micro-steps: PROMPTS x 8 images and answers a step.
IMAGES=$((PROMPTS * 8))
COMMON=(--config configs/unified.yaml --init "$INIT" --set data.train="$DATA/train.jsonl"
  --set data.eval="$DATA/eval.jsonl" --set grpo.max_steps="$STEPS"
  --set grpo.per_device_train_batch_size=$((PROMPTS * 2))
  --set train.checkpoint_every=0 --set eval.prompts=0 --set eval.questions=0)

python3 scripts/reward_server.py --scorer geneval --corl "$CORL" --port 0 --sleep "$SLEEP" \
  --workers "$BATCHES" --port-file "$OUT/port" 2>"$OUT/server.log" &
SERVER=$!
for _ in $(seq 200); do [[ -s $OUT/port ]] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$OUT/port")/score"
REMOTE=(
  --set "grpo.reward_funcs=[judge, cycle, tim, accuracy, format, perception, options]"
  --set "reward.remote.judge.url=$URL" --set reward.remote.judge.batch_size=$((IMAGES / BATCHES)))

# Seconds a step between the first and the last step rows, and the mean wait for the server.
figures() {  # metrics.jsonl
  python3 - "$1" <<'PYEOF'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "updates" in r]
t = [r["time"] for r in rows]
waited = [r.get("time_reward_wait", 0.0) for r in rows[1:]]
print(f"{(t[-1] - t[0]) / (len(t) - 1):.2f} {sum(waited) / len(waited):.2f}")
PYEOF
}

run() {  # NAME ARGS...
  local name=$1
  shift
  "$CORL" train "${COMMON[@]}" "$@" --out "$OUT/$name" >"$OUT/$name.log" 2>&1 ||
    { echo "bench_reward_server: $name failed" >&2; tail -5 "$OUT/$name.log" >&2; exit 1; }
  figures "$OUT/$name/metrics.jsonl"
}

echo "bench_reward_server: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
  "$IMAGES images and answers a step, the images in $BATCHES batches, the server waits ${SLEEP} s a batch; $STEPS steps"
read -r built_in _ < <(run built-in)
echo "built-in geneval:            ${built_in} s a step"
read -r remote waited < <(run remote "${REMOTE[@]}" --set reward.remote.judge.max_in_flight="$BATCHES")
echo "remote, $BATCHES in flight:          ${remote} s a step (waited ${waited} s for the server)"
read -r serial waited1 < <(run remote-1 "${REMOTE[@]}" --set reward.remote.judge.max_in_flight=1)
echo "remote, 1 in flight:          ${serial} s a step (waited ${waited1} s for the server)"
python3 -c "
b, r, s, w = $built_in, $remote, $serial, $SLEEP * $BATCHES
print(f'remote / built-in: {r / b:.2f}x with {$BATCHES} in flight, {s / b:.2f}x with 1; '
      f'the server alone sleeps {w:.0f} s a step one batch after another')"
