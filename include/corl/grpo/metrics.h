// A GRPO step's metrics, computed once from the values of every rank (a world of one gathers
// its own), by name: the same figures whatever the number of ranks.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "corl/dist/process_group.h"
#include "corl/grpo/batch.h"
#include "corl/grpo/recipe.h"

namespace corl::grpo {

// Rewards (each by name, each task's sum, the unified reward), advantages, answer lengths,
// truncation and zero-spread groups of the whole step's batch, and the policy weights' figures
// (entropy mask, sampler/trainer correction: StepBatch::weight_metrics). Collective.
nlohmann::json batch_metrics(const StepBatch& batch, const GrpoRecipe& recipe,
                             dist::ProcessGroup& group);

// Figures kept as [sum, count] by name (TRL's way), reduced over ranks in one collective: a mean
// is sum / count over every rank's parts, a total the sum of the ranks' shares. Every rank must
// name the same figures, with or without parts of its own.
class MetricSums {
 public:
  void mean(const std::string& name, double sum, double count);
  void total(const std::string& name, double share);
  // name -> value over every rank; a mean with no count anywhere is left out. Collective.
  nlohmann::json reduce(dist::ProcessGroup& group) const;

 private:
  struct Entry {
    double sum = 0.0;
    double count = 0.0;
    bool is_total = false;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace corl::grpo
