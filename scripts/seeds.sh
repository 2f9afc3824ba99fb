#!/usr/bin/env bash
# Three seeds of the unified stage (docs/results.md): after the quickstart, the unified recipe
# from the same base with seeds 1 and 2 (seed 1234 is the quickstart's runs/unified), then the
# three and the base on the same held-out benchmarks, paired against the base. Then nothing
# forgotten: the base and the quickstart's final model on suites of the base's own pretraining
# world (configs/web.yaml) -> runs/eval_web.
#
#   scripts/seeds.sh   (runs the quickstart first; reuses what is finished)
# shellcheck disable=SC2046  # $(machine_flags CONFIG) is meant to split into its flags
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/quickstart.sh
BASE=models/shapeworld-base BASE_NAME=shapeworld-base
CORL=${BUILD_DIR:-build}/corl
source scripts/lib/stages.sh
S=runs/seeds
STAGE_CHAIN="$(sha256sum "$BASE/model.safetensors" | cut -d' ' -f1) $(cat runs/unified/.stage)"
for seed in 1 2; do
  stage "$S/unified_$seed" configs/unified.yaml "$CORL" train --config configs/unified.yaml \
    --init "$BASE" --set run.seed=$seed --out "$S/unified_$seed" $(machine_flags configs/unified.yaml)
done
stage "$S/eval" configs/eval.yaml "$CORL" eval --config configs/eval.yaml --suite all \
  --set report.plotter=none --out "$S/eval" --ckpt "$BASE" --ckpt runs/unified \
  --ckpt "$S/unified_1" --ckpt "$S/unified_2"
.venv/bin/python scripts/results_table.py "$S/eval/results.json" --baseline "$BASE_NAME" \
  --labels "$BASE_NAME=base,unified=unified (seed 1234),unified_1=unified (seed 1),unified_2=unified (seed 2)" \
  | tee "$S/table.md"
# The same suites drawn from the world the base was pretrained on; a changed final model redoes it.
STAGE_CHAIN="$STAGE_CHAIN $(cat runs/refine_t2i/.stage)"
stage runs/eval_web configs/eval.yaml \
  "$CORL" eval --config configs/eval.yaml --suite all --set world=configs/web.yaml \
  --set geneval.prompts_per_category=50 --set report.plotter=none --out runs/eval_web \
  --ckpt "$BASE" --ckpt runs/refine_t2i
echo "seeds: the base's own pretraining world (configs/web.yaml), nothing forgotten"
.venv/bin/python scripts/results_table.py runs/eval_web/results.json --baseline "$BASE_NAME" \
  --labels "$BASE_NAME=base,refine_t2i=unified + refined t2i (final)" \
  | tee runs/eval_web/table.md
