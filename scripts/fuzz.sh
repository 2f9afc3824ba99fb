#!/usr/bin/env bash
# Fuzzes the parsers a user's file reaches (fuzz/*.cpp) with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer (docs/hardening.md).
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS] [--runs N] [--merge]
#
# TARGET: recipe, dataset_row, safetensors, tokenizer_json, janus_config, image (default all);
# SECONDS per target (default 60), or until N executions with --runs. Builds build-fuzz/ with
# clang (CORL_FUZZ=ON) on first use.
# Each target starts from its committed corpus (fuzz/corpus/TARGET) and grows a working corpus in
# build-fuzz/corpus/TARGET; a crash, leak, timeout or sanitizer report stops it, with the input in
# build-fuzz/crashes/TARGET/. --merge adds the working corpus's new coverage to the committed one
# (libFuzzer's -merge=1 keeps only inputs that add coverage). Prints each target's executions.
set -euo pipefail
cd "$(dirname "$0")/.."
ALL=(recipe dataset_row safetensors tokenizer_json janus_config image)
TARGETS=("${ALL[@]}") SECONDS_EACH=60 MERGE=0 RUNS=-1
while (($#)); do
  arg=$1
  shift
  case "$arg" in
    --merge) MERGE=1 ;;
    --runs)
      RUNS=${1:?usage: scripts/fuzz.sh [TARGET|all] [SECONDS] [--runs N] [--merge]}
      SECONDS_EACH=0
      shift ;;
    all) ;;
    [0-9]*) SECONDS_EACH=$arg ;;
    *)
      [[ " ${ALL[*]} " == *" $arg "* ]] ||
        { echo "fuzz: unknown target '$arg' (one of: ${ALL[*]}, all)" >&2; exit 2; }
      TARGETS=("$arg") ;;
  esac
done
# Set-up as scripts/setup.sh does it, with clang and its sanitizer and libFuzzer runtimes.
EXTRA_DEBIAN_PACKAGES="clang libclang-rt-14-dev" scripts/setup.sh
B=build-fuzz
if [[ ! -f $B/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCORL_FUZZ=ON -DCORL_BUILD_TESTS=OFF -DCORL_WITH_CUDA=OFF \
    -DCMAKE_PREFIX_PATH="$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')" \
    --log-level=WARNING >/dev/null
fi
cmake --build $B -j "${JOBS:-$(nproc)}" --target "${TARGETS[@]/#/fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
for t in "${TARGETS[@]}"; do
  work=$B/corpus/$t crashes=$B/crashes/$t
  mkdir -p "$work" "$crashes"
  log=$B/fuzz_$t.log
  if ((RUNS > 0)); then echo "fuzz: $t for $RUNS executions"; else echo "fuzz: $t for $SECONDS_EACH s"; fi
  status=0
  "$B/fuzz/fuzz_$t" "$work" "fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" -runs="$RUNS" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$crashes/" \
    >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz: $t: ${runs:-?} executions, exit $status (log: $log)"
  if [[ $status != 0 ]]; then
    grep -m3 -E "ERROR|runtime error|Test unit written|deadly signal|uncaught" "$log" || tail -20 "$log"
    exit "$status"
  fi
  if [[ $MERGE == 1 ]]; then
    "$B/fuzz/fuzz_$t" -merge=1 "fuzz/corpus/$t" "$work" >"$B/merge_$t.log" 2>&1
    echo "fuzz: $t: committed corpus now $(ls "fuzz/corpus/$t" | wc -l) files"
  fi
done
