// One policy update's forward and backward passes over a step's batch (TRL's _compute_loss):
// for each of this rank's micro-batches, the log-probs of its images and answers under the
// current policy, one clipped-surrogate loss per task (ops/grpo_loss.h) divided as the loss type
// divides the whole step (grpo/loss.h), loss = loss_t2i + mm2t_loss_weight x loss_mm2t, and its
// gradient accumulated in the policy's parameters. The optimizer step is the caller's.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "corl/dist/process_group.h"
#include "corl/grpo/batch.h"
#include "corl/grpo/recipe.h"

namespace corl::grpo {

struct UpdateResult {
  bool finite = true;    // every rank's loss was finite; otherwise no gradient was kept
  nlohmann::json stats;  // loss, loss_t2i, loss_mm2t (the step's), kl_*, clip_fraction_*,
                         // entropy_* (token means over the step; entropy when asked),
                         // sequence_ratio_* ({mean, std} over rollouts; GSPO only)
};

// Accumulates this rank's share of one update's loss gradient (parameters' .grad): the
// update's micro-batches are batch.windows[window], and the loss types divide by that update's
// rollouts and tokens (grpo/loss.h), as TRL divides by its accumulated batch. With `entropy` the
// policy's token entropies are measured too. `dump`, a JSON array when given, receives one
// entry per micro-batch: its log-probs, masks, advantages and losses (grpo/dump.h). Collective:
// every rank calls it.
UpdateResult accumulate_gradients(StageInputs& inputs, const GrpoRecipe& recipe,
                                  const StepBatch& batch, size_t window, bool entropy,
                                  dist::ProcessGroup& group, nlohmann::json* dump = nullptr);

// The gradient's global L2 norm, then clipped to max_norm when max_norm > 0. The norm is
// measured even without clipping, so that a finite loss with a non-finite gradient is caught
// before the optimizer step (the caller skips the update when the result is not finite).
double clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm);

}  // namespace corl::grpo
