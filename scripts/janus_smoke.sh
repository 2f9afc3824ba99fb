#!/usr/bin/env bash
# One unified step of configs/janus_pro_1b_unified.yaml at Janus-Pro-1B's real widths, on the CPU:
# the first run to make before renting GPUs. No download:
#
#   1. transformers makes a random JanusForConditionalGeneration of Janus-Pro-1B's widths
#      (tools/bench_janus_hf.py make 1b: text 2048 wide, 16 heads, ffn 5632, a 102,400-token
#      vocabulary; SigLIP-L at 384 px, 576 image tokens; the VQ with 16,384 codes), with LAYERS
#      decoder layers instead of 24, saved in fp32;
#   2. `corl data` renders a few ShapeWorld rows (64 px; the rollouts resize them to 384);
#   3. `corl train` runs one update of the recipe on them under /usr/bin/time -v. What changes,
#      and why: run.device cpu and run.autocast none (no GPU), run.threads (this machine's cores),
#      grpo.max_steps 1, optim.gradient_accumulation_steps 1 (one prompt: 8 images and 8 answers,
#      where the recipe's update is 32 prompts over 8 GPUs), the data paths, and eval.prompts /
#      eval.questions 0 (the end-of-run evaluation would sample 1,000 of each). Everything else is
#      the recipe's: G 8, answers up to 576 tokens, CFG 5, the four rewards, the linear schedule
#      (one update of one: the peak 4e-6), the frozen vision and generation parts, activation
#      checkpointing;
#   4. transformers loads the checkpoint corl wrote (final/) with no missing, unexpected or
#      mis-shaped tensor, and its weights are compared with the start: the trained language
#      model's differ, the frozen vision encoder's and the VQ's do not.
#
#   scripts/janus_smoke.sh                 # build/corl, 2 decoder layers, a temporary folder
#   LAYERS=4 WORK=/tmp/smoke BUILD=build scripts/janus_smoke.sh
#
# Prints the wall time and peak memory of the step (GNU time's "Maximum resident set size") and
# the CPU model. docs/janus.md ("A smoke test at the real widths") has the figures of one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
LAYERS=${LAYERS:-2}
THREADS=${THREADS:-$(nproc)}
WORK=${WORK:-$(mktemp -d)}
CKPT=$WORK/janus-pro-1b-random
START=$SECONDS
say() { printf '== %4ds %s\n' $((SECONDS - START)) "$*"; }
fail() { say "FAILED: $*"; exit 1; }

[[ -x $BUILD/corl ]] || fail "$BUILD/corl not found (scripts/setup.sh builds it)"
[[ -x /usr/bin/time ]] || fail "/usr/bin/time (GNU time) not found: apt-get install time"
"$PYTHON" -c "import transformers, safetensors" 2>/dev/null ||
  fail "$PYTHON lacks transformers or safetensors (scripts/setup.sh installs them)"
mkdir -p "$WORK"

say "random Janus-Pro-1B-wide checkpoint, $LAYERS decoder layers, in $CKPT"
"$PYTHON" tools/bench_janus_hf.py make 1b "$CKPT" --layers "$LAYERS" >"$WORK/make.log" 2>&1 ||
  { tail -20 "$WORK/make.log"; fail "make"; }

say "ShapeWorld rows"
"$BUILD/corl" data --config configs/world.yaml --set data.train_size=8 --set data.eval_size=2 \
  --set run.threads="$THREADS" --out "$WORK/data" >"$WORK/data.log" 2>&1 ||
  { tail -20 "$WORK/data.log"; fail "corl data"; }

say "one unified step of configs/janus_pro_1b_unified.yaml on the CPU ($THREADS threads)"
status=0
/usr/bin/time -v -o "$WORK/time.txt" "$BUILD/corl" train \
  --config configs/janus_pro_1b_unified.yaml --set model.path="$CKPT" \
  --set run.device=cpu --set run.autocast=none --set run.threads="$THREADS" \
  --set data.train="$WORK/data/train.jsonl" --set data.eval="$WORK/data/eval.jsonl" \
  --set grpo.max_steps=1 --set optim.gradient_accumulation_steps=1 \
  --set eval.prompts=0 --set eval.questions=0 --out "$WORK/run" >"$WORK/train.log" 2>&1 ||
  status=$?
((status == 0)) || { tail -30 "$WORK/train.log"; fail "corl train (exit $status)"; }
[[ -s $WORK/run/metrics.jsonl ]] || fail "no metrics line"

say "transformers loads final/; the weights against the start"
"$PYTHON" - "$CKPT" "$WORK/run/final" <<'PY' || fail "checkpoint check"
import json, os, sys

import torch
from safetensors import safe_open
from transformers import JanusForConditionalGeneration

start, final = sys.argv[1], sys.argv[2]
torch.set_num_threads(2)
model, info = JanusForConditionalGeneration.from_pretrained(final, output_loading_info=True)
problems = {k: v for k, v in info.items() if v}
if problems:
    sys.exit(f"transformers did not load every tensor of {final}: {problems}")
print(f"transformers loaded {final}: {sum(p.numel() for p in model.parameters()):,} parameters, "
      "no missing, unexpected or mis-shaped tensor")
del model


def tensor(folder, name):
    index = os.path.join(folder, "model.safetensors.index.json")
    file = json.load(open(index))["weight_map"][name] if os.path.exists(index) else "model.safetensors"
    with safe_open(os.path.join(folder, file), "pt") as f:
        return f.get_tensor(name).float()


trained = ["model.language_model.layers.0.self_attn.q_proj.weight",
           "model.language_model.layers.0.mlp.down_proj.weight", "lm_head.weight"]
frozen = ["model.vision_model.encoder.layers.0.self_attn.q_proj.weight",
          "model.vqmodel.quantize.embedding.weight", "model.generation_head.proj_out.weight"]
bad = []
for name in trained + frozen:
    change = (tensor(final, name) - tensor(start, name)).abs().max().item()
    expected = "moved" if name in trained else "unchanged"
    ok = change > 0 if name in trained else change == 0
    print(f"  {name}: max |final - start| = {change:.3g} ({expected}: {'ok' if ok else 'NO'})")
    if not ok:
        bad.append(name)
if bad:
    sys.exit(f"weights not as expected: {bad}")
PY

peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
cpu=$(lscpu | awk -F': *' '/Model name/ {print $2; exit}')
metrics=$(head -1 "$WORK/run/metrics.jsonl")
say "passed"
echo "step: $metrics"
printf 'corl train: wall %s, peak RSS %s GiB; CPU %s, %s threads; %s decoder layers\n' \
  "$wall" "$(awk -v kb="$peak_kb" 'BEGIN {printf "%.1f", kb / 1048576}')" "$cpu" "$THREADS" "$LAYERS"
echo "logs and the run: $WORK"
