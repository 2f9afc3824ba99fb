#!/usr/bin/env bash
# Resume after a real kill -9: pretraining and GRPO stages (one started from a Hugging Face
# folder) are killed once metrics.jsonl holds a step past their latest checkpoint, then resumed
# with --resume. Each step must be logged once, and the final weights and metrics (less the
# wall-clock fields) must equal those of a run that was never interrupted, bit for bit.
# Environment: CORL (the binary), SRC (the source tree).
set -u
CORL=${CORL:?} SRC=${SRC:?}
source "$SRC/tests/lib/runs.sh"

quiet "$CORL" "${PRETRAIN[@]}" --out "$WORK/pre"
if kill_past_checkpoint pretrain "$WORK/pre_killed" -- "$CORL" "${PRETRAIN[@]}"; then
  quiet "$CORL" "${PRETRAIN[@]}" --out "$WORK/pre_killed" --resume
  same_as_whole pretrain "$WORK/pre" "$WORK/pre_killed" 40
fi

quiet "$CORL" "${TRAIN[@]}" --out "$WORK/uni"
if kill_past_checkpoint train "$WORK/uni_killed" -- "$CORL" "${TRAIN[@]}"; then
  quiet "$CORL" "${TRAIN[@]}" --out "$WORK/uni_killed" --resume
  same_as_whole train "$WORK/uni" "$WORK/uni_killed" 12
fi

# A stage started from a Hugging Face Janus folder checkpoints in that layout (transformers'
# names) and resumes from it.
if "$PY" -c "import transformers, tokenizers" 2>/dev/null; then
  quiet "$PY" "$SRC/tests/janus_hf_reference.py" "$WORK/janus"
  JANUS=("${TRAIN[@]}" --set model.path="$WORK/janus/model")
  quiet "$CORL" "${JANUS[@]}" --out "$WORK/juni"
  if kill_past_checkpoint janus "$WORK/juni_killed" -- "$CORL" "${JANUS[@]}"; then
    quiet "$CORL" "${JANUS[@]}" --out "$WORK/juni_killed" --resume
    same_as_whole janus "$WORK/juni" "$WORK/juni_killed" 12
  fi
else
  echo "SKIP janus: transformers is not installed in $SRC/.venv (scripts/setup.sh installs it)"
fi

[[ $failures -eq 0 ]] && echo "all passed"
[[ $failures -eq 0 ]]
