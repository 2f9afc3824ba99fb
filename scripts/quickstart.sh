#!/usr/bin/env bash
# The embedded default pipeline on a fresh machine: set-up and build, then render ShapeWorld and
# train the text tokenizer. Runs land in runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CORL=${BUILD_DIR:-build}/corl

"$CORL" data --config configs/world.yaml
"$CORL" tokenizer --config configs/tokenizers.yaml
echo "quickstart: dataset in runs/data/, text tokenizer in runs/tokenizer/text.model"
