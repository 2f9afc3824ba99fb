#!/usr/bin/env bash
# Paired controls for the quickstart's GRPO stages: each stage again from the same model with the
# same seed at learning rate 1e-9, so it sees the same prompts, questions and rollout seeds and
# does not learn. The difference from its control, step by step, is what the stage's training
# bought, free of the prompts' own drift (docs/experiments.md).
#
#   scripts/controls.sh [--threads N]   (after scripts/quickstart.sh; reuses finished controls)
#
# Controls go to runs/controls/<stage>; the paired summaries to runs/controls/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2
case "${1:-}" in
  --threads) THREADS=${2:?usage: scripts/controls.sh [--threads N]} ;;
  "") ;;
  *) echo "usage: scripts/controls.sh [--threads N]" >&2; exit 2 ;;
esac
CORL=${BUILD_DIR:-build}/corl
source scripts/lib/stages.sh
BASE=models/shapeworld-base
[[ -f runs/unified/.stage ]] ||
  { echo "controls: runs/unified is not finished; run scripts/quickstart.sh" >&2; exit 1; }
C=runs/controls
# The models they start from lead the chain: a new base or unified model redoes the controls.
STAGE_CHAIN="$(sha256sum "$BASE/model.safetensors" | cut -d' ' -f1) $(cat runs/unified/.stage)"
FROZEN=(--set optim.learning_rate=1e-9 --set run.threads="$THREADS")

stage "$C/unified" configs/unified.yaml "$CORL" train --config configs/unified.yaml \
  --init "$BASE" --out "$C/unified" "${FROZEN[@]}"
for task in t2i mcq; do
  stage "$C/refine_$task" "configs/refine_$task.yaml" "$CORL" refine --task "$task" \
    --config "configs/refine_$task.yaml" --init runs/unified --out "$C/refine_$task" "${FROZEN[@]}"
done

{
  for name in unified refine_t2i refine_mcq; do
    echo "## $name against its control"
    echo '```'
    .venv/bin/python scripts/run_summary.py "runs/$name" --against "$C/$name"
    echo '```'
  done
} | tee "$C/summary.md"
