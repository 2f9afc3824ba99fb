// The GRPO loss of one step (GRPOConfig.loss_type's names) and the one rule that spreads it over
// gradient accumulation and data-parallel ranks.
//
// With l_it the per-token loss of rollout i (ops/grpo_loss.h: clipped surrogate + beta k3 KL)
// and m_it its completion mask, over the step's N rollouts and T = sum m tokens (every
// micro-batch of every rank; TRL's num_items_in_batch), W ranks and M micro-batches:
//
//   grpo     sum_i (sum_t l_it m_it / max(1, sum_t m_it)) / N        (original GRPO)
//   dr_grpo  sum_it l_it m_it / (N x max_completion_length)          (Dr.GRPO)
//   dapo     sum_it l_it m_it / T                                    (DAPO, TRL's default)
//   bnpo     mean over micro-batches m and ranks r of sum_it l_it m_it / T_mr, over the
//            rollouts of rank r's share of m (T_mr: that share's tokens)
//
// dapo and bnpo are TRL's GRPOTrainer's (bnpo: "normalization is performed over the local batch
// only", each rank's token mean, averaged over ranks by DDP and over the accumulation steps).
// grpo and dr_grpo are corl's rule, not TRL's: TRL takes each micro-batch's mean over its rows
// and divides it by the accumulation steps, which weighs a rollout by 1 / (M x rows of its
// micro-batch); corl weighs every rollout of the step 1 / N, so the step's loss and gradient do
// not depend on how it is cut. The two agree when every micro-batch of every rank holds as many
// rollouts, which is how TRL always cuts (tests/grpo_loss_test.cpp).
//
// Each rank's share of micro-batch m divides its own sum by the divisor below, so the shares'
// losses and gradients add up, over micro-batches and ranks, to the step's. A step here is one
// optimizer update: where a generation batch is trained in several (steps_per_generation above
// gradient_accumulation_steps), each update's own micro-batches, but for dapo, whose T TRL takes
// as the generation batch's tokens x gradient_accumulation_steps / steps_per_generation
// (grpo/update.cpp). Images are
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

// What this rank's share of a micro-batch divides its summed per-token losses (per-rollout token
// means under grpo) by, given every micro-batch's counts of the step over all ranks (`micro`),
// the share's own counts (`local`, which bnpo reads) and the number of ranks; `length` is
// Dr.GRPO's constant (the completion budget, image_tokens for images).
double loss_divisor(LossType type, const std::vector<TokenCounts>& micro, int64_t length,
                    const TokenCounts& local, int ranks);

// The numerator each type sums: token means per rollout (grpo), else tokens.
ops::Aggregation numerator_of(LossType type);

}  // namespace corl::grpo
