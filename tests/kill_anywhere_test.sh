#!/usr/bin/env bash
# Kill anywhere: a pretraining and a GRPO stage are killed (SIGKILL) again and again, at moments
# drawn from a seeded generator and, every other time, while a checkpoint is being written (as
# soon as its temporary folder appears), and resumed with --resume each time, until they finish.
# After every kill, each checkpoint under its final name must be whole (its trainer.json names
# its step, its weights' header and sizes check out); at the end the weights and metrics (less
# wall-clock fields) must equal an uninterrupted run's, bit for bit.
# Environment: CORL (the binary), SRC (the source tree); KILLS (default 8 per run), SEED.
set -u
CORL=${CORL:?} SRC=${SRC:?}
source "$SRC/tests/lib/runs.sh"
KILLS=${KILLS:-8}
RANDOM=${SEED:-20261204}

# Every checkpoint folder under its final name is whole: a kill may leave only temporary folders
# (*.tmp-PID, *.old-PID) half-written.
checkpoints_whole() {  # OUT
  "$PY" - "$1" <<'PYEOF'
import json, os, struct, sys
run = sys.argv[1]
folders = []
if os.path.isdir(os.path.join(run, "checkpoints")):
    folders += [os.path.join(run, "checkpoints", d) for d in os.listdir(os.path.join(run, "checkpoints"))
                if d.startswith("step-") and "." not in d]
if os.path.isdir(os.path.join(run, "final")):
    folders.append(os.path.join(run, "final"))
for folder in folders:
    trainer = json.load(open(os.path.join(folder, "trainer.json")))
    name = os.path.basename(folder)
    if name.startswith("step-"):
        assert trainer["step"] == int(name[5:]), (folder, trainer.get("step"))
    for weights in ["model.safetensors", "vq.safetensors"]:
        path = os.path.join(folder, weights)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        end = max([v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"] + [0])
        assert os.path.getsize(path) == 8 + n + end, (path, "truncated")
    for other in ["text.model", "optimizer.pt"]:
        if name.startswith("step-"):
            assert os.path.getsize(os.path.join(folder, other)) > 0, (folder, other)
PYEOF
}

# Kills the command KILLS times, resuming it after each kill, then lets it finish.
kill_anywhere() {  # NAME OUT -- command...
  local name=$1 out=$2
  shift 3
  rm -rf "$out"
  local k pid resume=() during=0
  # On a loaded machine a kill aimed at a checkpoint write can land after it: up to 8 more
  # kills aimed at writes follow until one lands in one.
  for ((k = 0; k < KILLS || (during == 0 && k < KILLS + 8); k++)); do
    "$@" --out "$out" "${resume[@]}" >>"$WORK/$name.killed.log" 2>&1 &
    pid=$!
    resume=(--resume)
    if ((k % 2 == 0 && k < KILLS)); then
      # A moment drawn uniformly from the first 4 s (start-up included).
      sleep "$((RANDOM % 4)).$(printf '%03d' $((RANDOM % 1000)))"
    else
      # While a checkpoint is being written (polled every 2 ms: a write takes tens of ms, and a
      # busy loop would starve the tests that run beside this one).
      while kill -0 "$pid" 2>/dev/null && ! compgen -G "$out/checkpoints/*.tmp-*" >/dev/null &&
        ! compgen -G "$out/final.tmp-*" >/dev/null; do sleep 0.002; done
    fi
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # The killed process's own temporary folder (NAME.tmp-PID) is there: it died mid-write.
    if compgen -G "$out/checkpoints/*.tmp-$pid" >/dev/null || compgen -G "$out/final.tmp-$pid" >/dev/null; then
      during=$((during + 1))
    fi
    if ! checkpoints_whole "$out" >"$WORK/$name.check.log" 2>&1; then
      fail "$name: after kill $((k + 1)), a checkpoint under its final name is not whole"
      cat "$WORK/$name.check.log"
      return 1
    fi
  done
  quiet "$@" --out "$out" --resume
  if compgen -G "$out/checkpoints/*.tmp-*" >/dev/null || compgen -G "$out/*.tmp-*" >/dev/null ||
    compgen -G "$out/checkpoints/*.old-*" >/dev/null; then
    fail "$name: the resumed run left a killed writer's temporary folders behind"
  fi
  echo "ok   $name: $k kills ($during while a checkpoint was being written), resumed each time"
  if ((during == 0)); then
    fail "$name: no kill landed while a checkpoint was being written"
  fi
}

quiet "$CORL" "${PRETRAIN[@]}" --out "$WORK/pre"
kill_anywhere pretrain "$WORK/pre_killed" -- "$CORL" "${PRETRAIN[@]}" &&
  same_as_whole pretrain "$WORK/pre" "$WORK/pre_killed" 40

quiet "$CORL" "${TRAIN[@]}" --out "$WORK/uni"
kill_anywhere train "$WORK/uni_killed" -- "$CORL" "${TRAIN[@]}" &&
  same_as_whole train "$WORK/uni" "$WORK/uni_killed" 12

[[ $failures -eq 0 ]] && echo "all passed"
[[ $failures -eq 0 ]]
