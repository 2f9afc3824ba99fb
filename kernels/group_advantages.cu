#include <climits>
#include <cmath>

#include "group_advantages.h"

namespace corl::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kGroupsPerBlock = kThreads / 32;

__device__ __forceinline__ double warp_sum(double x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

__device__ __forceinline__ double warp_max(double x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    x = fmax(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

__device__ __forceinline__ double warp_min(double x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    x = fmin(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

__global__ void __launch_bounds__(kThreads)
    group_advantages_kernel(const double* __restrict__ rewards, int64_t groups, int64_t group_size,
                            bool scale_by_std, double eps, float* __restrict__ advantages) {
  const int64_t group = static_cast<int64_t>(blockIdx.x) * kGroupsPerBlock + threadIdx.x / 32;
  if (group >= groups) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  const double* r = rewards + group * group_size;
  float* a = advantages + group * group_size;

  double sum = 0.0;
  double high = -INFINITY;
  double low = INFINITY;
  for (int64_t i = lane; i < group_size; i += 32) {
    sum += r[i];
    high = fmax(high, r[i]);
    low = fmin(low, r[i]);
  }
  const double mean = warp_sum(sum) / static_cast<double>(group_size);
  // Equal rewards carry no signal: exactly 0, also when eps == 0 would give 0 / 0.
  const bool flat = warp_max(high) == warp_min(low);

  double spread = 1.0;
  if (scale_by_std) {
    // Two passes (mean first) keep the variance free of cancellation.
    double squares = 0.0;
    for (int64_t i = lane; i < group_size; i += 32) squares += (r[i] - mean) * (r[i] - mean);
    squares = warp_sum(squares);
    const double std = group_size > 1 ? sqrt(squares / static_cast<double>(group_size - 1)) : 0.0;
    spread = std + eps;
  }
  for (int64_t i = lane; i < group_size; i += 32) {
    const double centred = r[i] - mean;
    a[i] = flat ? 0.0f : static_cast<float>(scale_by_std ? centred / spread : centred);
  }
}

}  // namespace

cudaError_t group_advantages_forward(const double* rewards, int64_t groups, int64_t group_size,
                                     bool scale_by_std, double eps, float* advantages,
                                     cudaStream_t stream) {
  if (groups < 0 || group_size < 1 || eps < 0.0) return cudaErrorInvalidValue;
  if (groups == 0) return cudaSuccess;
  const int64_t blocks = (groups + kGroupsPerBlock - 1) / kGroupsPerBlock;
  if (blocks > INT_MAX) return cudaErrorInvalidValue;
  group_advantages_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      rewards, groups, group_size, scale_by_std, eps, advantages);
  return cudaGetLastError();
}

}  // namespace corl::kernels
