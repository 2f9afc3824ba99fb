#!/usr/bin/env bash
# The embedded default pipeline on a fresh machine: set-up and build, then render ShapeWorld,
# train the tokenizers (text and VQ image) and pretrain the base model. Runs land in runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CORL=${BUILD_DIR:-build}/corl

"$CORL" data --config configs/world.yaml
"$CORL" tokenizer --config configs/tokenizers.yaml
"$CORL" pretrain --config configs/pretrain.yaml
echo "quickstart: dataset in runs/data/, tokenizers in runs/tokenizer/, base model in runs/pretrain/final"
