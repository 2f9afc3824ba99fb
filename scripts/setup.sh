#!/usr/bin/env bash
# Set-up of a fresh machine: Debian packages, the project's Python environment (.venv, with
# LibTorch from PyPI's torch wheel), then configure and build. Safe to run again: each step is
# skipped when already done.
#
#   scripts/setup.sh            # everything
#   BUILD_DIR=build-debug BUILD_TYPE=Debug scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}
TORCH_VERSION=2.11.0

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config python3-venv procps
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev
  libsentencepiece-dev sentencepiece libonig-dev libgloo-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libcurl4-openssl-dev
)
# Packages of optional builds, named by the scripts that need them (scripts/fuzz.sh: clang).
read -r -a extra <<<"${EXTRA_DEBIAN_PACKAGES:-}"
DEBIAN_PACKAGES+=("${extra[@]}")

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=$([[ $(id -u) -eq 0 ]] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION into .venv"
  .venv/bin/pip install --quiet --progress-bar off --upgrade pip
  .venv/bin/pip install --quiet --progress-bar off "torch==$TORCH_VERSION" numpy
fi
# Python packages for interoperability checks (safetensors, and transformers for the Janus
# parity tests), the eval report's plots, TensorBoard (scripts/tensorboard_events.py) and TRL,
# whose own GRPO loss tests/grpo_dump_check.py checks corl's against.
if ! .venv/bin/python -c "import safetensors, matplotlib, transformers, tokenizers, tensorboard, trl" 2>/dev/null; then
  .venv/bin/pip install --quiet --progress-bar off safetensors matplotlib transformers tokenizers \
    tensorboard trl
fi

TORCH_PREFIX=$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" --log-level=WARNING >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "setup: built $BUILD_DIR/corl"
