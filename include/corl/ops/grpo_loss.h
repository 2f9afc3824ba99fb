// The GRPO objective, per token t of rollout i:
//
//   ratio  rho = exp(logp - old_logp)
//   loss   -min(rho * A_i, clip(rho, 1 - eps_low, 1 + eps_high) * A_i) + beta * KL
//   KL     exp(ref - logp) - (ref - logp) - 1     (k3 estimator, Schulman 2020; only if beta > 0)
//
// and three ways to reduce the per-token losses to one number.
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
};

struct GrpoLoss {
  torch::Tensor loss;          // scalar, differentiable in logp
  torch::Tensor per_token;     // [B, T] per-token loss, 0 where masked (detached)
  double kl = 0.0;             // mean k3 KL over masked tokens (0 when beta == 0)
  double clip_fraction = 0.0;  // share of masked tokens whose ratio was clipped in the gradient
  double clip_low = 0.0;       // ... clipped below (rho < 1 - eps_low, A < 0)
  double clip_high = 0.0;      // ... clipped above (rho > 1 + eps_high, A > 0)
  int64_t tokens = 0;          // masked tokens
};

// logp, old_logp, ref_logp, mask: [B, T]; advantages [B]. ref_logp may be undefined when
// beta == 0. Rows with no masked token contribute nothing.
GrpoLoss grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp,
                   const torch::Tensor& ref_logp, const torch::Tensor& advantages,
                   const torch::Tensor& mask, const GrpoLossOptions& options);

}  // namespace corl::ops
