#!/usr/bin/env bash
# The ShapeWorld base of models/shapeworld-base, from its recipes:
#   data (configs/web.yaml: the pretraining world, 100,000 training rows) -> tokenizers
#   (configs/tokenizers.yaml) -> pretraining (configs/base.yaml, hours on 2 cores) -> its learning
#   curve (corl eval of checkpoints on smaller suites) -> the held-out figures of the final base
#   (configs/eval.yaml, on suites of the pretraining world)
#
#   scripts/base.sh          # into runs/base (BASE_OUT=DIR for another folder)
#   BASE_TOKENIZER=models/shapeworld-base scripts/base.sh   # the release's own tokenizers, not
#                                                            # retrained (as the release was made)
#
# Run it again after a kill, or in a later session: finished steps are kept, and the pretraining
# goes on from its latest checkpoint (`corl pretrain --resume`) to the same weights as an
# uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BASE_OUT:-runs/base}
scripts/setup.sh
CORL=${BUILD_DIR:-build}/corl

# Each product is written atomically (renamed into place), so its presence means it is whole.
[[ -s $OUT/data/train.jsonl ]] ||
  "$CORL" data --config configs/web.yaml --out "$OUT/data"
if [[ -n ${BASE_TOKENIZER:-} && ! -s $OUT/tokenizer/vq.safetensors ]]; then
  rm -rf "$OUT/tokenizer.part" && mkdir -p "$OUT/tokenizer.part"
  cp "$BASE_TOKENIZER/text.model" "$BASE_TOKENIZER/vq.safetensors" "$OUT/tokenizer.part/"
  # The recipe that trained them, as a release keeps it (scripts/release_base.py).
  cp "$BASE_TOKENIZER/tokenizers.yaml" "$OUT/tokenizer.part/recipe.yaml"
  rm -rf "$OUT/tokenizer" && mv "$OUT/tokenizer.part" "$OUT/tokenizer"
fi
[[ -s $OUT/tokenizer/vq.safetensors ]] ||
  "$CORL" tokenizer --config configs/tokenizers.yaml --set text.data="$OUT/data/train.jsonl" \
    --set image.data="$OUT/data/train.jsonl" --out "$OUT/tokenizer"
[[ -s $OUT/pretrain/final/model.safetensors ]] ||
  "$CORL" pretrain --config configs/base.yaml --set data.train="$OUT/data/train.jsonl" \
    --set data.eval="$OUT/data/eval.jsonl" --set tokenizer.path="$OUT/tokenizer" \
    --out "$OUT/pretrain" --resume

# The learning curve: every 2,000th step's checkpoint and the final base on suites of 480
# images, 600 multiple-choice and 1,200 open-ended questions (standard errors about 0.02).
curve=()
for step in 1000 2000 4000 6000 8000 10000 12000 14000 16000; do
  checkpoint=$(printf '%s/pretrain/checkpoints/step-%08d' "$OUT" "$step")
  [[ -d $checkpoint ]] && curve+=(--ckpt "$checkpoint")
done
curve+=(--ckpt "$OUT/pretrain/final")
[[ -s $OUT/curve/results.json ]] ||
  "$CORL" eval --config configs/eval.yaml --suite all --set world="$OUT/data/recipe.yaml" \
    --set geneval.prompts_per_category=20 --set mcq.questions=600 --set oe.questions=1200 \
    --set report.plotter=none "${curve[@]}" --out "$OUT/curve"
# The final base on the default suites, as every later model is judged.
[[ -s $OUT/eval/results.json ]] ||
  "$CORL" eval --config configs/eval.yaml --suite all --set world="$OUT/data/recipe.yaml" \
    --ckpt "$OUT/pretrain/final" --out "$OUT/eval"
.venv/bin/python scripts/results_table.py "$OUT/curve/results.json" --baseline pretrain@step-00001000
echo "base: $OUT/pretrain/final; curve in $OUT/curve, held-out figures in $OUT/eval"
echo "base: scripts/release_base.py $OUT models/shapeworld-base packs the release"
