# Sourced by the tests that kill and resume real runs (resume_kill_test.sh,
# kill_anywhere_test.sh): the smallest fixtures that train, the commands of a pretraining and a
# GRPO stage on them, and the checks of a resumed run against an uninterrupted one.
# Needs CORL (the binary) and SRC (the source tree); sets WORK (removed on exit) and `failures`.
PY="$SRC/.venv/bin/python"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0

fail() { echo "FAIL $*"; failures=$((failures + 1)); }
quiet() { "$@" >"$WORK/last.log" 2>&1 || { echo "FAIL: $*"; tail -5 "$WORK/last.log"; exit 1; }; }

# The smallest fixtures that train: 16-pixel scenes, a 32-code VQ, a one-layer model.
quiet "$CORL" data --config "$SRC/configs/world.yaml" --set world.resolution=16 \
  --set world.min_size=0.2 --set world.max_size=0.24 --set world.max_objects=2 \
  --set data.train_size=48 --set data.eval_size=8 --out "$WORK/data"
quiet "$CORL" tokenizer --config "$SRC/configs/tokenizers.yaml" \
  --set text.data="$WORK/data/train.jsonl" --set text.vocab_size=400 \
  --set image.data="$WORK/data/train.jsonl" --set image.vq.image_size=16 \
  --set image.vq.channels=8 --set "image.vq.channel_mult=[1, 2, 2]" --set image.vq.z_channels=8 \
  --set image.vq.codebook_size=32 --set image.vq.norm_groups=4 --set image.optim.steps=2 \
  --set image.optim.batch_size=4 --out "$WORK/tok"

PRETRAIN=(pretrain --config "$SRC/configs/pretrain.yaml" --set data.train="$WORK/data/train.jsonl"
  --set data.eval="$WORK/data/eval.jsonl" --set tokenizer.path="$WORK/tok"
  --set model.hidden_size=32 --set model.num_layers=1 --set model.num_heads=2
  --set model.num_kv_heads=1 --set model.intermediate_size=48 --set model.image_size=16
  --set model.vision_hidden_size=16 --set model.vision_layers=1 --set model.vision_heads=2
  --set model.vision_intermediate_size=24 --set optim.warmup_steps=2 --set train.t2i_batch=4
  --set train.caption_batch=1 --set train.qa_batch=2 --set train.steps=40
  --set train.checkpoint_every=8 --set train.log_every=1 --set eval.prompts=2
  --set eval.questions=2 --set eval.max_new_tokens=4 --set run.threads=1)
TRAIN=(train --config "$SRC/configs/unified.yaml" --init "$WORK/pre"
  --set data.train="$WORK/data/train.jsonl" --set data.eval="$WORK/data/eval.jsonl"
  --set grpo.max_steps=12 --set grpo.per_device_train_batch_size=2 --set grpo.num_generations=2
  --set optim.gradient_accumulation_steps=1
  --set grpo.max_completion_length=4 --set grpo.beta=0.04 --set train.checkpoint_every=3
  --set eval.prompts=2 --set eval.questions=2 --set eval.max_new_tokens=4 --set run.threads=1)

# The step of the latest finished checkpoint of run OUT and the last step its metrics.jsonl
# logged (0 when none), cheap enough to poll.
latest_checkpoint() {
  ls "$1/checkpoints" 2>/dev/null | grep -E '^step-[0-9]+$' | tail -1 | sed 's/^step-0*//;s/^$/0/'
}
last_logged() {
  grep -oE '"step":[0-9]+' "$1/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*://' | grep . ||
    echo 0
}

# Starts the command in the background and kills it (SIGKILL) as soon as metrics.jsonl holds a
# step past its latest checkpoint. A kill that lands just as the next checkpoint is written
# leaves no such step, and is tried again in a fresh folder.
kill_past_checkpoint() {  # NAME OUT -- command...
  local name=$1 out=$2
  shift 3
  local attempt ckpt logged
  for attempt in 1 2 3; do
    rm -rf "$out"
    "$@" --out "$out" >"$WORK/$name.killed.log" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      ckpt=$(latest_checkpoint "$out")
      if [[ -n $ckpt ]] && (($(last_logged "$out") > ckpt)); then
        kill -9 "$pid"
        break
      fi
      sleep 0.02
    done
    wait "$pid" 2>/dev/null
    if [[ -d $out/final ]]; then
      fail "$name: finished before it could be killed past a checkpoint"
      return 1
    fi
    ckpt=$(latest_checkpoint "$out")
    logged=$(last_logged "$out")
    if [[ -n $ckpt ]] && ((logged > ckpt)); then
      echo "ok   $name: killed at logged step $logged, latest checkpoint step $ckpt"
      return 0
    fi
  done
  fail "$name: three kills left no step past a checkpoint"
  return 1
}

# The resumed run against the uninterrupted one: every step once, the same metrics without the
# wall-clock fields, the same final weights.
same_as_whole() {  # NAME WHOLE RESUMED STEPS
  local name=$1 whole=$2 resumed=$3 steps=$4
  if ! "$PY" - "$whole" "$resumed" "$steps" <<'PYEOF'; then
import json, sys
whole, resumed, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rows(run):
    out = []
    for line in open(run + "/metrics.jsonl"):
        row = json.loads(line)
        out.append({k: v for k, v in row.items()
                    if not (k == "time" or k.startswith("time_") or k == "tokens_per_s")})
    return out
a, b = rows(whole), rows(resumed)
trained = [r["step"] for r in b if "geneval" not in r]
assert trained == list(range(1, steps + 1)), "steps logged: %s" % trained
assert a == b, "metrics differ:\n%s\n%s" % (a, b)
PYEOF
    fail "$name-metrics"
  else
    echo "ok   $name-metrics: each step once, as in the uninterrupted run"
  fi
  if cmp -s "$whole/final/model.safetensors" "$resumed/final/model.safetensors"; then
    echo "ok   $name-weights: bit for bit"
  else
    fail "$name-weights: final model.safetensors differs from the uninterrupted run's"
  fi
}

