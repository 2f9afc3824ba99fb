#!/usr/bin/env bash
# Builds, on a CPU machine, the programs scripts/device_check.sh runs on the GPU machine, so that
# its device time goes to the checks rather than to compiling: the same configuration as the
# check's own configure step (this .venv's torch, which is the GPU machine's version, .device's
# libraries only, CORL_WITH_IMGCODECS=OFF), then corl, torch_tests, bench_kernels and dist_check
# copied into .devbin/ (ignored by git; about 12 MiB), to be carried:
#
#   scripts/device_deps.sh && scripts/device_build.sh
#   # then, there: BUILD=.devbin STEPS="tests bench dist train" scripts/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-device}
DEST=${DEST:-.devbin}
[[ -d .device/root ]] || { echo "device_build: run scripts/device_deps.sh first" >&2; exit 1; }
TORCH_PREFIX=$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PWD/.device/root/usr" -DCMAKE_IGNORE_PREFIX_PATH=/usr \
  -DCORL_WITH_IMGCODECS=OFF -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$PWD/.device/lib" >/dev/null
cmake --build "$BUILD" -j "${JOBS:-$(nproc)}" --target corl torch_tests bench_kernels dist_check
mkdir -p "$DEST/tests"
cp "$BUILD/corl" "$BUILD/bench_kernels" "$BUILD/dist_check" "$DEST/"
cp "$BUILD/tests/torch_tests" "$DEST/tests/"
du -sh "$DEST"
