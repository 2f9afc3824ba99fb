#!/usr/bin/env bash
# Faults in the middle of a GRPO stage (docs/hardening.md):
#   - a reward that returns NaN (CORL_FAULTS=reward_nan@STEP): the step is skipped, counted in
#     metrics.jsonl and said in the log; the run goes on;
#   - NaN rewards max_bad_steps times in a row: the run stops with a message and exit 1, its last
#     good checkpoint whole, and --resume goes on from it to the uninterrupted run's bits;
#   - a full disk while a checkpoint is written (a file-size limit, `ulimit -f`): the run stops
#     with a message naming the file, no checkpoint under its final name is half-written, and
#     --resume on a disk with room again ends with the uninterrupted run's bits.
#   - an unreadable image in the training rows: refused with its file and line before the first
#     step (every image is read then, so none is met mid-run), or skipped and counted with
#     data.skip_bad_rows.
# (A loss that overflows is cli_test's train-nonfinite case.)
# Environment: CORL (the binary), SRC (the source tree).
set -u
CORL=${CORL:?} SRC=${SRC:?}
source "$SRC/tests/lib/runs.sh"

expect() {  # NAME STATUS PATTERN -- command...: exit status and a line of its output
  local name=$1 status=$2 pattern=$3
  shift 4
  local got=0
  "$@" >"$WORK/$name.log" 2>&1 || got=$?
  if [[ $got != "$status" ]]; then
    fail "$name: exit $got, expected $status"
    tail -5 "$WORK/$name.log"
  elif [[ -n $pattern ]] && ! grep -Eq "$pattern" "$WORK/$name.log"; then
    fail "$name: no line matches '$pattern'"
    tail -5 "$WORK/$name.log"
  else
    echo "ok   $name"
  fi
}

quiet "$CORL" "${PRETRAIN[@]}" --out "$WORK/pre"
quiet "$CORL" "${TRAIN[@]}" --out "$WORK/uni"

# One NaN reward at step 2: skipped, counted, said; every other step updates.
expect nan-skipped 0 "step 2: non-finite reward, loss or gradient; step skipped" -- \
  env CORL_FAULTS=reward_nan@2 "$CORL" "${TRAIN[@]}" --out "$WORK/nan"
if ! "$PY" - "$WORK/nan/metrics.jsonl" <<'PYEOF'; then
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"updates"' in l]
assert [r["step"] for r in rows] == list(range(1, 13)), [r["step"] for r in rows]
for r in rows:
    if r["step"] == 2:
        assert r["updates"] == 0 and r["skipped_updates"] == 1, r
    else:
        assert r["updates"] == 1 and "skipped_updates" not in r, r
    assert r["bad_steps"] == (1 if r["step"] >= 2 else 0), r
PYEOF
  fail "nan-skipped-counted"
else
  echo "ok   nan-skipped-counted: step 2 skipped, bad_steps 1 from then on"
fi

# NaN rewards at steps 4 and 5 with max_bad_steps 2: stop after step 5; step-3 is the last good
# checkpoint; resumed without the fault, the run ends as the uninterrupted one.
expect nan-stops 1 "2 non-finite steps in a row \(grpo.max_bad_steps\); stopping" -- \
  env CORL_FAULTS=reward_nan@4,reward_nan@5 "$CORL" "${TRAIN[@]}" --set grpo.max_bad_steps=2 \
  --out "$WORK/stop"
expect nan-stops-checkpoint 0 "" -- test "$(latest_checkpoint "$WORK/stop")" = 3
quiet "$CORL" "${TRAIN[@]}" --out "$WORK/stop" --resume
same_as_whole nan-resumed "$WORK/uni" "$WORK/stop" 12

# A full disk at the step-6 checkpoint of a run resumed from step 3: a file-size limit below
# the weights' size (SIGXFSZ ignored, so that a write fails with EFBIG as on a full disk).
KB=$(($(stat -c %s "$WORK/uni/final/model.safetensors") / 1024 / 2))
cp -r "$WORK/uni" "$WORK/full"
rm -rf "$WORK/full/final" "$WORK/full/checkpoints/step-00000006" "$WORK/full/checkpoints/step-00000009"
expect disk-full 1 "model.safetensors.*(File too large|cannot)" -- \
  bash -c 'trap "" XFSZ; ulimit -f "$0"; exec "$@"' "$KB" "$CORL" "${TRAIN[@]}" \
  --out "$WORK/full" --resume
expect disk-full-nothing-half-written 0 "" -- test "$(latest_checkpoint "$WORK/full")" = 3
quiet "$CORL" "${TRAIN[@]}" --out "$WORK/full" --resume
same_as_whole disk-full-resumed "$WORK/uni" "$WORK/full" 12

# An unreadable image in the training rows (a text file named .png, on row 5): the stage refuses
# it with the file and line before its first step; with data.skip_bad_rows it skips and counts
# the row, and trains.
mkdir -p "$WORK/badimg/images"
cp "$WORK"/data/images/* "$WORK/badimg/images/"
echo "not an image" >"$WORK/badimg/images/broken.png"
"$PY" - "$WORK/data/train.jsonl" "$WORK/badimg/train.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows[4]["real_image"] = "images/broken.png"
open(sys.argv[2], "w").write("".join(json.dumps(r) + "\n" for r in rows))
PYEOF
expect bad-image-refused 1 "train.jsonl:5: .*broken.png" -- \
  "$CORL" "${TRAIN[@]}" --set data.train="$WORK/badimg/train.jsonl" --out "$WORK/badimg/run"
expect bad-image-no-step 0 "" -- test ! -s "$WORK/badimg/run/metrics.jsonl"
expect bad-image-skipped 0 "skipped 1 bad rows" -- \
  "$CORL" "${TRAIN[@]}" --set data.train="$WORK/badimg/train.jsonl" --set data.skip_bad_rows=true \
  --set grpo.max_steps=2 --out "$WORK/badimg/skip"

[[ $failures -eq 0 ]] && echo "all passed"
[[ $failures -eq 0 ]]
