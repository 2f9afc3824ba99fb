#!/usr/bin/env bash
# corl against transformers on the same Janus checkpoints (docs/benchmarks.md): image rollouts
# (CFG, KV cache, sampling, VQ decode; seconds per image as a marginal cost over two batch
# sizes), answer generation, and the forward + backward of a GRPO update, at two sizes (the
# embedded default's, and a decoder of about 25M parameters), with the ratios and corl's fraction
# of a roofline drawn from this machine's measured matmul rate and memory bandwidth.
#
#   scripts/bench_transformers.sh [--threads 2] [--batches 4,8] [--repeats 3] [--sizes "default 25m"]
#
# Writes runs/bench_transformers/{SIZE}/ (the checkpoints), results.json and table.md. Run it on
# an otherwise idle machine: both sides share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2 BATCHES=4,8 REPEATS=3 SIZES="default 25m"
while (($#)); do
  case "$1" in
    --threads) THREADS=$2 ;;
    --batches) BATCHES=$2 ;;
    --repeats) REPEATS=$2 ;;
    --sizes) SIZES=$2 ;;
    *) echo "bench_transformers: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -x build/bench_janus ]] || scripts/setup.sh
PY=.venv/bin/python
BENCH="$PY tools/bench_janus_hf.py"
OUT=runs/bench_transformers
mkdir -p "$OUT"
CFG=5 ANSWER_TOKENS=32
fail() {
  echo "bench_transformers: $1 failed (log: $OUT/transformers_${size}.log)" >&2
  exit 1
}
results=$OUT/results.json.tmp
{
  printf '{"cpu": "%s", "machine": %s, "sizes": {' \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$($BENCH machine --threads "$THREADS")"
  first=1
  for size in $SIZES; do
    dir=$OUT/$size
    [[ -f $dir/model.safetensors ]] ||
      $BENCH make "$size" "$dir" >"$OUT/transformers_$size.log" 2>&1 || fail "making $dir"
    echo "bench_transformers: $size: corl" >&2
    corl=$(build/bench_janus --ckpt "$dir" --threads "$THREADS" --batches "$BATCHES" \
      --repeats "$REPEATS" --cfg "$CFG" --answer-tokens "$ANSWER_TOKENS" --inputs "$dir/inputs.json")
    echo "bench_transformers: $size: transformers" >&2
    hf=$($BENCH measure "$dir" "$dir/inputs.json" --threads "$THREADS" --batches "$BATCHES" \
      --repeats "$REPEATS" --cfg "$CFG" --answer-tokens "$ANSWER_TOKENS" \
      2>"$OUT/transformers_$size.log") || fail "$size: transformers"
    prompt=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["t2i"]))' \
      "$dir/inputs.json")
    ((first)) || printf ','
    first=0
    describe=$($BENCH describe "$dir" "$dir/inputs.json" --answer-tokens "$ANSWER_TOKENS" \
      2>>"$OUT/transformers_$size.log") || fail "$size: counting FLOPs"
    printf '"%s": {"corl": %s, "transformers": %s, "describe": %s, "prompt_tokens": %s, ' \
      "$size" "$corl" "$hf" "$describe" "$prompt"
    printf '"cfg": %s, "answer_tokens": %s}' "$CFG" "$ANSWER_TOKENS"
  done
  printf '}}\n'
} >"$results"
mv "$results" "$OUT/results.json"
$BENCH report "$OUT/results.json" | tee "$OUT/table.md"
