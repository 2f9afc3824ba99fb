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


# GRPO stages from the tiny base: unified, refined, merge, dump, exact resume. Two groups of 3 a
# generation batch (3 completions per micro-step x 2 micro-steps); max_steps counts optimizer
# updates, num_iterations of them per generation batch.
GRPO=(--set data.train="$WORK/data/train.jsonl" --set data.eval="$WORK/data/eval.jsonl"
      --set grpo.max_steps=4 --set grpo.per_device_train_batch_size=3 --set grpo.num_generations=3
      --set optim.gradient_accumulation_steps=2
      --set grpo.max_completion_length=6 --set train.checkpoint_every=2 --set eval.prompts=3
      --set eval.questions=3 --set eval.max_new_tokens=6 --set run.threads=1)
check train 0 "held-out geneval" -- "$CORL" train --config "$SRC/configs/unified.yaml" \
  --init "$WORK/pre" "${GRPO[@]}" --set grpo.beta=0.04 --set grpo.num_iterations=2 \
  --set grpo.max_steps=8 --dump-batch "$WORK/dump" --out "$WORK/uni"
check train-final 0 "" -- test -s "$WORK/uni/final/model.safetensors"
check train-metrics 0 '"reward_t2i".*"reward_mm2t"|"reward_mm2t".*"reward_t2i"' -- \
  head -1 "$WORK/uni/metrics.jsonl"
# The schedule advances per optimizer update (TRL): the first update of generation batch s is
# update 2s at mu = 2, so configs/unified.yaml's 5 warm-up updates reach the peak in batch 3.
check train-lr-per-update 0 "" -- "$SRC/.venv/bin/python" -c "
import json, re
lr = [json.loads(l)['lr'] for l in open('$WORK/uni/metrics.jsonl') if '\"lr\"' in l]
peak = float(re.search(r'learning_rate: *([0-9.e+-]+)', open('$WORK/uni/recipe.yaml').read())[1])
want = [peak * min(1, (2 * s + 1) / 5) for s in range(4)]
assert all(abs(a - b) < 1e-12 for a, b in zip(lr, want)) and len(lr) == 4, (lr, want)
"
check train-dump 0 "loss recomputed" -- "$SRC/.venv/bin/python" "$SRC/tests/grpo_dump_check.py" \
  "$WORK/dump/batch.json"
# steps_per_generation twice the accumulation (TRL's): 3 completions x 4 micro-steps / G 3 = 4
# groups a generation batch, trained in two updates of 2 micro-steps each; 4 updates are 2
# batches, and the schedule advances per update (the first update of batch s is update 2s).
check train-steps-per-generation 0 "2 update\(s\) of 2 micro-steps" -- "$CORL" train \
  --config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" \
  --set grpo.steps_per_generation=4 --set eval.prompts=0 --set eval.questions=0 \
  --out "$WORK/uni_spg"
check train-steps-per-generation-updates 0 "" -- "$SRC/.venv/bin/python" -c "
import json, re
rows = [json.loads(l) for l in open('$WORK/uni_spg/metrics.jsonl') if '\"updates\"' in l]
peak = float(re.search(r'learning_rate: *([0-9.e+-]+)', open('$WORK/uni_spg/recipe.yaml').read())[1])
want = [peak * min(1, (2 * s + 1) / 5) for s in range(2)]
assert [r['updates'] for r in rows] == [2, 2], rows
assert all(abs(r['lr'] - w) < 1e-12 for r, w in zip(rows, want)), ([r['lr'] for r in rows], want)
"
check train-steps-per-generation-dump 2 "leave steps_per_generation -1 for the dump" -- \
  "$CORL" train --config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" \
  --set grpo.steps_per_generation=4 --dump-batch "$WORK/dump_spg" --out "$WORK/uni_spg_dump"
# The recipe's other sharing: per-task advantages A_t2i + lambda A_mm2t shared by image i and
# answer i, the answers weighted 3 in the loss, TRL's bnpo over two micro-batches: the
# advantages and the weighted total recomputed.
check train-shared 0 "held-out geneval" -- "$CORL" train --config "$SRC/configs/unified.yaml" \
  --init "$WORK/pre" "${GRPO[@]}" --set grpo.max_steps=1 --set grpo.unify_advantage=true \
  --set grpo.mm2t_loss_weight=3 --set grpo.loss_type=bnpo \
  --set optim.gradient_accumulation_steps=2 \
  --set "grpo.reward_funcs=[geneval, accuracy]" --set "grpo.reward_weights=[1, 1]" \
  --dump-batch "$WORK/dump_shared" --out "$WORK/uni_shared"
check train-shared-dump 0 "loss recomputed" -- "$SRC/.venv/bin/python" \
  "$SRC/tests/grpo_dump_check.py" "$WORK/dump_shared/batch.json"
# TRL's options together (GSPO's sequence-level ratio, the top half of the tokens by entropy, the
# sampler/trainer correction with a cap the cache's rounding crosses, the step's reward spread,
# rewards normalised in group before their sum; tim gives every group a spread): the advantages,
# policy weights and losses recomputed from the dump, and their figures in the metrics.
TRL=(--set grpo.max_steps=2 --set grpo.num_iterations=2
     --set grpo.importance_sampling_level=sequence --set grpo.top_entropy_quantile=0.5
     --set grpo.importance_sampling_correction=true --set "grpo.reward_funcs=[tim, accuracy]"
     --set "grpo.reward_weights=[1, 1]")
check train-trl-options 0 "held-out geneval" -- "$CORL" train --config "$SRC/configs/unified.yaml" \
  --init "$WORK/pre" "${GRPO[@]}" "${TRL[@]}" --set grpo.loss_type=dapo \
  --set grpo.max_completion_length=40 --set grpo.importance_sampling_mode=token_truncate \
  --set grpo.importance_sampling_cap=1.0000001 --set grpo.scale_rewards=batch \
  --set grpo.multi_objective_aggregation=normalize_then_sum --set optim.learning_rate=1e-3 \
  --dump-batch "$WORK/dump_trl" --out "$WORK/uni_trl"
check train-trl-options-dump 0 "sequence-level ratio.*t2i policy weights match; mm2t policy weights match" -- \
  "$SRC/.venv/bin/python" "$SRC/tests/grpo_dump_check.py" "$WORK/dump_trl/batch.json"
check train-trl-options-metrics 0 \
  '"entropy_mask_kept_t2i".*"importance_sampling_clipped_mm2t".*"sequence_ratio_mm2t"' -- \
  head -1 "$WORK/uni_trl/metrics.jsonl"
# Every answer cut at 6 tokens and masked out: no answer token anywhere in the loss.
check train-trl-truncated 0 "held-out geneval" -- "$CORL" train \
  --config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" "${TRL[@]}" \
  --set grpo.mask_truncated_completions=true --set grpo.importance_sampling_mode=sequence_mask \
  --dump-batch "$WORK/dump_cut" --out "$WORK/uni_cut"
check train-trl-truncated-dump 0 "mm2t policy weights match" -- \
  "$SRC/.venv/bin/python" "$SRC/tests/grpo_dump_check.py" "$WORK/dump_cut/batch.json"
check train-perception 0 '"reward/perception"' -- head -1 "$WORK/uni/metrics.jsonl"
# Killed after step 2: its checkpoint is all that is left; resumed, it ends where the whole run did.
cp -r "$WORK/uni" "$WORK/uni2"
rm -rf "$WORK/uni2/final" "$WORK/uni2/checkpoints/step-00000004"
head -2 "$WORK/uni/metrics.jsonl" >"$WORK/uni2/metrics.jsonl"
check train-resume 0 "resuming from .*step-00000002" -- "$CORL" train \
  --config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" --set grpo.beta=0.04 \
  --set grpo.num_iterations=2 --set grpo.max_steps=8 --out "$WORK/uni2" --resume
check train-resume-same-weights 0 "" -- cmp "$WORK/uni/final/model.safetensors" \
  "$WORK/uni2/final/model.safetensors"
check train-resume-same-metrics 0 "" -- bash -c "diff <(sed 's/\"time[a-z_]*\":[0-9.e+-]*//g' \
  '$WORK/uni/metrics.jsonl') <(sed 's/\"time[a-z_]*\":[0-9.e+-]*//g' '$WORK/uni2/metrics.jsonl')"
# A new run into a folder that holds an earlier run stops before it writes anything: the earlier
# run's recipe, log, metrics and checkpoints stay as they were.
folder_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
UNI_SUM=$(folder_sum "$WORK/uni")
check train-into-earlier-run 1 "uni holds an earlier run \\(.*checkpoints/step-00000002\\); --resume" -- \
  "$CORL" train --config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" \
  --out "$WORK/uni"
check train-into-earlier-run-untouched 0 "" -- test "$(folder_sum "$WORK/uni")" = "$UNI_SUM"
check pretrain-into-earlier-run 1 "pre holds an earlier run \\(.*checkpoints/step-00000002\\)" -- \
  "$CORL" pretrain --config "$SRC/configs/pretrain.yaml" --set data.train="$WORK/data/train.jsonl" \
  --set data.eval="$WORK/data/eval.jsonl" --set tokenizer.path="$WORK/tok" "${TINY[@]}" \
  --out "$WORK/pre"
# A killed run's folder with its final/ but no step checkpoint left is an earlier run too.
mkdir -p "$WORK/only_final" && cp -r "$WORK/uni/final" "$WORK/only_final/final"
check train-into-finished-run 1 "only_final holds an earlier run \\(.*only_final/final\\)" -- \
  "$CORL" train --config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" \
  --out "$WORK/only_final"
# A learning rate of 1 without clipping blows the tiny policy up within a few of mu = 4 updates:
# the log and metrics say how many updates each bad step applied and how many it skipped.
check train-nonfinite-said 0 "non-finite (reward, )?loss or gradient; ([0-9]+ applied, the rest|step) skipped" \
  -- "$CORL" train --config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" \
  --set grpo.max_steps=12 --set grpo.num_iterations=4 --set optim.learning_rate=1 \
  --set optim.max_grad_norm=0 --set grpo.max_bad_steps=100 --set eval.prompts=0 \
  --set eval.questions=0 --set "grpo.reward_funcs=[tim, format]" \
  --set "grpo.reward_weights=[1, 0.5]" --out "$WORK/blowup"
check train-nonfinite-counted 0 "" -- "$SRC/.venv/bin/python" -c "
import json
rows = [json.loads(l) for l in open('$WORK/blowup/metrics.jsonl')]
bad = [r for r in rows if 'skipped_updates' in r]
assert bad, 'no step went non-finite'
for r in rows:
    assert r['updates'] + r.get('skipped_updates', 0) == 4, r
assert rows[-1]['bad_steps'] == len(bad), (rows[-1]['bad_steps'], len(bad))
"
# Data parallel: 2 Gloo ranks of 2 groups each = 1 process of 4 groups, with the token-mean
# (dapo) loss over the step, gradient accumulation, mu = 2 and a KL term (tim's continuous reward
# gives the tiny model a signal); each rank's weights are checked against rank 0's after every
# update. The two runs must agree where only float reassociation separates them: the first
# step's rewards, losses and summed gradient (before the optimizer, which would turn last-bit
# differences of near-zero gradients into whole steps). In float32: under the recipe's bf16
# products a rank's micro-batch of another shape rounds differently, far beyond reassociation.
DP=(--config "$SRC/configs/unified.yaml" --init "$WORK/pre" "${GRPO[@]}" --set grpo.max_steps=4
    --set run.autocast=none
    --set train.checkpoint_every=1 --set eval.prompts=0 --set eval.questions=0
    --set grpo.loss_type=dapo --set grpo.beta=0.04
    --set grpo.num_iterations=2 --set dist.check_weights=true --set dist.timeout_s=60
    --set "grpo.reward_funcs=[tim, format]" --set "grpo.reward_weights=[1, 0.5]")
check dp-one-process 0 "" -- "$CORL" train "${DP[@]}" --set grpo.per_device_train_batch_size=6 \
  --dump-batch "$WORK/dp1/dump" --out "$WORK/dp1"
check dp-two-ranks 0 "2 ranks over gloo, a global batch of 4 groups" -- "$CORL" train --nproc 2 \
  "${DP[@]}" --set grpo.per_device_train_batch_size=3 --dump-batch "$WORK/dp2/dump" \
  --out "$WORK/dp2"
check dp-same-as-one-process 0 "matches one process" -- "$SRC/.venv/bin/python" \
  "$SRC/tests/dp_compare.py" "$WORK/dp1" "$WORK/dp2"
check dp-rank0-writes 0 "" -- test -s "$WORK/dp2/checkpoints/step-00000001/model.safetensors"
# TRL's options whose figures are the whole step's (the reward spread, the entropy quantile, the
# correction's figures) gathered over ranks: two ranks again match one process.
DPT=(--set grpo.max_steps=2 --set grpo.scale_rewards=batch --set grpo.top_entropy_quantile=0.5
     --set grpo.importance_sampling_level=sequence --set grpo.importance_sampling_correction=true
     --set grpo.multi_objective_aggregation=normalize_then_sum)
check dp-trl-one-process 0 "" -- "$CORL" train "${DP[@]}" "${DPT[@]}" \
  --set grpo.per_device_train_batch_size=6 --dump-batch "$WORK/dpt1/dump" --out "$WORK/dpt1"
check dp-trl-two-ranks 0 "" -- "$CORL" train --nproc 2 "${DP[@]}" "${DPT[@]}" \
  --set grpo.per_device_train_batch_size=3 --dump-batch "$WORK/dpt2/dump" --out "$WORK/dpt2"
check dp-trl-same-as-one-process 0 "matches one process" -- "$SRC/.venv/bin/python" \
  "$SRC/tests/dp_compare.py" "$WORK/dpt1" "$WORK/dpt2"
# Dr.GRPO's constant normaliser, three micro-batches over 4 groups (uneven shares per rank),
# dynamic sampling on (tim's continuous reward keeps every group, so the tiny model still
# learns); then the 2-rank run killed after step 1 and resumed ends with the same bits as the
# uninterrupted one.
DS=("${DP[@]}" --set grpo.loss_type=dr_grpo --set grpo.dynamic_sampling=true
    --set grpo.max_steps=6 --set optim.gradient_accumulation_steps=3)
check dp-ds-one-process 0 "" -- "$CORL" train "${DS[@]}" --set grpo.per_device_train_batch_size=4 \
  --dump-batch "$WORK/ds1/dump" --out "$WORK/ds1"
check dp-ds-two-ranks 0 "" -- "$CORL" train --nproc 2 "${DS[@]}" \
  --set grpo.per_device_train_batch_size=2 --dump-batch "$WORK/ds2/dump" --out "$WORK/ds2"
check dp-ds-same-as-one-process 0 "matches one process" -- "$SRC/.venv/bin/python" \
  "$SRC/tests/dp_compare.py" "$WORK/ds1" "$WORK/ds2"
cp -r "$WORK/ds2" "$WORK/ds3"
rm -rf "$WORK/ds3/final" "$WORK/ds3/checkpoints/step-00000002"
check dp-ds-two-ranks-resume 0 "resuming from .*step-00000001" -- "$CORL" train --nproc 2 \
  "${DS[@]}" --set grpo.per_device_train_batch_size=2 --out "$WORK/ds3" --resume
check dp-ds-resume-same-weights 0 "" -- cmp "$WORK/ds2/final/model.safetensors" \
  "$WORK/ds3/final/model.safetensors"
# ZeRO (dist/zero.h) and activation checkpointing in the real stage. Stage 1 keeps the whole
# summed gradient, so its first step's dump must match the one process's as plain data
# parallelism does. Stage 2, with every part but the language model frozen, killed after step 1
# and resumed from the gathered optimizer state, ends with the uninterrupted run's bits.
check zero1-two-ranks 0 "ZeRO stage 1, this rank holds AdamW state of" -- "$CORL" train \
  --nproc 2 "${DP[@]}" --set grpo.per_device_train_batch_size=3 --set dist.zero_stage=1 \
  --set model.gradient_checkpointing=true --dump-batch "$WORK/z1/dump" --out "$WORK/z1"
check zero1-same-as-one-process 0 "matches one process" -- "$SRC/.venv/bin/python" \
  "$SRC/tests/dp_compare.py" "$WORK/dp1" "$WORK/z1"
ZS=("${DS[@]}" --set grpo.per_device_train_batch_size=2 --set dist.zero_stage=2
    --set model.gradient_checkpointing=true
    --set "model.freeze=[vision_model, aligner, gen_embed, gen_aligner, gen_head]")
check zero2-two-ranks 0 "ZeRO stage 2" -- "$CORL" train --nproc 2 "${ZS[@]}" --out "$WORK/z2"
cp -r "$WORK/z2" "$WORK/z3"
rm -rf "$WORK/z3/final" "$WORK/z3/checkpoints/step-00000002"
check zero2-resume 0 "resuming from .*step-00000001" -- "$CORL" train --nproc 2 "${ZS[@]}" \
  --out "$WORK/z3" --resume
check zero2-resume-same-weights 0 "" -- cmp "$WORK/z2/final/model.safetensors" \
  "$WORK/z3/final/model.safetensors"
check zero2-dump-refused 2 "dist.zero_stage 2 never holds" -- "$CORL" train "${ZS[@]}" \
  --dump-batch "$WORK/x/dump" --out "$WORK/x"
check zero3-refused 2 "dist.zero_stage: must be in \[0, 2\], got 3" -- "$CORL" train \
  "${DP[@]}" --set dist.zero_stage=3 --out "$WORK/x"
check freeze-unknown-part 2 "model.freeze\[0\]: must be one of: vision_model.*got .vq." -- "$CORL" train "${DP[@]}" \
  --set "model.freeze=[vq]" --out "$WORK/x"
check dp-nccl-on-cpu 2 "dist.backend nccl: NCCL moves GPU tensors" -- "$CORL" train --nproc 2 \
  "${DP[@]}" --set dist.backend=nccl --out "$WORK/x"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
check dp-missing-peer 1 "rank 0 of 2 at 127.0.0.1:$port: not every rank arrived within dist.timeout_s \(3 s\)" -- \
  env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" timeout 120 "$CORL" train \
  "${DP[@]}" --set dist.timeout_s=3 --out "$WORK/x"

for task in t2i mcq oe; do
  check "refine-$task" 0 "held-out geneval" -- "$CORL" refine --task "$task" \
    --config "$SRC/configs/refine_$task.yaml" --init "$WORK/uni" "${GRPO[@]}" \
    --set grpo.max_steps=2 --out "$WORK/refine_$task"
done
check refine-task-wins 0 "task: mm2t" -- cat "$WORK/refine_mcq/recipe.yaml"
check merge 0 "wrote" -- "$CORL" merge --inputs "$WORK/refine_mcq" "$WORK/refine_oe" \
  --weights 0.5 0.5 --out "$WORK/merged"
check merge-loads 0 "" -- "$CORL" answer --ckpt "$WORK/merged" --image "$WORK/gen/image_0.png" \
  --question "What color is the circle?" --max-new-tokens 4
"$CORL" pretrain --config "$SRC/configs/pretrain.yaml" --set data.train="$WORK/data/train.jsonl" \
  --set data.eval="$WORK/data/eval.jsonl" --set tokenizer.path="$WORK/tok" "${TINY[@]}" \
  --set model.hidden_size=64 --set train.steps=1 --set eval.prompts=0 --set eval.questions=0 \
  --out "$WORK/pre_big" >/dev/null 2>&1
check merge-mismatch 1 "different architecture" -- "$CORL" merge --inputs "$WORK/uni" \
  "$WORK/pre_big" --out "$WORK/m2"
# transformers' Janus VQ hard-codes GroupNorm(32); the ShapeWorld VQ (8 groups) cannot be written
# in that layout, and export says why instead of writing a folder transformers would misread.
check export-hf-groups 1 "GroupNorm\(32\)" -- "$CORL" export --format hf --ckpt "$WORK/merged" \
  --out "$WORK/hf"
check janus-recipe-needs-path 2 "model.path" -- "$CORL" train \
  --config "$SRC/configs/janus_pro_1b_unified.yaml" --out "$WORK/x"
check train-bad-reward 2 "reward_funcs.*'cycel'" -- "$CORL" train --set "grpo.reward_funcs=[cycel]" \
  --set "grpo.reward_weights=[1]" --out "$WORK/x"
check train-weights-count 2 "2 weights for 3 reward_funcs" -- "$CORL" train \
  --set "grpo.reward_weights=[1, 1]" --out "$WORK/x"
check train-autocast-choice 2 "run.autocast" -- "$CORL" train --set run.autocast=fp16 \
  --out "$WORK/x"
check train-t2i-answer-reward 2 "scores answers, but task t2i" -- "$CORL" refine --task t2i \
  --config "$SRC/configs/refine_t2i.yaml" --set "grpo.reward_funcs=[accuracy]" \
  --set "grpo.reward_weights=[1]" --out "$WORK/x"
check train-no-init 1 "not a checkpoint" -- "$CORL" train --config "$SRC/configs/unified.yaml" \
  --init "$WORK/none" "${GRPO[@]}" --out "$WORK/x"

# A GRPO stage started from a Hugging Face Janus folder (a tiny one made by transformers) writes
# checkpoints in that layout, which transformers loads with every tensor in place.
if "$SRC/.venv/bin/python" -c "import transformers, tokenizers" 2>/dev/null; then
  check janus-reference 0 "" -- "$SRC/.venv/bin/python" "$SRC/tests/janus_hf_reference.py" \
    "$WORK/janus"
  check janus-train 0 "held-out geneval" -- "$CORL" train --config "$SRC/configs/unified.yaml" \
    --set model.path="$WORK/janus/model" "${GRPO[@]}" --set grpo.beta=0.04 --out "$WORK/juni"
  check janus-final-loads 0 "" -- "$SRC/.venv/bin/python" -c "
from transformers import JanusForConditionalGeneration
_, info = JanusForConditionalGeneration.from_pretrained('$WORK/juni/final', output_loading_info=True)
assert not any(info.values()), info
"
  check janus-answer 0 "" -- "$CORL" answer --ckpt "$WORK/juni" --image \
    "$WORK/data/images/train_0000000.png" --question "How many circles?" --max-new-tokens 4
else
  echo "SKIP janus-*: transformers is not installed in $SRC/.venv (scripts/setup.sh installs it)"
fi


check eval 0 "wrote .*report.html" -- "$CORL" eval --suite all --ckpt "$WORK/pre" --ckpt "$WORK/uni" \
  --set world="$WORK/data/recipe.yaml" --set geneval.prompts_per_category=1 \
  --set geneval.images_per_prompt=2 --set mcq.questions=3 --set oe.questions=3 \
  --set decode.max_new_tokens=6 --set report.python="$SRC/.venv/bin/python" \
  --set report.plotter="$SRC/scripts/plot_curves.py" --out "$WORK/eval"
check eval-results 0 "" -- "$SRC/.venv/bin/python" -c "
import json, sys
r = json.load(open('$WORK/eval/results.json'))
assert set(r) == {'pre', 'uni'}, r.keys()
for name in r:
    g = r[name]['geneval']
    assert set(['overall', 'single_object', 'se', 'images']) <= set(g), g
    assert g['images'] == 12
    # Each item's score, so that two rows compare item by item: one prompt per category here.
    assert len(g['items']) == 6 and all(len(v) == 1 for v in g['items'].values()), g['items']
    assert abs(sum(v[0] for v in g['items'].values()) / 6 - g['overall']) < 1e-9
    for suite in ('mcq', 'oe'):
        s = r[name][suite]
        assert 0 <= s['accuracy'] <= 1 and 'se' in s
        assert len(s['items']) == 3 and set(s['items']) <= {0, 1}, s['items']
        assert abs(sum(s['items']) / 3 - s['accuracy']) < 1e-9
        # Every question's greedy completion, in suite order, beside its score.
        lines = [json.loads(l) for l in open('$WORK/eval/answers/%s/%s.jsonl' % (name, suite))]
        assert [int(l['right']) for l in lines] == s['items'], (lines, s['items'])
        assert all(l['question'] and '<answer>' in l['gold'] for l in lines), lines
        assert all(l['kind'] in ('count', 'color', 'shape', 'position', 'existence') for l in lines)
"
check eval-report-images 0 "" -- "$SRC/.venv/bin/python" -c "
import os, re
page = open('$WORK/eval/report.html').read()
sources = re.findall(r'src=\"([^\"]+)\"', page)
assert sources, 'no images'
missing = [s for s in sources if not os.path.exists(os.path.join('$WORK/eval', s))]
assert not missing, missing
assert 'plots/uni.png' in sources
"
# The two checkpoints' suites above were evaluated side by side on one thread each (run.threads 2,
# suite by suite, GenEval first); one thread alone, checkpoint by checkpoint, must give every figure
# and item as they did.
check eval-side-by-side 0 "" -- bash -c "'$CORL' eval --suite all --ckpt '$WORK/pre' \
  --ckpt '$WORK/uni' --set run.threads=1 --set world='$WORK/data/recipe.yaml' \
  --set geneval.prompts_per_category=1 --set geneval.images_per_prompt=2 --set mcq.questions=3 \
  --set oe.questions=3 --set decode.max_new_tokens=6 --set report.plotter=none \
  --out '$WORK/eval4' >/dev/null 2>&1 && grep -q '2 suites at once' '$WORK/eval/log.txt' && \
  '$SRC/.venv/bin/python' -c \"
import json
a = json.load(open('$WORK/eval/results.json'))
b = json.load(open('$WORK/eval4/results.json'))
assert a == b, (a, b)
\""
# report.plotter none: no curves, and no failed plot to warn of.
check eval-plotter-none 0 "" -- bash -c "grep -q 'Not plotted' '$WORK/eval4/report.html' && \
  ! grep -q 'could not plot' '$WORK/eval4/log.txt'"
check eval-deterministic 0 "" -- bash -c "'$CORL' eval --suite mcq --ckpt '$WORK/pre' \
  --set run.threads=1 \
  --set world='$WORK/data/recipe.yaml' --set mcq.questions=3 --set decode.max_new_tokens=6 \
  --out '$WORK/eval2' >/dev/null 2>&1 && '$SRC/.venv/bin/python' -c \"
import json
a = json.load(open('$WORK/eval/results.json'))['pre']['mcq']
b = json.load(open('$WORK/eval2/results.json'))['pre']['mcq']
assert a == b, (a, b)
\""
check eval-data 0 "wrote" -- "$CORL" eval --ckpt "$WORK/pre" --data "$WORK/data/eval.jsonl" \
  --set geneval.images_per_prompt=1 --set decode.max_new_tokens=4 --set report.plotter=none \
  --out "$WORK/eval3"
check eval-no-ckpt 2 "ckpt" -- "$CORL" eval --out "$WORK/x"
# A mistyped checkpoint after a good one is refused before anything runs: the earlier report in
# the same folder is left as it was.
kept=$(cat "$WORK/eval/results.json" "$WORK/eval/recipe.yaml" "$WORK/eval/log.txt" | sha256sum)
check eval-bad-ckpt 1 "$WORK/missing: not a checkpoint" -- "$CORL" eval --suite mcq \
  --ckpt "$WORK/pre" --ckpt "$WORK/missing" --set world="$WORK/data/recipe.yaml" --out "$WORK/eval"
check eval-bad-ckpt-kept 0 "" -- test "$(cat "$WORK/eval/results.json" "$WORK/eval/recipe.yaml" \
  "$WORK/eval/log.txt" | sha256sum)" == "$kept"
# Weights that fail to load while another checkpoint is evaluated beside them: the error, not a
# report.
cp -r "$WORK/pre/final" "$WORK/broken"
head -c 200 "$WORK/pre/final/model.safetensors" >"$WORK/broken/model.safetensors"
check eval-side-by-side-error 1 "broken/model.safetensors" -- "$CORL" eval --suite mcq \
  --ckpt "$WORK/pre" --ckpt "$WORK/broken" --set world="$WORK/data/recipe.yaml" \
  --set mcq.questions=3 --set decode.max_new_tokens=6 --out "$WORK/eval5"
check eval-side-by-side-error-no-report 1 "" -- test -e "$WORK/eval5/results.json"

# GenEval's layout: the geneval suite written as GenEval metadata, sampled by `corl generate
# --prompts` into GenEval's folders (4 batches of 3 prompts), and judged there by corl: the same
# figures, item by item, as `corl eval` sampling and judging the suite itself.
SUITE=(--set world="$WORK/data/recipe.yaml" --set geneval.prompts_per_category=2
       --set geneval.images_per_prompt=2 --set geneval.cfg_weight=3 --set geneval.temperature=0.7
       --set decode.batch_size=6 --set run.seed=77 --set report.plotter=none)
check eval-write-prompts 0 "wrote the geneval suite" -- "$CORL" eval "${SUITE[@]}" \
  --write-prompts "$WORK/geneval/prompts.jsonl"
check generate-prompts 0 "wrote 24 images of 12 prompts" -- "$CORL" generate --ckpt "$WORK/pre" \
  --prompts "$WORK/geneval/prompts.jsonl" --n 2 --batch-size 6 --cfg-weight 3 --temperature 0.7 \
  --seed 77 --grid --out "$WORK/geneval/images"
# What GenEval's evaluation/evaluate_images.py reads: numbered folders, each with metadata.jsonl
# (json.load: the prompt's line) and samples/<digits>.png.
check generate-geneval-layout 0 "" -- "$SRC/.venv/bin/python" -c "
import json, os, re
from PIL import Image
root = '$WORK/geneval/images'
lines = [json.loads(l) for l in open('$WORK/geneval/prompts.jsonl')]
folders = sorted(f for f in os.listdir(root) if f.isdigit())
assert folders == ['%05d' % i for i in range(12)], folders
for i, folder in enumerate(folders):
    metadata = json.load(open(os.path.join(root, folder, 'metadata.jsonl')))
    assert metadata == lines[i] and {'tag', 'include', 'prompt'} <= set(metadata), metadata
    samples = sorted(os.listdir(os.path.join(root, folder, 'samples')))
    assert samples == ['00000.png', '00001.png'], samples
    assert all(re.match(r'\d+\.png', s) for s in samples)
    w, h = Image.open(os.path.join(root, folder, 'samples', '00000.png')).size
    assert Image.open(os.path.join(root, folder, 'grid.png')).size == (2 * (w + 2) + 2, h + 4)
"
check eval-images 0 "wrote" -- "$CORL" eval --images "$WORK/geneval/images" "${SUITE[@]}" \
  --out "$WORK/eval_images"
check eval-geneval-seed 0 "wrote" -- "$CORL" eval --suite geneval --ckpt "$WORK/pre" "${SUITE[@]}" \
  --out "$WORK/eval_geneval"
check eval-images-equal-eval 0 "" -- "$SRC/.venv/bin/python" -c "
import json
folder = json.load(open('$WORK/eval_images/results.json'))['images']['geneval']
sampled = json.load(open('$WORK/eval_geneval/results.json'))['pre']['geneval']
assert folder == sampled, (folder, sampled)
assert folder['images'] == 24
# Not only the scores: the eval's report shows every judged image (2x, nearest), in suite order,
# and each is the folder's image of that prompt and number, pixel for pixel.
from PIL import Image
for i in range(12):
    for n in range(2):
        shown = Image.open('$WORK/eval_geneval/images/pre/%d.png' % (2 * i + n)).convert('RGB')
        written = Image.open('$WORK/geneval/images/%05d/samples/%05d.png' % (i, n)).convert('RGB')
        assert shown.tobytes() == written.resize(shown.size, Image.NEAREST).tobytes(), (i, n)
"
printf 'a photo of a red circle\n\na photo of two squares\n' >"$WORK/prompts.txt"
check generate-text-prompts 0 "wrote 2 images of 2 prompts" -- "$CORL" generate --ckpt "$WORK/pre" \
  --prompts "$WORK/prompts.txt" --n 1 --out "$WORK/gen_text"
check generate-text-layout 0 '"a photo of two squares"' -- cat "$WORK/gen_text/00001/metadata.jsonl"
printf '{"prompt": "a"}\n{"tag": "colors"}\n' >"$WORK/bad_prompts.jsonl"
check generate-bad-prompt 1 "bad_prompts.jsonl:2: field 'prompt' must be a string" -- \
  "$CORL" generate --ckpt "$WORK/pre" --prompts "$WORK/bad_prompts.jsonl" --out "$WORK/x"
check generate-no-prompt 2 "--prompt" -- "$CORL" generate --ckpt "$WORK/pre"
check eval-images-coco 1 "class 'bench'" -- bash -c "mkdir -p '$WORK/coco/00000/samples' &&
  cp '$WORK/gen/image_0.png' '$WORK/coco/00000/samples/00000.png' &&
  echo '{\"tag\": \"single_object\", \"include\": [{\"class\": \"bench\", \"count\": 1}], \"prompt\": \"a photo of a bench\"}' >'$WORK/coco/00000/metadata.jsonl' &&
  '$CORL' eval --images '$WORK/coco' --out '$WORK/x'"

# A question suite of one's own: real images of five sizes and two formats, either naming.
check eval-own-suite 0 "eval: pre suite accuracy" -- "$CORL" eval \
  --suite "$SRC/tests/data/questions/suite.jsonl" --ckpt "$WORK/pre" \
  --set decode.max_new_tokens=6 --set report.plotter=none --out "$WORK/eval_own"
check eval-own-suite-results 0 "" -- "$SRC/.venv/bin/python" -c "
import json
r = json.load(open('$WORK/eval_own/results.json'))['pre']
assert set(r) == {'suite', 'checkpoint'}, r.keys()
s = r['suite']
assert s['questions'] == 6 and len(s['items']) == 6
assert abs(sum(s['items']) / 6 - s['accuracy']) < 1e-9
assert s['by_type']['MC']['n'] == 3 and s['by_type']['OE']['n'] == 3, s['by_type']
subjects = s['groups']['subject']
assert {k: v['n'] for k, v in subjects.items()} == {'colour': 2, 'count': 2, 'position': 1, 'shape': 1}
lines = [json.loads(l) for l in open('$WORK/eval_own/answers/pre/suite.jsonl')]
assert [l['id'] for l in lines][:2] == ['sun-colour', 'circles'], lines
assert lines[1]['fields']['difficulty'] == 'easy' and [int(l['right']) for l in lines] == s['items']
page = open('$WORK/eval_own/report.html').read()
assert 'suite by subject' in page and 'colour' in page
"
printf '{"image": "images/gray_50x50.png", "question": "?", "answer": "a"}\n{"image": "images/gray_50x50.png", "question": "?"}\n' \
  >"$WORK/bad_suite.jsonl"
check eval-own-suite-bad-row 1 "bad_suite.jsonl:1: image not found" -- "$CORL" eval \
  --suite "$WORK/bad_suite.jsonl" --ckpt "$WORK/pre" --out "$WORK/x"

head -3 "$WORK/data/train.jsonl" >"$WORK/bad.jsonl"
echo '{"prompt": "x"}' >>"$WORK/bad.jsonl"
check tokenizer-bad-row 1 "bad.jsonl:4: missing field 'real_image'" -- \
  "$CORL" tokenizer --set text.data="$WORK/bad.jsonl" --set image.train=false --out "$WORK/tok2"
check tokenizer-skip-bad-row 0 "skipped 1 bad rows" -- \
  "$CORL" tokenizer --set text.data="$WORK/bad.jsonl" --set text.skip_bad_rows=true \
  --set image.train=false --out "$WORK/tok3"

echo "$passes passed, $failures failed"
[[ $failures -eq 0 ]]
