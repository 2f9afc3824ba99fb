#include "corl/grpo/advantages.h"

namespace corl::grpo {

StepAdvantages task_advantages(const torch::Tensor& rewards, bool images,
                               const AdvantageSettings& s) {
  StepAdvantages out;
  (images ? out.images : out.answers) = ops::group_advantages(rewards, s.group_size, s.scale);
  out.no_signal = ops::zero_spread_groups(rewards, s.group_size);
  return out;
}

StepAdvantages unified_advantages(const torch::Tensor& r_t2i, const torch::Tensor& r_mm2t,
                                  UnifiedAdvantage mode, const AdvantageSettings& s) {
  StepAdvantages out;
  const int64_t G = s.group_size;
  if (mode == UnifiedAdvantage::kSharedReward) {
    const torch::Tensor r = r_t2i.to(torch::kFloat64) + s.lambda * r_mm2t.to(torch::kFloat64);
    out.images = ops::group_advantages(r, G, s.scale);
    out.answers = out.images;
    out.no_signal = ops::zero_spread_groups(r, G);
    return out;
  }
  const torch::Tensor a_t2i = ops::group_advantages(r_t2i, G, s.scale);
  const torch::Tensor a_mm2t = s.lambda * ops::group_advantages(r_mm2t, G, s.scale);
  if (mode == UnifiedAdvantage::kSharedAdvantage) {
    out.images = a_t2i + a_mm2t;
    out.answers = out.images;
  } else {
    out.images = a_t2i;
    out.answers = a_mm2t;
  }
  // Judged from the rewards, not the advantages: a group of +-c advantages (binary rewards split
  // half and half, any group of two) is all signal.
  out.no_signal = ops::zero_spread_groups(r_t2i, G) & ops::zero_spread_groups(r_mm2t, G);
  return out;
}

}  // namespace corl::grpo
