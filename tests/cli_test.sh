#!/usr/bin/env bash
# The `corl` program as a user runs it: help, recipe errors and their exit codes, a small
# end-to-end data -> tokenizer run, and the detector on a rendered image.
# Environment: CORL (the binary), SRC (the source tree).
set -u
CORL=${CORL:?} SRC=${SRC:?}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
passes=0

check() {  # check NAME EXPECTED_STATUS PATTERN -- command...
  local name=$1 expected=$2 pattern=$3
  shift 4
  local output status
  output=$("$@" 2>&1)
  status=$?
  if [[ $status -ne $expected ]]; then
    echo "FAIL $name: exit $status, expected $expected"; echo "$output" | tail -5
    failures=$((failures + 1))
  elif [[ -n $pattern ]] && ! grep -qE -- "$pattern" <<<"$output"; then
    echo "FAIL $name: output lacks /$pattern/"; echo "$output" | tail -5
    failures=$((failures + 1))
  else
    echo "ok   $name"
    passes=$((passes + 1))
  fi
}

check help 0 "data.*tokenizer.*" -- bash -c "$CORL --help | tr '\n' ' '"
check data-help 0 "--set" -- "$CORL" data --help
check tokenizer-help 0 "--config" -- "$CORL" tokenizer --help
check detect-help 0 "--image" -- "$CORL" detect --help
check no-subcommand 2 "" -- "$CORL"
check unknown-flag 2 "" -- "$CORL" data --colour red

printf 'world:\n  resolution: 64\n  shaeps: [circle]\n' >"$WORK/typo.yaml"
check unknown-key 2 "typo.yaml:3: unknown key 'world.shaeps'; did you mean 'world.shapes'" -- \
  "$CORL" data --config "$WORK/typo.yaml" --out "$WORK/typo"
check bad-value 2 "world.resolution: must be in \[16, 1024\], got 9" -- \
  "$CORL" data --config "$SRC/configs/world.yaml" --set world.resolution=9 --out "$WORK/x"
check bad-set-key 2 "did you mean 'data.train_size'" -- \
  "$CORL" data --set data.trainsize=5 --out "$WORK/x"
check missing-config 2 "" -- "$CORL" data --config "$WORK/absent.yaml"

check data 0 "wrote" -- "$CORL" data --config "$SRC/configs/world.yaml" \
  --set data.train_size=240 --set data.eval_size=60 --out "$WORK/data"
for f in train.jsonl eval.jsonl recipe.yaml log.txt metrics.jsonl images/train_0000000.png; do
  check "data-writes-$f" 0 "" -- test -s "$WORK/data/$f"
done
check data-recipe-resolved 0 "train_size: 240" -- cat "$WORK/data/recipe.yaml"
check data-rows 0 "^240$" -- bash -c "wc -l <'$WORK/data/train.jsonl'"

check detect 0 '"objects"' -- "$CORL" detect --image "$WORK/data/images/train_0000000.png"
check detect-missing 1 "absent.png" -- "$CORL" detect --image "$WORK/absent.png"

check tokenizer 0 "codebook usage" -- "$CORL" tokenizer --config "$SRC/configs/tokenizers.yaml" \
  --set text.data="$WORK/data/train.jsonl" --set image.data="$WORK/data/train.jsonl" \
  --set image.optim.steps=4 --set image.optim.batch_size=4 --out "$WORK/tok"
check tokenizer-model 0 "" -- test -s "$WORK/tok/text.model"
check tokenizer-vq 0 "" -- test -s "$WORK/tok/vq.safetensors"

TINY=(--set model.hidden_size=32 --set model.num_layers=1 --set model.num_heads=2
      --set model.num_kv_heads=1 --set model.intermediate_size=48 --set model.vision_hidden_size=16
      --set model.vision_layers=1 --set model.vision_heads=2 --set model.vision_intermediate_size=24
      --set train.steps=3 --set train.checkpoint_every=2 --set eval.prompts=4 --set eval.questions=4
      --set eval.max_new_tokens=8)
check pretrain 0 "held-out geneval" -- "$CORL" pretrain --config "$SRC/configs/pretrain.yaml" \
  --set data.train="$WORK/data/train.jsonl" --set data.eval="$WORK/data/eval.jsonl" \
  --set tokenizer.path="$WORK/tok" "${TINY[@]}" --out "$WORK/pre"
check pretrain-final 0 "" -- test -s "$WORK/pre/final/model.safetensors"
check pretrain-checkpoint 0 "" -- test -s "$WORK/pre/checkpoints/step-00000002/optimizer.pt"
check pretrain-resume 0 "resuming from .*step-00000002" -- "$CORL" pretrain \
  --config "$SRC/configs/pretrain.yaml" --set data.train="$WORK/data/train.jsonl" \
  --set data.eval="$WORK/data/eval.jsonl" --set tokenizer.path="$WORK/tok" "${TINY[@]}" \
  --out "$WORK/pre" --resume
check pretrain-no-tokenizer 1 "text.model" -- "$CORL" pretrain --set tokenizer.path="$WORK/none" \
  --out "$WORK/pre2"
check generate 0 "image_1.png" -- "$CORL" generate --ckpt "$WORK/pre" --prompt "a photo of a red circle" \
  --n 2 --out "$WORK/gen"
check generate-png 0 "" -- test -s "$WORK/gen/image_0.png"
check answer 0 "" -- "$CORL" answer --ckpt "$WORK/pre" --image "$WORK/gen/image_0.png" \
  --question "What color is the circle?" --max-new-tokens 6
check answer-no-ckpt 1 "not a checkpoint" -- "$CORL" answer --ckpt "$WORK/none" \
  --image "$WORK/gen/image_0.png" --question "?"

head -3 "$WORK/data/train.jsonl" >"$WORK/bad.jsonl"
echo '{"prompt": "x"}' >>"$WORK/bad.jsonl"
check tokenizer-bad-row 1 "bad.jsonl:4: missing field 'real_image'" -- \
  "$CORL" tokenizer --set text.data="$WORK/bad.jsonl" --set image.train=false --out "$WORK/tok2"
check tokenizer-skip-bad-row 0 "skipped 1 bad rows" -- \
  "$CORL" tokenizer --set text.data="$WORK/bad.jsonl" --set text.skip_bad_rows=true \
  --set image.train=false --out "$WORK/tok3"

echo "$passes passed, $failures failed"
[[ $failures -eq 0 ]]
