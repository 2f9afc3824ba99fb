# shellcheck shell=bash
# Sourced by the pipeline scripts: runs a corl stage unless its run folder already holds the
# finished result of the same command.
#
#   stage OUT_DIR CONFIG_FILE corl SUBCOMMAND ARGS...     (CONFIG_FILE "-": the stage has none)
#
# A stage's stamp is a hash of its command line, its recipe file and the stamps of the stages it
# reads (every stamp written before it in this pipeline; the quickstart seeds the chain with the
# hash of the corl binary), so changing a recipe redoes that stage and everything after it. The stamp is written only once the stage finished. FRESH=1 redoes every
# stage.

STAGE_CHAIN=""

stage() {
  local out=$1 config=$2
  shift 2
  local stamp
  stamp=$( { printf '%s\n' "$*" "$STAGE_CHAIN"; [[ $config == - ]] || cat "$config"; } | sha256sum | cut -d' ' -f1)
  STAGE_CHAIN="$STAGE_CHAIN $stamp"
  if [[ ${FRESH:-0} != 1 && -f "$out/.stage" && $(cat "$out/.stage") == "$stamp" ]]; then
    echo "stage: $out is finished for this recipe; reusing it (--fresh redoes it)"
    return 0
  fi
  # A run folder that is not this recipe's finished result is stale: its metrics would mix.
  rm -rf "$out"
  local start=$SECONDS
  "$@" || {
    local status=$?
    echo "stage: $out failed (exit $status); it will be redone" >&2
    return $status
  }
  mkdir -p "$out"
  echo "$stamp" >"$out/.stage"
  echo "stage: $out done in $((SECONDS - start)) s"
  STAGE_TIMES="${STAGE_TIMES:-}$out $((SECONDS - start)) s"$'\n'
}

# The flags that run a GRPO recipe's stage on this machine.
#
# Ranks: RANKS data-parallel processes (`corl ... --nproc`, docs/distributed.md) sharing the
# machine's cores, each rolling out its share of the recipe's completions a micro-step, so that the
# global batch stays the recipe's. On a 2-core machine two single-threaded ranks finish a stage
# sooner than one two-threaded process (docs/benchmarks.md, "Data-parallel steps"). RANKS sets the
# count (default 2, or 1 on a 1-core machine); one rank, or a count RANKS does not divide, keeps one
# process (corl refuses a share that is not whole groups).
#
# Precision: a recipe's `run.autocast: bf16` stays where the CPU multiplies bfloat16 natively
# (AVX512-BF16 or AMX); elsewhere LibTorch emulates it, slower than float32, and the stage runs in
# float32 (`--set run.autocast=none`; its numbers then differ from a bf16 run's by rounding).
#
#   "$CORL" train --config configs/unified.yaml $(machine_flags configs/unified.yaml)
machine_flags() {
  if grep -q '^  autocast: *bf16' "$1" && ! grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
    echo "--set run.autocast=none"
  fi
  local ranks=${RANKS:-$(($(nproc) >= 2 ? 2 : 1))} completions
  completions=$(sed -n 's/^  per_device_train_batch_size: *\([0-9][0-9]*\).*/\1/p' "$1")
  if ((ranks <= 1)) || [[ -z $completions ]] || ((completions % ranks)); then return 0; fi
  echo "--nproc $ranks --set run.threads=$(($(nproc) > ranks ? $(nproc) / ranks : 1))" \
    "--set grpo.per_device_train_batch_size=$((completions / ranks))"
}
