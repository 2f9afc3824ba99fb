// The GRPO loss of one step, as TRL's GRPOTrainer weighs it (GRPOConfig.loss_type), and the one
// rule that spreads it over gradient accumulation and data-parallel ranks.
//
// With l_it the per-token loss of rollout i (ops/grpo_loss.h: clipped surrogate + beta k3 KL)
// and m_it its completion mask, over the step's N rollouts and T = sum m tokens (every
// micro-batch of every rank; TRL's num_items_in_batch):
//
//   grpo     sum_i (sum_t l_it m_it / max(1, sum_t m_it)) / N        (original GRPO)
//   dr_grpo  sum_it l_it m_it / (N x max_completion_length)          (Dr.GRPO)
//   dapo     sum_it l_it m_it / T                                    (DAPO, TRL's default)
//   bnpo     mean over the M micro-batches of sum_it l_it m_it / T_m (T_m: micro-batch m's tokens)
//
// Each rank's share of micro-batch m divides its own sum by the divisor below, so the shares'
// losses and gradients add up, over micro-batches and ranks, to the step's. Images are
// completions of image_tokens codes, every one in the mask.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "corl/ops/grpo_loss.h"

namespace corl::grpo {

enum class LossType { kGrpo, kBnpo, kDrGrpo, kDapo };
LossType loss_type_of(const std::string& name);  // "grpo", "bnpo", "dr_grpo", "dapo"

// Rollouts and masked tokens of one task in one micro-batch, counted over every rank.
struct TokenCounts {
  double rollouts = 0.0;
  double tokens = 0.0;
};

// What micro-batch m's summed per-token losses (per-rollout token means under grpo) are divided
// by, given every micro-batch's counts of the step; `length` is Dr.GRPO's constant (the
// completion budget, image_tokens for images).
double loss_divisor(LossType type, const std::vector<TokenCounts>& micro, size_t m, int64_t length);

// The numerator each type sums: token means per rollout (grpo), else tokens.
ops::Aggregation numerator_of(LossType type);

}  // namespace corl::grpo
