#include "corl/grpo/loss.h"

#include <algorithm>

#include "corl/util/error.h"

namespace corl::grpo {

LossType loss_type_of(const std::string& name) {
  if (name == "grpo") return LossType::kGrpo;
  if (name == "bnpo") return LossType::kBnpo;
  if (name == "dr_grpo") return LossType::kDrGrpo;
  if (name == "dapo") return LossType::kDapo;
  throw RecipeError("grpo.loss_type: unknown '" + name + "' (grpo, bnpo, dr_grpo, dapo)");
}

double loss_divisor(LossType type, const std::vector<TokenCounts>& micro, int64_t length,
                    const TokenCounts& local, int ranks) {
  TokenCounts step;
  for (const auto& c : micro) {
    step.rollouts += c.rollouts;
    step.tokens += c.tokens;
  }
  double divisor = 1.0;
  switch (type) {
    case LossType::kGrpo:
      divisor = step.rollouts;
      break;
    case LossType::kDrGrpo:
      divisor = step.rollouts * static_cast<double>(length);
      break;
    case LossType::kDapo:
      divisor = step.tokens;
      break;
    case LossType::kBnpo:
      // The share's own token mean (clamped as TRL clamps it), averaged over micro-batches and
      // ranks.
      return std::max(local.tokens, 1.0) * static_cast<double>(micro.size()) * ranks;
  }
  // An empty step or micro-batch sums to 0 whatever it is divided by.
  return std::max(divisor, 1.0);
}

ops::Aggregation numerator_of(LossType type) {
  return type == LossType::kGrpo ? ops::Aggregation::kSeqMeanTokenMean
                                 : ops::Aggregation::kTokenMean;
}

}  // namespace corl::grpo
