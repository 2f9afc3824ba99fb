#include <climits>
#include <cmath>

#include "grpo_loss.h"

namespace corl::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// Bounds of the trust region, rounded to float32 as LibTorch rounds a double scalar compared with
// a float32 tensor.
struct Region {
  float low;
  float high;
};

Region region(const GrpoLossConfig& config) {
  return {static_cast<float>(1.0 - config.epsilon_low),
          static_cast<float>(1.0 + config.epsilon_high)};
}

template <typename T>
__device__ __forceinline__ T block_sum(T x, T* scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = lane < kWarps ? scratch[lane] : T(0);
  if (warp == 0) {
#pragma unroll
    for (int offset = kWarps / 2; offset > 0; offset /= 2) {
      x += __shfl_xor_sync(0xffffffffu, x, offset);
    }
  }
  return x;  // valid in thread 0
}

// One block per row.
__global__ void __launch_bounds__(kThreads)
    per_token_kernel(GrpoLossInputs in, Region trust, float beta, GrpoLossOutputs out) {
  __shared__ float float_scratch[kWarps];
  __shared__ double double_scratch[kWarps];
  const int64_t row = blockIdx.x;
  const float a = in.advantages[row];
  float loss_sum = 0.0f;
  float weight_sum = 0.0f;
  double kl_sum = 0.0;
  double low_sum = 0.0;
  double high_sum = 0.0;
  double active_count = 0.0;
  for (int64_t t = threadIdx.x; t < in.tokens; t += kThreads) {
    const int64_t i = row * in.tokens + t;
    const float w = in.weight[i];
    const bool active = w != 0.0f;
    const float logp = in.logp[i];
    // Outside the mask old_logp may hold anything: pinning the log-ratio keeps an overflow there
    // from reaching the sums as inf * 0 = NaN.
    const float ratio = expf(active ? logp - in.old_logp[i] : 0.0f);
    const float clipped = fminf(fmaxf(ratio, trust.low), trust.high);
    float l = -fminf(ratio * a, clipped * a);
    if (beta > 0.0f) {
      const float d = active ? in.ref_logp[i] - logp : 0.0f;
      const float kl = expf(d) - d - 1.0f;
      l += beta * kl;
      kl_sum += static_cast<double>(kl * w);
    }
    l *= w;
    out.per_token[i] = l;
    loss_sum += l;
    weight_sum += w;
    // The clipped branch wins the min (and passes no gradient) only where the ratio left the
    // trust region in the direction the advantage pushes it.
    if (ratio < trust.low && a < 0.0f) low_sum += w;
    if (ratio > trust.high && a > 0.0f) high_sum += w;
    active_count += active ? 1.0 : 0.0;
  }
  loss_sum = block_sum(loss_sum, float_scratch);
  weight_sum = block_sum(weight_sum, float_scratch);
  kl_sum = block_sum(kl_sum, double_scratch);
  low_sum = block_sum(low_sum, double_scratch);
  high_sum = block_sum(high_sum, double_scratch);
  active_count = block_sum(active_count, double_scratch);
  if (threadIdx.x == 0) {
    out.row_loss[row] = loss_sum;
    out.row_weight[row] = weight_sum;
    double* stats = out.row_stats + row * 4;
    stats[0] = kl_sum;
    stats[1] = low_sum;
    stats[2] = high_sum;
    stats[3] = active_count;
  }
}

// One block reduces the rows to the loss and the statistics.
__global__ void __launch_bounds__(kThreads)
    aggregate_kernel(int64_t rows, GrpoAggregation aggregation, float sum_norm, float normaliser,
                     GrpoLossOutputs out) {
  __shared__ double scratch[kWarps];
  double loss_sum = 0.0;
  double weight_sum = 0.0;
  double row_means = 0.0;
  double nonempty_rows = 0.0;
  double stats[4] = {0.0, 0.0, 0.0, 0.0};
  for (int64_t row = threadIdx.x; row < rows; row += kThreads) {
    const float w = out.row_weight[row];
    loss_sum += out.row_loss[row];
    weight_sum += w;
    row_means += out.row_loss[row] / fmaxf(w, 1.0f);
    nonempty_rows += w > 0.0f ? 1.0 : 0.0;
#pragma unroll
    for (int k = 0; k < 4; ++k) stats[k] += out.row_stats[row * 4 + k];
  }
  loss_sum = block_sum(loss_sum, scratch);
  weight_sum = block_sum(weight_sum, scratch);
  row_means = block_sum(row_means, scratch);
  nonempty_rows = block_sum(nonempty_rows, scratch);
#pragma unroll
  for (int k = 0; k < 4; ++k) stats[k] = block_sum(stats[k], scratch);
  if (threadIdx.x != 0) return;
  float denominator = 1.0f;
  float loss = 0.0f;
  switch (aggregation) {
    case GrpoAggregation::kTokenMean:
      denominator = fmaxf(static_cast<float>(weight_sum), 1.0f);
      loss = static_cast<float>(loss_sum) / denominator;
      break;
    case GrpoAggregation::kSeqMeanTokenMean:
      // A row without tokens is left out of the count; with no rows at all the loss is 0.
      denominator = fmaxf(static_cast<float>(nonempty_rows), 1.0f);
      loss = static_cast<float>(row_means) / denominator;
      break;
    case GrpoAggregation::kSeqMeanTokenSumNorm:
      denominator = sum_norm;
      loss = static_cast<float>(loss_sum) / denominator;
      break;
  }
  if (normaliser > 0.0f) {
    denominator = normaliser;
    loss = static_cast<float>(aggregation == GrpoAggregation::kSeqMeanTokenMean ? row_means
                                                                                : loss_sum) /
           denominator;
  }
  out.loss[0] = loss;
  out.denominator[0] = denominator;
  const double token_count = fmax(1.0, weight_sum);
  out.stats[0] = stats[0] / token_count;
  out.stats[1] = stats[1] / token_count;
  out.stats[2] = stats[2] / token_count;
  out.stats[3] = stats[3];
}

__global__ void __launch_bounds__(kThreads)
    backward_kernel(GrpoLossInputs in, Region trust, float beta, GrpoAggregation aggregation,
                    const float* __restrict__ row_weight, const float* __restrict__ denominator,
                    const float* __restrict__ grad_loss, float* __restrict__ grad_logp) {
  const int64_t row = blockIdx.x;
  const float a = in.advantages[row];
  float scale = grad_loss[0] / denominator[0];
  if (aggregation == GrpoAggregation::kSeqMeanTokenMean) scale /= fmaxf(row_weight[row], 1.0f);
  for (int64_t t = threadIdx.x; t < in.tokens; t += kThreads) {
    const int64_t i = row * in.tokens + t;
    const float w = in.weight[i];
    float d = 0.0f;
    if (w != 0.0f) {
      const float logp = in.logp[i];
      const float ratio = expf(logp - in.old_logp[i]);
      const float clipped = fminf(fmaxf(ratio, trust.low), trust.high);
      // d rho / d logp = rho; the min passes the gradient to the unclipped branch unless the
      // clipped one is strictly smaller, where the clamp's gradient is 0.
      if (ratio * a <= clipped * a) d = -a * ratio;
      if (beta > 0.0f) d += beta * (1.0f - expf(in.ref_logp[i] - logp));
      d *= w * scale;
    }
    grad_logp[i] = d;
  }
}

bool valid(const GrpoLossInputs& in, const GrpoLossConfig& config) {
  if (in.rows < 0 || in.rows > INT_MAX || in.tokens < 0) return false;
  if (config.beta < 0.0 || config.epsilon_low < 0.0 || config.epsilon_high < 0.0) return false;
  return config.beta == 0.0 || in.ref_logp != nullptr;
}

float sum_norm(const GrpoLossInputs& in, const GrpoLossConfig& config) {
  const int64_t length = config.length > 0 ? config.length : in.tokens;
  const int64_t norm = in.rows * length;
  return static_cast<float>(static_cast<double>(norm < 1 ? 1 : norm));
}

}  // namespace

cudaError_t grpo_loss_forward(const GrpoLossInputs& in, const GrpoLossConfig& config,
                              const GrpoLossOutputs& out, cudaStream_t stream) {
  if (!valid(in, config)) return cudaErrorInvalidValue;
  const float beta = static_cast<float>(config.beta);
  if (in.rows > 0) {
    per_token_kernel<<<static_cast<unsigned>(in.rows), kThreads, 0, stream>>>(in, region(config),
                                                                              beta, out);
  }
  aggregate_kernel<<<1, kThreads, 0, stream>>>(in.rows, config.aggregation, sum_norm(in, config),
                                               static_cast<float>(config.normaliser), out);
  return cudaGetLastError();
}

cudaError_t grpo_loss_backward(const GrpoLossInputs& in, const GrpoLossConfig& config,
                               const float* row_weight, const float* denominator,
                               const float* grad_loss, float* grad_logp, cudaStream_t stream) {
  if (!valid(in, config)) return cudaErrorInvalidValue;
  if (in.rows == 0) return cudaSuccess;
  backward_kernel<<<static_cast<unsigned>(in.rows), kThreads, 0, stream>>>(
      in, region(config), static_cast<float>(config.beta), config.aggregation, row_weight,
      denominator, grad_loss, grad_logp);
  return cudaGetLastError();
}

}  // namespace corl::kernels
