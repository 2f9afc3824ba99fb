#!/usr/bin/env bash
# Does any of the GRPO options beyond the paper's raise the unified stage's held-out gains?
# Each row is the unified recipe from the released base with one option changed: the same seed,
# prompts, questions and rollout draws. All are evaluated on the same held-out suites, paired
# with the base (a run at learning rate ~0 scores as the base does: docs/experiments.md). The
# table goes to runs/options/table.md; docs/experiments.md holds the measured one.
#
#   default          configs/unified.yaml as shipped
#   entropy_0.2      grpo.top_entropy_quantile 0.2 (the highest-entropy fifth of each task's tokens)
#   scale_batch      grpo.scale_rewards batch
#   normalize_first  grpo.multi_objective_aggregation normalize_then_sum
#
# No row for the others, by reasoning and by the default run's own figures: at num_iterations 1
# every ratio is 1 where its gradient is taken, so importance_sampling_level sequence (GSPO)
# gives the token-level gradient exactly (docs/method.md); the default cuts no answer
# (completion_truncated 0 in metrics.jsonl), so mask_truncated_completions changes nothing; and
# the CPU samples in fp32 with the trainer's own weights, so importance_sampling_correction's
# weights are 1 up to float error.
#
#   scripts/grpo_options.sh [--fresh] [--rows "ROW ..."]
#
# After scripts/setup.sh and the build; reuses finished rows. --rows trains only those rows and
# stops before the evaluation: on a machine with cores to spare, rows run side by side (each
# row's folder belongs to one process at a time); a last plain run evaluates them all.
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=""
while (($#)); do
  case "$1" in
    --fresh) export FRESH=1 ;;
    --rows) ONLY=${2:?usage: scripts/grpo_options.sh [--fresh] [--rows "ROW ..."]}; shift ;;
    *) echo "usage: scripts/grpo_options.sh [--fresh] [--rows \"ROW ...\"]" >&2; exit 2 ;;
  esac
  shift
done
CORL=${BUILD_DIR:-build}/corl
BASE=models/shapeworld-base
source scripts/lib/stages.sh
O=runs/options
start=$SECONDS

STAGE_CHAIN=$(sha256sum "$CORL" | cut -d' ' -f1)
stage runs/data configs/world.yaml "$CORL" data --config configs/world.yaml
(cd "$BASE" && sha256sum --quiet -c SHA256SUMS) ||
  { echo "grpo_options: $BASE does not match its SHA256SUMS" >&2; exit 1; }
STAGE_CHAIN="$STAGE_CHAIN $(sha256sum "$BASE/model.safetensors" | cut -d' ' -f1)"
ROOT_CHAIN=$STAGE_CHAIN

declare -A OPTIONS=(
  [default]=""
  [entropy_0.2]="grpo.top_entropy_quantile=0.2"
  [scale_batch]="grpo.scale_rewards=batch"
  [normalize_first]="grpo.multi_objective_aggregation=normalize_then_sum"
)
ROWS=(default entropy_0.2 scale_batch normalize_first)
for row in $ONLY; do
  [[ -v "OPTIONS[$row]" ]] || { echo "grpo_options: no row '$row' (${ROWS[*]})" >&2; exit 2; }
done
CKPTS=(--ckpt "$BASE")
for row in "${ROWS[@]}"; do
  [[ -z $ONLY || " $ONLY " == *" $row "* ]] || continue
  sets=()
  for kv in ${OPTIONS[$row]}; do sets+=(--set "$kv"); done
  # Rows do not read each other: each one's stamp depends on the base and program alone.
  STAGE_CHAIN=$ROOT_CHAIN
  stage "$O/$row" configs/unified.yaml "$CORL" train --config configs/unified.yaml \
    --init "$BASE" --out "$O/$row" "${sets[@]}"
  CKPTS+=(--ckpt "$O/$row")
done
[[ -z $ONLY ]] || exit 0
STAGE_CHAIN="$ROOT_CHAIN $(for row in "${ROWS[@]}"; do cat "$O/$row/.stage"; done)"
stage "$O/eval" configs/eval.yaml "$CORL" eval --config configs/eval.yaml --suite all \
  --out "$O/eval" "${CKPTS[@]}"

.venv/bin/python scripts/results_table.py "$O/eval/results.json" --baseline shapeworld-base \
  | tee "$O/table.md"
echo "grpo_options: $((SECONDS - start)) s; table in $O/table.md"
