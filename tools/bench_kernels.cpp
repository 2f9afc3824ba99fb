// Benchmark of the fused token log-prob kernels (kernels/token_logprobs.h) against eager LibTorch
// (log_softmax + gather, and its autograd backward) on one CUDA device, for rows = 8192 and
// vocab in {16384, 102400}, bfloat16 and float32 logits:
//
//   - time of each kernel and its achieved bandwidth (bytes it must move / time), beside the
//     device-to-device copy bandwidth measured in the same run, and their ratio;
//   - speed-up over eager forward, and over eager forward + backward (through the op, as the
//     trainer calls it: autograd, the target check included);
//   - peak memory above the inputs, eager and fused (fused backward also written in place).
//
//   bench_kernels [--rows 8192] [--iters 20]
//
// Exits 0 with a message where no CUDA device is visible (nothing is measured there).
#include <ATen/cuda/CUDAContext.h>          // defines: at::cuda::getCurrentCUDAStream
#include <c10/cuda/CUDACachingAllocator.h>  // defines: getDeviceStats, resetPeakStats
#include <cuda_runtime_api.h>               // defines: cudaEvent_t
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "corl/ops/token_logprobs.h"
#include "token_logprobs.h"  // kernels/: token_logprobs_forward, token_logprobs_backward

namespace {

namespace allocator = c10::cuda::CUDACachingAllocator;
constexpr double kGB = 1e9;
constexpr double kMiB = 1024.0 * 1024.0;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "bench_kernels: %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

// Median milliseconds of one call, timed with CUDA events on the current stream.
double time_ms(const std::function<void()>& f, int iters) {
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  for (int i = 0; i < 3; ++i) f();
  check(cudaStreamSynchronize(stream), "warm-up");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  std::vector<float> times;
  for (int i = 0; i < iters; ++i) {
    check(cudaEventRecord(start, stream), "record");
    f();
    check(cudaEventRecord(stop, stream), "record");
    check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

// Peak bytes allocated above what was allocated before f ran.
double peak_extra_mib(const std::function<void()>& f) {
  torch::cuda::synchronize();
  const int device = 0;
  const auto before = allocator::getDeviceStats(device);
  const int64_t base = before.allocated_bytes[0].current;
  allocator::resetPeakStats(device);
  f();
  torch::cuda::synchronize();
  const auto after = allocator::getDeviceStats(device);
  return static_cast<double>(after.allocated_bytes[0].peak - base) / kMiB;
}

corl::kernels::ScalarType kernel_type(torch::ScalarType t) {
  return t == torch::kBFloat16 ? corl::kernels::ScalarType::kBFloat16
                               : corl::kernels::ScalarType::kFloat32;
}

torch::Tensor eager_logprobs(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

struct Row {
  int64_t vocab;
  const char* dtype;
  double fwd_ms, fwd_gbs, bwd_ms, bwd_gbs;
  double eager_fwd_ms, op_fwd_ms, eager_step_ms, op_step_ms;
  double eager_fwd_mib, op_fwd_mib, eager_step_mib, op_step_mib, op_inplace_mib;
};

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 8192;
  int iters = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rows") == 0) rows = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--iters") == 0) iters = std::atoi(argv[i + 1]);
  }
  if (!corl::ops::cuda_kernels_built()) {
    std::printf("bench_kernels: this build has no CUDA kernels (no nvcc); nothing measured\n");
    return 0;
  }
  if (!torch::cuda::is_available()) {
    std::printf("bench_kernels: no CUDA device visible; nothing measured\n");
    return 0;
  }
  torch::NoGradGuard no_grad_outside;  // grad mode is turned on only where a backward is timed
  const torch::Device cuda(torch::kCUDA, 0);
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "device properties");
  std::printf("device: %s, %d multiprocessors, %.0f MB L2\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize / 1e6);

  // Copy bandwidth: 2 GiB read and 2 GiB written per copy, far beyond L2.
  double copy_gbs = 0;
  {
    const int64_t bytes = int64_t{2} << 30;
    torch::Tensor src = torch::empty({bytes}, torch::TensorOptions(torch::kUInt8).device(cuda));
    torch::Tensor dst = torch::empty_like(src);
    src.fill_(1);
    const double ms = time_ms([&] { dst.copy_(src); }, iters);
    copy_gbs = 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / kGB;
  }
  std::printf("device-to-device copy: %.0f GB/s (bytes read + written)\n", copy_gbs);

  const cudaStream_t stream = at::cuda::getCurrentCUDAStream().stream();
  std::vector<Row> table;
  for (const int64_t vocab : {int64_t{16384}, int64_t{102400}}) {
    for (const torch::ScalarType dtype : {torch::kBFloat16, torch::kFloat32}) {
      Row row{};
      row.vocab = vocab;
      row.dtype = dtype == torch::kBFloat16 ? "bf16" : "fp32";
      const auto options = torch::TensorOptions(dtype).device(cuda);
      torch::Tensor logits = torch::randn({rows, vocab}, options) * 4;
      const torch::Tensor targets =
          torch::randint(vocab, {rows}, torch::TensorOptions(torch::kInt64).device(cuda));
      const torch::Tensor upstream = torch::randn({rows}, torch::TensorOptions().device(cuda));
      const double logits_bytes = static_cast<double>(logits.numel() * logits.element_size());

      // The kernels alone, through their launchers.
      torch::Tensor logp = torch::empty({rows}, upstream.options());
      torch::Tensor lse = torch::empty({rows}, upstream.options());
      torch::Tensor bad = torch::empty({1}, targets.options());
      torch::Tensor grad = torch::empty_like(logits);
      auto* bad_row = reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>());
      const auto forward = [&] {
        check(corl::kernels::token_logprobs_forward(logits.data_ptr(), kernel_type(dtype), rows,
                                                    vocab, vocab, targets.data_ptr<int64_t>(),
                                                    logp.data_ptr<float>(), lse.data_ptr<float>(),
                                                    bad_row, stream),
              "forward");
      };
      const auto backward = [&] {
        check(corl::kernels::token_logprobs_backward(
                  logits.data_ptr(), kernel_type(dtype), rows, vocab, vocab,
                  targets.data_ptr<int64_t>(), lse.data_ptr<float>(), upstream.data_ptr<float>(),
                  grad.data_ptr(), stream),
              "backward");
      };
      check(corl::kernels::token_logprobs_reset_bad_row(bad_row, stream), "reset");
      row.fwd_ms = time_ms(forward, iters);
      row.fwd_gbs = logits_bytes / (row.fwd_ms * 1e-3) / kGB;
      row.bwd_ms = time_ms(backward, iters);
      row.bwd_gbs = 2.0 * logits_bytes / (row.bwd_ms * 1e-3) / kGB;
      grad = torch::Tensor();

      // Through the op and autograd, as the trainer calls them, against eager LibTorch.
      row.eager_fwd_ms = time_ms([&] { eager_logprobs(logits, targets); }, iters);
      row.op_fwd_ms = time_ms([&] { corl::ops::token_logprobs(logits, targets); }, iters);
      const auto eager_step = [&] {
        torch::AutoGradMode grad_mode(true);
        torch::Tensor x = logits.detach().requires_grad_(true);
        eager_logprobs(x, targets).backward(upstream.to(dtype));
      };
      const auto op_step = [&](bool in_place) {
        torch::AutoGradMode grad_mode(true);
        torch::Tensor x = logits.detach().requires_grad_(true);
        corl::ops::token_logprobs(x, targets, 2048, in_place).backward(upstream);
      };
      row.eager_step_ms = time_ms(eager_step, iters);
      row.op_step_ms = time_ms([&] { op_step(false); }, iters);

      row.eager_fwd_mib = peak_extra_mib([&] { eager_logprobs(logits, targets); });
      row.op_fwd_mib = peak_extra_mib([&] { corl::ops::token_logprobs(logits, targets); });
      row.eager_step_mib = peak_extra_mib(eager_step);
      row.op_step_mib = peak_extra_mib([&] { op_step(false); });
      // In place overwrites the logits: a copy of them stands in so the next rows stay valid.
      torch::Tensor scratch = logits.clone();
      std::swap(scratch, logits);
      row.op_inplace_mib = peak_extra_mib([&] { op_step(true); });
      std::swap(scratch, logits);
      table.push_back(row);
      std::printf("measured rows=%lld vocab=%lld %s\n", static_cast<long long>(rows),
                  static_cast<long long>(vocab), row.dtype);
      std::fflush(stdout);
    }
  }

  std::printf("\nrows = %lld; copy bandwidth %.0f GB/s; times are medians of %d\n\n",
              static_cast<long long>(rows), copy_gbs, iters);
  std::printf(
      "| vocab | dtype | fwd ms | fwd GB/s | fwd/copy | bwd ms | bwd GB/s | bwd/copy | eager fwd "
      "ms "
      "| op fwd ms | fwd speed-up | eager fwd+bwd ms | op fwd+bwd ms | fwd+bwd speed-up |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : table) {
    std::printf(
        "| %lld | %s | %.3f | %.0f | %.2f | %.3f | %.0f | %.2f | %.3f | %.3f | %.2fx | %.3f | %.3f "
        "| "
        "%.2fx |\n",
        static_cast<long long>(r.vocab), r.dtype, r.fwd_ms, r.fwd_gbs, r.fwd_gbs / copy_gbs,
        r.bwd_ms, r.bwd_gbs, r.bwd_gbs / copy_gbs, r.eager_fwd_ms, r.op_fwd_ms,
        r.eager_fwd_ms / r.op_fwd_ms, r.eager_step_ms, r.op_step_ms,
        r.eager_step_ms / r.op_step_ms);
  }
  std::printf(
      "\nPeak memory above the logits and targets (MiB):\n\n| vocab | dtype | eager fwd | op fwd | "
      "eager fwd+bwd | op fwd+bwd | op fwd+bwd in place |\n|---|---|---|---|---|---|---|\n");
  for (const Row& r : table) {
    std::printf("| %lld | %s | %.1f | %.3f | %.1f | %.1f | %.1f |\n",
                static_cast<long long>(r.vocab), r.dtype, r.eager_fwd_mib, r.op_fwd_mib,
                r.eager_step_mib, r.op_step_mib, r.op_inplace_mib);
  }

  // The targets.
  bool met = true;
  for (const Row& r : table) {
    const bool bandwidth = r.fwd_gbs >= 0.8 * copy_gbs && r.bwd_gbs >= 0.8 * copy_gbs;
    const bool speed = r.eager_step_ms >= 2.0 * r.op_step_ms;
    // Forward keeps [rows] float32 log-probs and log-sum-exps (and the target check's word).
    const bool memory = r.op_fwd_mib * kMiB <= 64.0 * static_cast<double>(rows) + (1 << 20);
    std::printf(
        "targets vocab=%lld %s: >=80%% copy bandwidth %s, >=2x eager fwd+bwd %s, "
        "forward memory O(rows) %s\n",
        static_cast<long long>(r.vocab), r.dtype, bandwidth ? "met" : "MISSED",
        speed ? "met" : "MISSED", memory ? "met" : "MISSED");
    met &= bandwidth && speed && memory;
  }
  std::printf("bench_kernels: all targets %s\n", met ? "met" : "NOT met");
  return 0;
}
