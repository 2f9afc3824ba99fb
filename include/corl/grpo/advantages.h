// Group-relative advantages of a GRPO step, as pure functions of its rewards (DESIGN section 4;
// verl's compute_grpo_outcome_advantage is the model): which advantage pushes image i and which
// pushes answer i, and which groups carry no signal.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "corl/ops/group_advantages.h"

namespace corl::grpo {

// How the unified stage turns its two tasks' rewards into advantages. Image i and answer i come
// from the same unified sample of a group.
enum class UnifiedAdvantage {
  kSharedReward,     // r = r_t2i + lambda r_mm2t; one group advantage for image i and answer i
  kSharedAdvantage,  // A = A_t2i + lambda A_mm2t; shared likewise
  kPerTask,          // image i takes A_t2i, answer i lambda A_mm2t
};

// How one task's rewards become the reward its advantages are formed from (TRL's
// multi_objective_aggregation).
enum class RewardAggregation {
  // r = sum_k w_k r_k; A = (r - mean_g r) / (std r + eps), std as `scale` says
  kSumThenNormalize,
  // r = sum_k w_k (r_k - mean_g r_k) / (std_g r_k + eps); A = (r - mean r) / (std r + eps),
  // mean and std over the whole step (GDPO), whatever `scale` says
  kNormalizeThenSum,
};

struct AdvantageSettings {
  int64_t group_size = 8;  // G
  ops::RewardScale scale = ops::RewardScale::kGroup;
  double lambda = 0.8;  // the understanding task's weight (unified stage)
  RewardAggregation aggregation = RewardAggregation::kSumThenNormalize;
};

// One task's reward from its rewards by name ([N] each, the whole step's) and their weights.
torch::Tensor task_reward(const std::vector<torch::Tensor>& rewards,
                          const std::vector<double>& weights, const AdvantageSettings& settings);

// The advantages of one reward [N] (the whole step's: kBatch and kNormalizeThenSum read the
// step's spread), float32.
torch::Tensor reward_advantages(const torch::Tensor& reward, const AdvantageSettings& settings);

struct StepAdvantages {
  torch::Tensor images;     // [N] float32: image i's advantage; undefined without images
  torch::Tensor answers;    // [N] float32: answer i's advantage; undefined without answers
  torch::Tensor no_signal;  // [N / G] bool: groups whose rewards cannot rank their rollouts
};

// A refined stage: one task's rewards [N], consecutive groups of G.
StepAdvantages task_advantages(const torch::Tensor& rewards, bool images,
                               const AdvantageSettings& settings);

// The unified stage: r_t2i[i] and r_mm2t[i] score image i and answer i. A group has no signal
// when every advantage it contributes is 0: under kSharedReward when the combined reward has
// zero spread; otherwise when both tasks' rewards have, or when the advantages it trains on
// vanish all the same (A_t2i + lambda A_mm2t cancelling, lambda A_mm2t at lambda 0).
StepAdvantages unified_advantages(const torch::Tensor& r_t2i, const torch::Tensor& r_mm2t,
                                  UnifiedAdvantage mode, const AdvantageSettings& settings);

}  // namespace corl::grpo
