#!/usr/bin/env bash
# Everything the GPU checks need, in one call on a machine with an NVIDIA H100/H200 and the
# Python torch 2.11 (its LibTorch), within 8 minutes:
#
#   1. configure and build corl, the tests and bench_kernels against that LibTorch, with the
#      libraries carried in .device/ (made on a CPU machine by scripts/device_deps.sh) and
#      CORL_WITH_IMGCODECS=OFF (PNG through libpng; see device_deps.sh for why);
#   2. the GPU tests (tests/gpu: each kernel against the reference path);
#   3. the kernel benchmark (tools/bench_kernels.cpp);
#   4. the NCCL process group with world size 1 (scripts/dist_check_gpu.sh; Gloo beside it);
#   5. a short unified stage on CUDA with bf16 autocast, from a tiny dataset, tokenizers and base
#      made here in about a minute; it must end with finite losses and a checkpoint. Its image
#      reward is `cycle` (1 - RMSE to the real image, among others), whose spread within a group
#      is never zero, so that the advantages, the loss and the gradients are not all 0 even for
#      a base that has barely trained.
#   6. two 2-step unified stages from that base (so `train` must run first): plain
#      (dist.zero_stage 0) and with dist.zero_stage 2 + model.gradient_checkpointing; each one's
#      peak GPU memory (nvidia-smi sampled every 100 ms, less the memory in use before it) is
#      printed side by side. With one GPU the world is one rank, so ZeRO shards nothing: the
#      difference is checkpointing's, and the run checks that the sharded optimizer works on
#      CUDA tensors (its state gathered to the host for a checkpoint) with finite losses.
#   7. janus (not in the default STEPS; one call of its own): corl against transformers at
#      Janus-Pro-1B's widths, bf16 (scripts/bench_janus_gpu.sh): images/s at batches 16 and 64,
#      answer tokens/s, the decode step's share of the copy bandwidth, and two unified steps'
#      time and peak memory; logs janus.log and janus.md. Within 8 minutes with the programs
#      built beforehand:  BUILD=.devbin STEPS=janus scripts/device_check.sh
#
#   scripts/device_check.sh            # logs under $OUT (or runs/device_check): at most 8 files,
#                                      # within what the device tool brings back (8)
#   STEPS="build tests" scripts/device_check.sh    # a subset, in this order
#   BUILD=.devbin STEPS="tests bench dist train" scripts/device_check.sh
#                                      # programs built on a CPU machine (scripts/device_build.sh)
#
# On a CPU machine, its non-GPU parts can be checked: STEPS=configure (with CMAKE_ARGS, e.g.
# -DCMAKE_IGNORE_PREFIX_PATH=/usr to make sure only .device is used), and the train step's
# commands with DEVICE=cpu AUTOCAST=none THREADS=2 BUILD=build.
#
# Prints the key lines of each step; exits non-zero on the first failed step.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
OUT=${OUT:-$ROOT/runs/device_check}
DEPS=$ROOT/.device
BUILD=${BUILD:-$ROOT/build-device}
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
STEPS=${STEPS:-"configure build tests bench dist train zero"}
DEVICE=${DEVICE:-cuda}
AUTOCAST=${AUTOCAST:-bf16}
THREADS=${THREADS:-8}
read -r -a CMAKE_ARGS <<<"${CMAKE_ARGS:-}"
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT"
START=$SECONDS

say() { printf '== %4ds %s\n' $((SECONDS - START)) "$*"; }
fail() { say "FAILED: $*"; exit 1; }
wants() { [[ " $STEPS " == *" $1 "* ]]; }

[[ -d $DEPS/root && -d $DEPS/lib ]] ||
  fail "$DEPS is missing: run scripts/device_deps.sh on a CPU machine and carry .device"
# The carried libraries (OpenCV's BLAS and LAPACK, GLX, ...) for the build's test discovery and
# for every program below; the image's own C/C++ runtimes and zlib are not among them.
export LD_LIBRARY_PATH=$DEPS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Programs built on another machine against the same torch (BUILD=DIR, STEPS without configure
# and build) find this machine's LibTorch through the path, not through their own run path.
TORCH_LIB=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) &&
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$TORCH_LIB

say "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 |
  tee "$OUT/prepare.log"
nvcc --version 2>&1 | tail -1 | tee -a "$OUT/prepare.log"
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)' 2>&1 |
  tee -a "$OUT/prepare.log"

if wants configure; then
  say "configure against the Python torch's LibTorch and .device"
  TORCH_PREFIX=$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
    fail "python torch not importable"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$DEPS/root/usr" \
    -DCORL_WITH_IMGCODECS=OFF \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$DEPS/lib" "${CMAKE_ARGS[@]}" \
    >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; fail "configure (configure.log)"; }
  grep -E "corl: CUDA kernels|OpenCV:" "$OUT/configure.log"
  grep -hE "^CORL_(SENTENCEPIECE|PNG|OPENCV)_[A-Za-z_]*:|^(yaml-cpp|fmt|spdlog|nlohmann_json|CLI11|GTest)_DIR" \
    "$BUILD/CMakeCache.txt"
fi

if wants build; then
  say "build ($JOBS jobs)"
  cmake --build "$BUILD" -j "$JOBS" --target corl torch_tests bench_kernels dist_check bench_janus \
    >"$OUT/build.log" 2>&1 || { grep -E -A5 "error|FAILED" "$OUT/build.log" | head -60
                                fail "build (log: build.log)"; }
  grep -E "spill|warning" "$OUT/build.log" | head -20
  say "built corl, torch_tests, bench_kernels, dist_check and bench_janus in $BUILD"
fi

if wants tests; then
  say "GPU tests (tests/gpu)"
  "$BUILD/tests/torch_tests" --gtest_filter='*Kernel*:DecodeGraphGpu.*' --gtest_brief=0 \
    >"$OUT/gpu_tests.log" 2>&1
  status=$?
  grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]|Failure|Expected|Which is|error" "$OUT/gpu_tests.log" |
    head -80
  ((status == 0)) || fail "GPU tests (log: gpu_tests.log)"
  ! grep -q "SKIPPED" "$OUT/gpu_tests.log" || fail "GPU tests skipped: no device seen"
fi

if wants bench; then
  say "kernel benchmark"
  "$BUILD/bench_kernels" >"$OUT/bench_kernels.log" 2>&1 || { tail -20 "$OUT/bench_kernels.log"
                                                            fail "bench_kernels"; }
  grep -v "^measured" "$OUT/bench_kernels.log"
fi

if wants dist; then
  say "NCCL process group, world size 1 (and Gloo)"
  BUILD_DIR=$BUILD scripts/dist_check_gpu.sh >"$OUT/dist.log" 2>&1 || { tail -20 "$OUT/dist.log"
                                                                       fail "dist check (dist.log)"; }
  tail -5 "$OUT/dist.log"
fi

# The tiny unified stage of the train and zero steps, from the train step's data and base, on
# the device, 4 groups of 4 a step over ACCUMULATION micro-steps:
# unified_stage OUT ACCUMULATION [--set KEY=VALUE ...].
unified_stage() {
  local out=$1 accumulation=$2
  shift 2
  "$BUILD/corl" train --config configs/unified.yaml --init "$WORK/pre" \
    --set run.device="$DEVICE" --set run.autocast="$AUTOCAST" --set run.threads="$THREADS" \
    --set data.train="$WORK/data/train.jsonl" --set data.eval="$WORK/data/eval.jsonl" \
    --set optim.gradient_accumulation_steps="$accumulation" \
    --set grpo.per_device_train_batch_size=$((16 / accumulation)) --set grpo.num_generations=4 \
    --set grpo.max_completion_length=24 \
    --set "grpo.reward_funcs=[cycle, accuracy, format]" --set "grpo.reward_weights=[1.0, 1.0, 0.5]" \
    "$@" --out "$out"
}
if wants train; then
  CORL=$BUILD/corl
  say "tiny data, tokenizers and base (CPU), in $WORK"
  "$CORL" data --config configs/world.yaml --set data.train_size=256 --set data.eval_size=32 \
    --set run.threads="$THREADS" --out "$WORK/data" >>"$OUT/prepare.log" 2>&1 || fail "corl data (prepare.log)"
  "$CORL" tokenizer --config configs/tokenizers.yaml --set text.data="$WORK/data/train.jsonl" \
    --set image.data="$WORK/data/train.jsonl" --set image.optim.steps=20 \
    --set image.optim.batch_size=8 --set run.threads="$THREADS" --out "$WORK/tok" >>"$OUT/prepare.log" 2>&1 ||
    fail "corl tokenizer (prepare.log)"
  "$CORL" pretrain --config configs/pretrain.yaml --set data.train="$WORK/data/train.jsonl" \
    --set data.eval="$WORK/data/eval.jsonl" --set tokenizer.path="$WORK/tok" \
    --set train.steps=6 --set train.t2i_batch=16 --set train.checkpoint_every=0 --set eval.prompts=0 \
    --set eval.questions=0 --set run.threads="$THREADS" --out "$WORK/pre" >>"$OUT/prepare.log" 2>&1 ||
    fail "corl pretrain (prepare.log)"

  say "unified stage on $DEVICE, autocast $AUTOCAST"
  unified_stage "$WORK/uni" 2 --set grpo.max_steps=4 \
    --set train.checkpoint_every=2 --set eval.prompts=8 --set eval.questions=8 >"$OUT/train.log" 2>&1
  status=$?
  tail -5 "$OUT/train.log"
  cp "$WORK/uni/metrics.jsonl" "$OUT/train_metrics.jsonl" 2>/dev/null
  ((status == 0)) || fail "corl train on CUDA (train.log)"
  "$PYTHON" - "$WORK/uni" <<'PY' || fail "unified stage: losses or checkpoint"
import json, math, os, sys
run = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if '"loss"' in l]
losses = [(r["step"], r["loss"], r.get("loss_t2i"), r.get("loss_mm2t")) for r in rows]
for r, (step, loss, t2i, mm2t) in zip(rows, losses):
    print(f"step {step}: loss {loss:.6g} (t2i {t2i:.6g}, mm2t {mm2t:.6g}), "
          f"grad_norm {r.get('grad_norm', float('nan')):.4g}, "
          f"reward_t2i {r['reward_t2i']['mean']:.4g}, kl_t2i {r.get('kl_t2i', 0):.3g}")
assert losses, "no step wrote a loss"
assert all(math.isfinite(v) for l in losses for v in l[1:]), "a loss is not finite"
final = os.path.join(run, "final", "model.safetensors")
assert os.path.getsize(final) > 0
print("checkpoint", final, os.path.getsize(final), "bytes")
PY
fi
if wants zero; then
  [[ -d $WORK/pre/final ]] || fail "the zero step needs the train step's base (STEPS=\"train zero\")"
  GPU=${CUDA_VISIBLE_DEVICES:-0}
  GPU=${GPU%%,*}
  used() { nvidia-smi -i "$GPU" --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
  # Peak MiB in use on the GPU while a 2-step stage runs, less what was in use before it.
  peak_run() {  # peak_run NAME --set ...
    local name=$1 before sampler status
    shift
    before=$(used)
    nvidia-smi -i "$GPU" --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 \
      >"$WORK/$name.mem" 2>/dev/null &
    sampler=$!
    unified_stage "$WORK/$name" 1 --set grpo.max_steps=2 \
      --set train.checkpoint_every=1 --set eval.prompts=0 --set eval.questions=0 "$@" \
      >>"$OUT/train.log" 2>&1
    status=$?
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    PEAK=$(( $(sort -n "$WORK/$name.mem" | tail -1) - before ))
    return $status
  }
  say "2-step stages: stage 0 against dist.zero_stage 2 + gradient checkpointing"
  echo "== zero step: stage 0, then zero_stage 2 + checkpointing" >>"$OUT/train.log"
  peak_run zero0 --set dist.zero_stage=0 || fail "2-step stage, zero_stage 0 (train.log)"
  peak0=$PEAK
  peak_run zero2 --set dist.zero_stage=2 --set model.gradient_checkpointing=true ||
    fail "2-step stage, zero_stage 2 + checkpointing (train.log)"
  peak2=$PEAK
  grep -h "ZeRO stage" "$OUT/train.log" | tail -1
  echo "peak GPU memory: zero_stage 0 ${peak0} MiB, zero_stage 2 + gradient_checkpointing ${peak2} MiB (1 rank)"
  "$PYTHON" - "$WORK/zero0" "$WORK/zero2" <<'PY' || fail "zero step: losses or checkpoint"
import json, math, os, sys
for run in sys.argv[1:]:
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if '"loss"' in l]
    assert len(rows) == 2, f"{run}: {len(rows)} steps logged"
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in rows), run
    assert os.path.getsize(os.path.join(run, "checkpoints", "step-00000001", "optimizer.pt")) > 0
    print(os.path.basename(run), "losses", [round(r["loss"], 6) for r in rows])
PY
fi

if wants janus; then
  say "Janus-Pro-1B widths: corl against transformers (scripts/bench_janus_gpu.sh)"
  OUT=$OUT BUILD=$BUILD PYTHON=$PYTHON WORK=$WORK/janus scripts/bench_janus_gpu.sh ||
    fail "janus benchmark (janus.log)"
fi

say "device_check: all steps passed ($STEPS)"
