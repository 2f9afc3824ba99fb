#!/usr/bin/env bash
# corl against transformers at Janus-Pro-1B's real widths on one GPU, bf16 (the
# `janus` step of scripts/device_check.sh): a random checkpoint with all 24 layers made by
# transformers on the GPU (tools/bench_janus_hf.py make 1b; no download), then in one run
#
#   1. the device-to-device copy bandwidth (the roofline's ceiling);
#   2. corl (build/bench_janus --device cuda --dtype bf16): images of one prompt at batches 16 and
#      64 (576 codes each, CFG 5, sampling at temperature 1, VQ decode at 384 px to RGB bytes),
#      the sampling alone with the decoding step as a CUDA graph and, at 64, without; answers of
#      ANSWER_TOKENS tokens to one image and question;
#   3. transformers on the same token ids: generate(generation_mode="image") +
#      decode_image_tokens, generate() for answers;
#   4. two steps of the unified stage (configs/janus_pro_1b_unified.yaml: one group of 8 images
#      and 8 answers a step, model.freeze on the language model's companions, activation
#      checkpointing, bf16 autocast): seconds per step and peak GPU memory (nvidia-smi every
#      100 ms), against docs/janus.md's estimate;
#   5. the table (tools/bench_janus_hf.py gpu-report): images/s ratios (target >= 3x at both
#      batches), the decode step's share of the copy bandwidth (target >= 50% at 64), the peak
#      against the estimate (target within 15%).
#
#   BUILD=.devbin scripts/bench_janus_gpu.sh      # programs from scripts/device_build.sh
#   STEPS="make corl transformers unified report"  # a subset, in this order
#
# Writes $OUT/janus.log (every program's output and the results as JSON) and $OUT/janus.md (the
# table): two files, within what the device tool brings back beside device_check's others. OUT
# defaults to runs/bench_janus_gpu. Fits the
# 8 minutes of device_check.sh's budget with the programs built beforehand: about 1 minute to
# make and save the checkpoint, under a minute for corl, 2-3 for transformers (576 eager Python
# decoding steps per batch), 1-2 for the unified steps.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
OUT=${OUT:-$ROOT/runs/bench_janus_gpu}
BUILD=${BUILD:-$ROOT/build}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-$(mktemp -d)}
STEPS=${STEPS:-"make corl transformers unified report"}
BATCHES=${BATCHES:-16,64}
REPEATS=${REPEATS:-1}
ANSWER_TOKENS=${ANSWER_TOKENS:-64}
CFG=5
CKPT=${CKPT:-$WORK/janus-pro-1b-random}
BENCH="$PYTHON tools/bench_janus_hf.py"
mkdir -p "$OUT"
: >"$OUT/janus.log"
START=$SECONDS
say() { printf '== %4ds %s\n' $((SECONDS - START)) "$*"; }
fail() { say "FAILED: $*"; exit 1; }
wants() { [[ " $STEPS " == *" $1 "* ]]; }

if wants make; then
  say "random Janus-Pro-1B-sized checkpoint on the GPU (bf16) in $CKPT"
  $BENCH make 1b "$CKPT" --device cuda >>"$OUT/janus.log" 2>&1 ||
    { tail -20 "$OUT/janus.log"; fail "make (janus.log)"; }
  $BENCH copy-bandwidth >"$WORK/copy.json" || fail "copy bandwidth"
  cat "$WORK/copy.json"
fi
if wants corl; then
  say "corl: images at batches $BATCHES, answers of $ANSWER_TOKENS tokens"
  "$BUILD/bench_janus" --ckpt "$CKPT" --device cuda --dtype bf16 --threads 8 --no-update \
    --batches "$BATCHES" --repeats "$REPEATS" --cfg $CFG --answer-tokens "$ANSWER_TOKENS" \
    --inputs "$WORK/inputs.json" >"$WORK/corl.json" 2>>"$OUT/janus.log" ||
    { tail -20 "$OUT/janus.log"; fail "bench_janus"; }
  cat "$WORK/corl.json"
fi
if wants transformers; then
  say "transformers on the same ids"
  $BENCH measure "$CKPT" "$WORK/inputs.json" --device cuda --dtype bf16 --threads 8 --no-update \
    --batches "$BATCHES" --repeats "$REPEATS" --cfg $CFG --answer-tokens "$ANSWER_TOKENS" \
    >"$WORK/transformers.json" 2>>"$OUT/janus.log" ||
    { tail -20 "$OUT/janus.log"; fail "transformers"; }
  cat "$WORK/transformers.json"
fi
if wants unified; then
  say "two unified steps at 1B (LM trained, activation checkpointing, bf16 autocast)"
  "$BUILD/corl" data --config configs/world.yaml --set data.train_size=64 --set data.eval_size=8 \
    --out "$WORK/data" >>"$OUT/janus.log" 2>&1 || fail "corl data (janus.log)"
  GPU=${CUDA_VISIBLE_DEVICES:-0}
  GPU=${GPU%%,*}
  before=$(nvidia-smi -i "$GPU" --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  nvidia-smi -i "$GPU" --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 \
    >"$WORK/unified.mem" 2>/dev/null &
  sampler=$!
  "$BUILD/corl" train --config configs/janus_pro_1b_unified.yaml --set model.path="$CKPT" \
    --set run.device=cuda --set run.autocast=bf16 --set run.threads=8 \
    --set data.train="$WORK/data/train.jsonl" --set data.eval="$WORK/data/eval.jsonl" \
    --set grpo.per_device_train_batch_size=8 --set grpo.num_generations=8 \
    --set optim.gradient_accumulation_steps=1 --set grpo.max_steps=2 \
    --set grpo.max_completion_length=64 --set train.checkpoint_every=0 \
    --set eval.prompts=0 --set eval.questions=0 \
    --set "model.freeze=[vision_model, aligner, gen_embed, gen_aligner, gen_head]" \
    --set model.gradient_checkpointing=true --out "$WORK/unified" >>"$OUT/janus.log" 2>&1
  status=$?
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  ((status == 0)) || { tail -20 "$OUT/janus.log"; fail "unified stage (janus.log)"; }
  peak=$(( $(sort -n "$WORK/unified.mem" | tail -1) - before ))
  # docs/janus.md: 1B, LM only, dist.zero_stage 0, beta 0: 28.1 GB fixed, then per row with
  # checkpointing 0.22 GB (text-to-image) and 0.32 GB (answer), one group of 8 + 8 a micro-batch.
  "$PYTHON" - "$WORK/unified/metrics.jsonl" "$peak" >"$WORK/unified.json" <<'PY' || fail "unified metrics"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
last = rows[-1]
print(json.dumps({"what": "1 group of 8 images + 8 answers a step, LM only, checkpointing, bf16 autocast",
                  "seconds_per_step": last["time_rollout"] + last["time_reward"] + last["time_update"],
                  "rollout": last["time_rollout"], "reward": last["time_reward"],
                  "update": last["time_update"], "peak_mib": int(sys.argv[2]),
                  "estimate_gb": 28.1 + 8 * 0.22 + 8 * 0.32,
                  "estimate_how": "28.1 GB fixed + 8 x 0.22 + 8 x 0.32 GB of checkpointed rows"}))
PY
  cat "$WORK/unified.json"
fi
if wants report; then
  say "report"
  prompt=$("$PYTHON" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["t2i"]))' "$WORK/inputs.json")
  describe=$($BENCH describe "$CKPT" "$WORK/inputs.json" --sizes-only) || fail "describe"
  unified=$(cat "$WORK/unified.json" 2>/dev/null || echo null)
  printf '{"corl": %s, "transformers": %s, "describe": %s, "copy": %s, "unified": %s, "prompt_tokens": %s, "cfg": %s, "answer_tokens": %s}\n' \
    "$(cat "$WORK/corl.json")" "$(cat "$WORK/transformers.json")" "$describe" \
    "$(cat "$WORK/copy.json")" "$unified" "$prompt" $CFG "$ANSWER_TOKENS" >"$WORK/janus_gpu.json"
  { echo "== results"; cat "$WORK/janus_gpu.json"; } >>"$OUT/janus.log"
  $BENCH gpu-report "$WORK/janus_gpu.json" | tee "$OUT/janus.md" || fail "gpu-report"
fi
say "bench_janus_gpu: done ($STEPS)"
