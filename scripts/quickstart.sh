#!/usr/bin/env bash
# The embedded default pipeline on a fresh machine: set-up and build, then
#   RL rows (configs/world.yaml) -> the released base (models/shapeworld-base, its SHA256SUMS
#   checked) -> unified stage -> refined t2i stage from the unified model (the final model) ->
#   the benchmarks (fresh suites of the RL world) on the base, the unified and the final model ->
#   runs/eval/report.html. The base and the final model on suites of the base's own pretraining
#   world (nothing forgotten): scripts/seeds.sh.
#
#   scripts/quickstart.sh                 # reuses every stage already finished for the same recipe
#   scripts/quickstart.sh --fresh         # redoes every stage
#   scripts/quickstart.sh --from-scratch  # first reproduces the base (scripts/base.sh: hours)
# shellcheck disable=SC2046  # $(machine_flags CONFIG) is meant to split into its flags
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  --fresh) export FRESH=1 ;;
  --from-scratch) FROM_SCRATCH=1 ;;
  "") ;;
  *) echo "usage: scripts/quickstart.sh [--fresh | --from-scratch]" >&2; exit 2 ;;
esac
scripts/setup.sh
CORL=${BUILD_DIR:-build}/corl
source scripts/lib/stages.sh
# The program is part of every stage's recipe: a rebuilt corl that behaves differently (a changed
# data generator, say) redoes the stages rather than reusing their old results.
STAGE_CHAIN=$(sha256sum "$CORL" | cut -d' ' -f1)

stage runs/data configs/world.yaml "$CORL" data --config configs/world.yaml
if [[ -n ${FROM_SCRATCH:-} ]]; then
  scripts/base.sh
  BASE=runs/base/pretrain/final BASE_NAME=pretrain
else
  BASE=models/shapeworld-base BASE_NAME=shapeworld-base
  (cd "$BASE" && sha256sum --quiet -c SHA256SUMS) ||
    { echo "quickstart: $BASE does not match its SHA256SUMS" >&2; exit 1; }
fi
# The base is part of every later stage's recipe.
STAGE_CHAIN="$STAGE_CHAIN $(sha256sum "$BASE/model.safetensors" | cut -d' ' -f1)"
# The GRPO stages run as two data-parallel ranks (RANKS=1: one process), in their recipes'
# precision where the CPU has bfloat16 products (machine_flags in scripts/lib/stages.sh); the eval
# runs two suites at once, one thread each, in float32 (configs/eval.yaml).
stage runs/unified configs/unified.yaml \
  "$CORL" train --config configs/unified.yaml --init "$BASE" $(machine_flags configs/unified.yaml)
# The refined text -> image stage (the paper's stage 2): the unified stage's image half alone, from
# the unified model; its model is the final model. The refined answer stages (mcq, oe) are
# scripts/ablation.sh's: added to the final model, both together lift open answers and leave
# multiple choice lower (docs/results.md).
stage runs/refine_t2i configs/refine_t2i.yaml \
  "$CORL" refine --task t2i --config configs/refine_t2i.yaml --init runs/unified \
  $(machine_flags configs/refine_t2i.yaml)
stage runs/eval configs/eval.yaml \
  "$CORL" eval --config configs/eval.yaml --suite all --out runs/eval \
  --ckpt "$BASE" --ckpt runs/unified --ckpt runs/refine_t2i

printf 'quickstart: stage times\n%s' "${STAGE_TIMES:-(every stage reused)
}"
labels="$BASE_NAME=base,unified=unified,refine_t2i=unified + refined t2i (final)"
echo "quickstart: the benchmarks (fresh suites of the RL world), against the base"
.venv/bin/python scripts/results_table.py runs/eval/results.json --baseline "$BASE_NAME" \
  --labels "$labels" \
  | tee runs/eval/table.md
echo "quickstart: report in runs/eval/report.html (results.json and table.md beside it)"
