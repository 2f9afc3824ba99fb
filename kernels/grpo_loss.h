// The GRPO objective fused per token, forward and backward. Per token t of rollout b, with
// weight w (the mask) and advantage A_b:
//
//   rho   = exp(logp - old_logp)                                 (log-ratio pinned to 0 where w ==
//   0) l     = -min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A) + beta * KL KL    = exp(ref
//   - logp) - (ref - logp) - 1                   (k3 estimator, Schulman 2020) per_token = w * l
//
// reduced as
//   token_mean               sum per_token / max(1, sum w)
//   seq_mean_token_mean      mean over rows with sum_t w > 0 of sum_t per_token / sum_t w
//   seq_mean_token_sum_norm  sum per_token / max(1, rows * length)
// or, with a normaliser n > 0, the same numerators over n.
//
// with the same statistics as the LibTorch reference path (corl/ops/grpo_loss.h). Raw float32
// device pointers, sizes and a stream; no LibTorch. Launchers do not synchronise.
#pragma once

#include <cuda_runtime_api.h>  // defines: cudaStream_t, cudaError_t

#include <cstdint>

namespace corl::kernels {

enum class GrpoAggregation { kTokenMean, kSeqMeanTokenMean, kSeqMeanTokenSumNorm };

struct GrpoLossConfig {
  double epsilon_low = 0.2;
  double epsilon_high = 0.2;
  double beta = 0.0;  // ref_logp is read only when beta > 0
  GrpoAggregation aggregation = GrpoAggregation::kSeqMeanTokenMean;
  int64_t length = 0;  // seq_mean_token_sum_norm's length; <= 0 uses `tokens`
  // > 0: the divisor instead of the batch's own count (each row's token mean still divides by
  // its weight under seq_mean_token_mean): a share of a larger batch divides by the whole's.
  double normaliser = 0.0;
};

// Inputs, all float32 and contiguous: logp, old_logp, ref_logp, weight [rows, tokens];
// advantages [rows].
struct GrpoLossInputs {
  const float* logp;
  const float* old_logp;
  const float* ref_logp;
  const float* advantages;
  const float* weight;
  int64_t rows;
  int64_t tokens;
};

// Outputs of the forward pass; the backward pass reads row_weight and denominator back.
struct GrpoLossOutputs {
  float* per_token;    // [rows, tokens] weighted per-token loss
  float* row_loss;     // [rows] sum over t of per_token
  float* row_weight;   // [rows] sum over t of w
  double* row_stats;   // [rows, 4] per row: sum w*KL, sum w*[clipped low], sum w*[clipped high],
                       // count of w != 0
  float* loss;         // [1] the aggregated loss
  float* denominator;  // [1] what the aggregation divides by (besides each row's weight)
  double* stats;       // [4] KL mean, clip-low share, clip-high share (over sum w), token count
};

cudaError_t grpo_loss_forward(const GrpoLossInputs& in, const GrpoLossConfig& config,
                              const GrpoLossOutputs& out, cudaStream_t stream);

// grad_loss: [1] the upstream gradient of the loss (on the device: no synchronisation).
// grad_logp: [rows, tokens] float32.
cudaError_t grpo_loss_backward(const GrpoLossInputs& in, const GrpoLossConfig& config,
                               const float* row_weight, const float* denominator,
                               const float* grad_loss, float* grad_logp, cudaStream_t stream);

}  // namespace corl::kernels
