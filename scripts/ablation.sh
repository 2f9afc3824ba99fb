#!/usr/bin/env bash
# The paper's ablation on ShapeWorld: which stages buy which gains, whether training one task
# moves the other, and what this project's extra rewards add to the paper's own. Every model is
# evaluated on the same held-out suites; the table goes to runs/ablation/table.md (and, by hand,
# into docs/results.md).
#
#   base                 the quickstart's base (models/shapeworld-base, or runs/base's with
#                        --from-scratch)
#   unified              CoRL stage 1 only (runs/unified)
#   refined              stage 2 only, from the base: t2i, and the base plus its and the refined
#                        mcq stage's changes
#   unified + refined    stage 1 then stage 2: the quickstart's final model (refined t2i from the
#                        unified model), with the refined mcq stage's change added, and with the
#                        refined mcq and oe stages' changes added
#   t2i-only RL          the unified recipe with images alone (task: t2i)
#   mm2t-only RL         the unified recipe with answers alone (task: mm2t)
#                        (unified, t2i-only and mm2t-only once more with seed 1: two seeds each;
#                        the unified one is scripts/seeds.sh's runs/seeds/unified_1)
#   paper's rewards      the unified recipe with the paper's rewards alone: cycle and tim for
#                        images, accuracy and format for answers (no geneval, no perception)
#
#   scripts/ablation.sh [--fresh | --from-scratch]   (runs the quickstart first; reuses what is
#                                                      finished)
# shellcheck disable=SC2046  # $(machine_flags CONFIG) is meant to split into its flags
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/quickstart.sh "$@"
[[ ${1:-} == --fresh ]] && export FRESH=1
if [[ ${1:-} == --from-scratch ]]; then
  BASE=runs/base/pretrain/final BASE_NAME=pretrain
else
  BASE=models/shapeworld-base BASE_NAME=shapeworld-base
fi
CORL=${BUILD_DIR:-build}/corl
source scripts/lib/stages.sh
A=runs/ablation
start=$SECONDS

# The base's weights and the quickstart's unified stamp lead the chain: a changed base or unified
# model redoes what follows.
STAGE_CHAIN="$(sha256sum "$BASE/model.safetensors" | cut -d' ' -f1) $(cat runs/unified/.stage)"
# The unified stage with seed 1, first and word for word as scripts/seeds.sh runs it: either
# script reuses the other's.
stage runs/seeds/unified_1 configs/unified.yaml "$CORL" train --config configs/unified.yaml \
  --init "$BASE" --set run.seed=1 --out runs/seeds/unified_1 $(machine_flags configs/unified.yaml)
# The quickstart's final model joins the chain after it: a changed final model redoes the merges.
STAGE_CHAIN="$STAGE_CHAIN $(cat runs/refine_t2i/.stage)"
for task in t2i mcq; do
  stage "$A/base_refine_$task" "configs/refine_$task.yaml" \
    "$CORL" refine --task "$task" --config "configs/refine_$task.yaml" --init "$BASE" \
    --out "$A/base_refine_$task" $(machine_flags "configs/refine_$task.yaml")
done
stage "$A/base_merged" - "$CORL" merge --inputs "$A/base_refine_t2i" "$A/base_refine_mcq" \
  "$BASE" --weights 1 1 -1 --out "$A/base_merged/final"
# The refined answer stages from the unified model, their changes added to the final model.
for task in mcq oe; do
  stage "$A/refine_$task" "configs/refine_$task.yaml" \
    "$CORL" refine --task "$task" --config "configs/refine_$task.yaml" --init runs/unified \
    --out "$A/refine_$task" $(machine_flags "configs/refine_$task.yaml")
done
stage "$A/final_mcq" - "$CORL" merge --inputs runs/refine_t2i "$A/refine_mcq" runs/unified \
  --weights 1 1 -1 --out "$A/final_mcq/final"
stage "$A/final_mcq_oe" - "$CORL" merge --inputs runs/refine_t2i "$A/refine_mcq" \
  "$A/refine_oe" runs/unified --weights 1 1 1 -2 --out "$A/final_mcq_oe/final"
# The unified recipe with one task's rollouts and that task's rewards (weights as in the recipe),
# and all three once more with another seed.
for seed in 1234 1; do
  stage "$A/only_t2i_$seed" configs/unified.yaml "$CORL" train --config configs/unified.yaml \
    --init "$BASE" --set run.seed=$seed --set task=t2i \
    --set "grpo.reward_funcs=[geneval, cycle, tim]" --set "grpo.reward_weights=[1.0, 0.5, 0.5]" \
    --out "$A/only_t2i_$seed" $(machine_flags configs/unified.yaml)
  stage "$A/only_mm2t_$seed" configs/unified.yaml "$CORL" train --config configs/unified.yaml \
    --init "$BASE" --set run.seed=$seed --set task=mm2t \
    --set "grpo.reward_funcs=[accuracy, format, perception, options]" \
    --set "grpo.reward_weights=[1.0, 0.5, 1.0, 0.5]" --out "$A/only_mm2t_$seed" \
    $(machine_flags configs/unified.yaml)
done
# The paper's rewards alone (its Eq. for T2I: cycle + tim; for MM2T: accuracy + format).
stage "$A/paper_rewards" configs/unified.yaml "$CORL" train --config configs/unified.yaml \
  --init "$BASE" --set "grpo.reward_funcs=[cycle, tim, accuracy, format]" \
  --set "grpo.reward_weights=[1.0, 1.0, 1.0, 1.0]" --out "$A/paper_rewards" $(machine_flags configs/unified.yaml)
stage "$A/eval" configs/eval.yaml "$CORL" eval --config configs/eval.yaml --suite all \
  --out "$A/eval" --ckpt "$BASE" --ckpt runs/unified --ckpt "$A/base_refine_t2i" \
  --ckpt "$A/base_merged/final" --ckpt runs/refine_t2i --ckpt "$A/final_mcq/final" \
  --ckpt "$A/final_mcq_oe/final" \
  --ckpt runs/seeds/unified_1 --ckpt "$A/only_t2i_1234" --ckpt "$A/only_t2i_1" \
  --ckpt "$A/only_mm2t_1234" --ckpt "$A/only_mm2t_1" --ckpt "$A/paper_rewards"

labels="$BASE_NAME=base,unified=unified,unified_1=unified (seed 1)"
labels+=",base_refine_t2i=refined t2i (from base),base_merged=refined t2i+mcq (from base)"
labels+=",refine_t2i=unified + refined t2i (final),final_mcq=unified + refined t2i+mcq"
labels+=",final_mcq_oe=unified + refined t2i+mcq+oe"
labels+=",only_t2i_1234=t2i-only RL,only_t2i_1=t2i-only RL (seed 1)"
labels+=",only_mm2t_1234=mm2t-only RL,only_mm2t_1=mm2t-only RL (seed 1)"
labels+=",paper_rewards=unified with the paper's rewards"
.venv/bin/python scripts/results_table.py "$A/eval/results.json" --baseline "$BASE_NAME" \
  --labels "$labels" \
  | tee "$A/table.md"
echo "ablation: $((SECONDS - start)) s after the quickstart; table in $A/table.md, report in $A/eval/report.html"
