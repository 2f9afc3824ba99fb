#!/usr/bin/env bash
# The embedded default pipeline on a fresh machine: set-up and build, then render ShapeWorld,
# train the tokenizers (text and VQ image), pretrain the base model, run the unified GRPO stage
# and evaluate both models on the held-out suites. Runs land in runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CORL=${BUILD_DIR:-build}/corl

"$CORL" data --config configs/world.yaml
"$CORL" tokenizer --config configs/tokenizers.yaml
"$CORL" pretrain --config configs/pretrain.yaml
"$CORL" train --config configs/unified.yaml --init runs/pretrain
"$CORL" eval --config configs/eval.yaml --suite all --ckpt runs/pretrain --ckpt runs/unified \
  --out runs/eval
echo "quickstart: dataset in runs/data/, tokenizers in runs/tokenizer/, base model in" \
  "runs/pretrain/final, unified model in runs/unified/final, report in runs/eval/report.html"
