#!/usr/bin/env bash
# Speed of the default evaluation suites on one checkpoint: prompts/s of the geneval suite,
# questions/s of the mcq and oe suites, and the wall time of the whole run.
#   scripts/bench_eval.sh [CHECKPOINT] (default runs/pretrain)
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${1:-runs/pretrain}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
SECONDS=0
${BUILD_DIR:-build}/corl eval --config configs/eval.yaml --suite all --ckpt "$CKPT" \
  --set report.plotter=none --out "$OUT" 2>&1 | grep -E "prompts in|questions in|overall|accuracy"
echo "bench_eval: default suites on $CKPT in ${SECONDS} s (target: at most 180 s)"
