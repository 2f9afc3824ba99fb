#!/usr/bin/env bash
# Builds, on a CPU machine, the programs scripts/device_check.sh runs on the GPU machine, so that
# its device time goes to the checks rather than to compiling: the same configuration as the
# check's own configure step (this .venv's torch, which is the GPU machine's version, .device's
# libraries only, CORL_WITH_IMGCODECS=OFF), then corl, torch_tests, bench_kernels, dist_check and
# bench_janus copied into .devbin/ (ignored by git), to be carried:
#
#   scripts/device_deps.sh && scripts/device_build.sh
#   # then, there: BUILD=.devbin STEPS="tests bench dist train" scripts/device_check.sh
#   #         and: BUILD=.devbin STEPS=janus scripts/device_check.sh   (the Janus-Pro-1B benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-device}
DEST=${DEST:-.devbin}
[[ -d .device/root ]] || { echo "device_build: run scripts/device_deps.sh first" >&2; exit 1; }
# The check's own configure and build steps, with this machine's Python and only .device's libraries.
BUILD=$BUILD PYTHON=.venv/bin/python OUT=${OUT:-runs/device_build} STEPS="configure build" \
  CMAKE_ARGS="-DCMAKE_IGNORE_PREFIX_PATH=/usr" JOBS=${JOBS:-$(nproc)} scripts/device_check.sh
mkdir -p "$DEST/tests"
cp "$BUILD/corl" "$BUILD/bench_kernels" "$BUILD/dist_check" "$BUILD/bench_janus" "$DEST/"
cp "$BUILD/tests/torch_tests" "$DEST/tests/"
du -sh "$DEST"
