#include "corl/grpo/advantages.h"

namespace corl::grpo {
namespace {
constexpr double kEps = 1e-4;  // TRL's and the paper's code's

// [N / G] bool: groups whose advantages [N] are all 0. A group without reward spread gets exactly
// 0; the bound only absorbs float32 rounding where two tasks' advantages cancel.
torch::Tensor zero_advantage_groups(const torch::Tensor& a, int64_t G) {
  constexpr double kZero = 1e-6;
  return a.abs().reshape({-1, G}).amax(1).le(kZero);
}
}  // namespace

torch::Tensor task_reward(const std::vector<torch::Tensor>& rewards,
                          const std::vector<double>& weights, const AdvantageSettings& s) {
  TORCH_CHECK(!rewards.empty() && rewards.size() == weights.size(),
              "task_reward: one weight per reward");
  torch::Tensor sum = torch::zeros_like(rewards[0], torch::kFloat64);
  for (size_t k = 0; k < rewards.size(); ++k) {
    torch::Tensor r = rewards[k].to(torch::kFloat64);
    if (s.aggregation == RewardAggregation::kNormalizeThenSum) {
      // GDPO: each reward normalised within its group before the weighted sum.
      r = ops::group_advantages(r, s.group_size, ops::RewardScale::kGroup, kEps)
              .to(torch::kFloat64);
    }
    sum += weights[k] * r;
  }
  return sum;
}

torch::Tensor reward_advantages(const torch::Tensor& reward, const AdvantageSettings& s) {
  if (s.aggregation == RewardAggregation::kSumThenNormalize) {
    return ops::group_advantages(reward, s.group_size, s.scale, kEps);
  }
  const torch::Tensor r = reward.to(torch::kFloat64);
  const double std = r.numel() > 1 ? r.std().item<double>() : 0.0;
  return ((r - r.mean()) / (std + kEps)).to(torch::kFloat32);
}

StepAdvantages task_advantages(const torch::Tensor& rewards, bool images,
                               const AdvantageSettings& s) {
  StepAdvantages out;
  (images ? out.images : out.answers) = reward_advantages(rewards, s);
  out.no_signal = ops::zero_spread_groups(rewards, s.group_size);
  return out;
}

StepAdvantages unified_advantages(const torch::Tensor& r_t2i, const torch::Tensor& r_mm2t,
                                  UnifiedAdvantage mode, const AdvantageSettings& s) {
  StepAdvantages out;
  const int64_t G = s.group_size;
  if (mode == UnifiedAdvantage::kSharedReward) {
    const torch::Tensor r = r_t2i.to(torch::kFloat64) + s.lambda * r_mm2t.to(torch::kFloat64);
    out.images = reward_advantages(r, s);
    out.answers = out.images;
    out.no_signal = ops::zero_spread_groups(r, G);
    return out;
  }
  const torch::Tensor a_t2i = reward_advantages(r_t2i, s);
  const torch::Tensor a_mm2t = s.lambda * reward_advantages(r_mm2t, s);
  if (mode == UnifiedAdvantage::kSharedAdvantage) {
    out.images = a_t2i + a_mm2t;
    out.answers = out.images;
  } else {
    out.images = a_t2i;
    out.answers = a_mm2t;
  }
  // No signal when every advantage the group contributes is 0, not when they merely have no
  // spread: +-c (binary rewards split half and half, any group of two) is all signal. Both tasks
  // may vary and still give nothing: A_t2i + A_mm2t cancels for mirrored rewards at lambda 1,
  // and lambda 0 silences the answers.
  const auto t2i_silent = ops::zero_spread_groups(r_t2i, G);
  const auto mm2t_silent = ops::zero_spread_groups(r_mm2t, G);
  if (mode == UnifiedAdvantage::kSharedAdvantage) {
    out.no_signal = (t2i_silent & mm2t_silent) | zero_advantage_groups(out.images, G);
  } else {
    out.no_signal = (t2i_silent | zero_advantage_groups(out.images, G)) &
                    (mm2t_silent | zero_advantage_groups(out.answers, G));
  }
  return out;
}

}  // namespace corl::grpo
