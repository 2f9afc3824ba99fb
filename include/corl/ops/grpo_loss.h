// The GRPO objective, per token t of rollout i:
//
//   ratio  rho = exp(logp - old_logp)
//   loss   -min(rho * A_i, clip(rho, 1 - eps_low, 1 + eps_high) * A_i) + beta * KL
//   KL     exp(ref - logp) - (ref - logp) - 1     (k3 estimator, Schulman 2020; only if beta > 0)
//
// and three ways to reduce the per-token losses to one number. Two options change the ratio and
// the policy term as TRL's GRPOTrainer does:
//
//   sequence_level  rho_i = exp(sum_t m_it (logp - old_logp) / max(1, sum_t m_it)), one ratio per
//                   rollout broadcast over its tokens (GSPO; importance_sampling_level "sequence")
//   policy_weight   w_it multiplies the clipped surrogate, not the KL: the entropy mask
//                   (top_entropy_quantile) times the sampler/trainer correction
//
// The fused CUDA kernel computes neither: with either option a CUDA call takes the reference path.
#pragma once

#include <torch/torch.h>

namespace corl::ops {

enum class Aggregation {
  kTokenMean,           // sum over all tokens / number of tokens (DAPO; TRL loss_type "dapo")
  kSeqMeanTokenMean,    // mean over rollouts of each one's token mean (GRPO; "grpo")
  kSeqMeanTokenSumNorm  // mean over rollouts of token sum / max_completion_length (Dr.GRPO)
};

struct GrpoLossOptions {
  double epsilon_low = 0.2;
  double epsilon_high = 0.2;
  double beta = 0.0;
  Aggregation aggregation = Aggregation::kSeqMeanTokenMean;
  // Dr.GRPO's constant normaliser; 0 uses the mask's width T.
  int64_t max_completion_length = 0;
  // > 0: divide by this instead of the batch's own count. A GRPO step spreads its loss over
  // micro-batches and ranks; each share divides by the whole step's count (grpo/loss.h), so that
  // the shares' losses and gradients sum to the step's.
  double normaliser = 0.0;
  // GSPO's sequence-level ratio (TRL importance_sampling_level "sequence").
  bool sequence_level = false;
  // [B, T] or [B, 1], detached weights of the policy term; undefined: 1 everywhere.
  torch::Tensor policy_weight;
};

struct GrpoLoss {
  torch::Tensor loss;            // scalar, differentiable in logp
  torch::Tensor per_token;       // [B, T] per-token loss, 0 where masked (detached)
  double kl = 0.0;               // mean k3 KL over masked tokens (0 when beta == 0)
  double clip_fraction = 0.0;    // share of masked tokens whose ratio was clipped in the gradient
  double clip_low = 0.0;         // ... clipped below (rho < 1 - eps_low, A < 0)
  double clip_high = 0.0;        // ... clipped above (rho > 1 + eps_high, A > 0)
  int64_t tokens = 0;            // masked tokens
  torch::Tensor sequence_ratio;  // [B] rho_i under sequence_level (detached), else undefined
};

// logp, old_logp, ref_logp, mask: [B, T]; advantages [B]. ref_logp may be undefined when
// beta == 0. Rows with no masked token contribute nothing.
GrpoLoss grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                   const torch::Tensor& ref_logp, const torch::Tensor& advantages,
                   const torch::Tensor& mask, const GrpoLossOptions& options);

}  // namespace corl::ops
