#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and UndefinedBehaviorSanitizer (docs/hardening.md):
# builds build-asan/ with CORL_SANITIZE=ON (CUDA off; LibTorch itself is not instrumented, our
# code is) and runs CTest in it. Any report fails the test it occurred in.
#
#   scripts/sanitize.sh [CTEST ARGS...]      e.g. scripts/sanitize.sh -R grpo
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || scripts/setup.sh
B=build-asan
if [[ ! -f $B/build.ninja ]]; then
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORL_SANITIZE=ON \
    -DCORL_WITH_CUDA=OFF -DCORL_USE_PCH=ON \
    -DCMAKE_PREFIX_PATH="$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)')" \
    --log-level=WARNING >/dev/null
fi
cmake --build $B -j "${JOBS:-$(nproc)}"
# Nothing is suppressed: the whole suite runs clean, LibTorch's own allocations included.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir $B --output-on-failure -j "${JOBS:-$(nproc)}" "$@"
