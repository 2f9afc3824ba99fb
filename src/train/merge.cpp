#include "corl/train/merge.h"

#include <cmath>

#include "corl/model/config.h"
#include "corl/train/checkpoint.h"
#include "corl/util/error.h"
#include "corl/util/log.h"

namespace corl::train {

void merge_checkpoints(const std::vector<std::string>& inputs, const std::vector<double>& weights,
                       const std::string& out) {
  if (inputs.empty()) throw UsageError("merge: no inputs");
  if (weights.size() != inputs.size()) throw UsageError("merge: one weight per input");
  torch::NoGradGuard no_grad;
  Policy merged = load_policy(inputs[0]);
  const std::string config = model::to_json(merged.model->config).dump();
  auto parameters = merged.model->named_parameters(true);
  for (auto& p : parameters) p.value().mul_(weights[0]);
  for (size_t k = 1; k < inputs.size(); ++k) {
    const Policy other = load_policy(inputs[k]);
    if (model::to_json(other.model->config).dump() != config) {
      throw DataError("merge: " + other.dir + " is a different architecture from " + merged.dir);
    }
    const auto theirs = other.model->named_parameters(true);
    for (auto& p : parameters) p.value().add_(theirs[p.key()], weights[k]);
  }
  double sum = 0.0;
  for (double w : weights) sum += w;
  if (std::abs(sum - 1.0) > 1e-6) {
    log::warn("merge: weights sum to " + std::to_string(sum) + ", not 1: the result is scaled");
  }
  save_checkpoint(out, merged.model, checkpoint_sources(merged),
                  {{"merged_from", inputs}, {"weights", weights}});
  log::info("merge: wrote " + out);
}

}  // namespace corl::train
