#!/usr/bin/env bash
# The NCCL process group on a GPU machine: dist_check with one rank (and with one rank per GPU
# when there are several), then the Gloo group for comparison. Meant to be called from
# scripts/device_check.sh once the build is there:
#
#   BUILD_DIR=build scripts/dist_check_gpu.sh
#
# Exit status 0 when every check passed. Each run is bounded by `timeout` so that a broken
# fabric fails the check instead of hanging it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
CHECK="$BUILD_DIR/dist_check"
[[ -x $CHECK ]] || { echo "dist_check_gpu: $CHECK not built" >&2; exit 1; }

gpus=$(nvidia-smi -L 2>/dev/null | wc -l || true)
if [[ ${gpus:-0} -lt 1 ]]; then
  echo "dist_check_gpu: no GPU visible (nvidia-smi -L)" >&2
  exit 1
fi
echo "dist_check_gpu: $gpus GPU(s)"
timeout 300 "$CHECK" --backend nccl --nproc 1 --timeout 120
if [[ $gpus -gt 1 ]]; then
  timeout 300 "$CHECK" --backend nccl --nproc "$gpus" --timeout 120
fi
timeout 120 "$CHECK" --backend gloo --nproc 2 --timeout 60
echo "dist_check_gpu: ok"
