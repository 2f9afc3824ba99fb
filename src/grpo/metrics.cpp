#include "corl/grpo/metrics.h"

#include <vector>

namespace corl::grpo {
namespace {

// Every rank's values as one flat float64 tensor; their order does not matter below.
torch::Tensor gather(dist::ProcessGroup& group, const torch::Tensor& values) {
  return group.all_gather(values.to(torch::kDouble).contiguous()).reshape(-1);
}

nlohmann::json mean_std(const torch::Tensor& v) {
  return {{"mean", v.mean().item<double>()}, {"std", v.numel() > 1 ? v.std().item<double>() : 0.0}};
}

nlohmann::json advantage_stats(const torch::Tensor& a) {
  return {{"mean", a.mean().item<double>()},
          {"std", a.numel() > 1 ? a.std().item<double>() : 0.0},
          {"abs_mean", a.abs().mean().item<double>()},
          {"max", a.max().item<double>()},
          {"min", a.min().item<double>()}};
}

}  // namespace

nlohmann::json batch_metrics(const StepBatch& batch, const GrpoRecipe& recipe,
                             dist::ProcessGroup& group) {
  nlohmann::json m;
  for (const auto& [name, values] : batch.by_reward) {
    m["reward/" + name] = mean_std(gather(group, values));
  }
  for (const auto& [name, values] : batch.sub_scores) {
    m["reward/" + name] = mean_std(gather(group, values));
  }
  torch::Tensor r_t2i, r_mm2t;
  if (batch.r_t2i.defined()) m["reward_t2i"] = mean_std(r_t2i = gather(group, batch.r_t2i));
  if (batch.r_mm2t.defined()) m["reward_mm2t"] = mean_std(r_mm2t = gather(group, batch.r_mm2t));
  const bool unified = task_of(recipe) == Task::kUnified;
  if (unified && unified_advantage_of(recipe) == UnifiedAdvantage::kSharedReward) {
    m["reward_unified"] = mean_std(r_t2i + recipe.grpo.unify_lambda * r_mm2t);
  }
  if (makes_answers(recipe)) {
    const auto& an = batch.answers;
    const auto lengths = gather(group, torch::tensor(an.lengths, torch::kDouble));
    m["completion_length"] = {{"mean", lengths.mean().item<double>()},
                              {"max", lengths.max().item<double>()},
                              {"min", lengths.min().item<double>()}};
    const std::vector<double> truncated(an.truncated.begin(), an.truncated.end());
    m["completion_truncated"] =
        gather(group, torch::tensor(truncated, torch::kDouble)).mean().item<double>();
    if (!an.completions.empty()) m["sample_completion"] = an.completions[0];
  }
  if (!batch.sample_caption.empty()) m["sample_caption"] = batch.sample_caption;
  m["zero_spread_fraction"] = gather(group, batch.advantages.no_signal).mean().item<double>();
  // Images' advantages when the task makes images, else the answers'; the answers' own as
  // advantage_mm2t when they differ from the images'.
  const auto& a = batch.advantages;
  m["advantage"] = advantage_stats(gather(group, a.images.defined() ? a.images : a.answers));
  if (a.images.defined() && a.answers.defined() && !a.images.is_same(a.answers)) {
    m["advantage_mm2t"] = advantage_stats(gather(group, a.answers));
  }
  m["groups_kept"] = batch.kept_groups;
  // The entropy mask's kept share and the sampler/trainer correction's figures (grpo/batch.cpp).
  for (const auto& [name, value] : batch.weight_metrics.items()) {
    if (!value.is_null()) m[name] = value;
  }
  return m;
}

void MetricSums::mean(const std::string& name, double sum, double count) {
  auto& e = entries_[name];
  e.sum += sum;
  e.count += count;
}

void MetricSums::total(const std::string& name, double share) {
  auto& e = entries_[name];
  e.sum += share;
  e.is_total = true;
}

nlohmann::json MetricSums::reduce(dist::ProcessGroup& group) const {
  auto flat = torch::zeros({static_cast<int64_t>(2 * entries_.size())}, torch::kDouble);
  int64_t k = 0;
  for (const auto& [name, e] : entries_) {
    flat[k++] = e.sum;
    flat[k++] = e.count;
  }
  std::vector<torch::Tensor> sums{flat};
  group.all_reduce_sum(sums);
  const auto v = sums[0].accessor<double, 1>();
  nlohmann::json out = nlohmann::json::object();
  k = 0;
  for (const auto& [name, e] : entries_) {
    const double sum = v[k++];
    const double count = v[k++];
    if (e.is_total) {
      out[name] = sum;
    } else if (count > 0.0) {
      out[name] = sum / count;
    }
  }
  return out;
}

}  // namespace corl::grpo
