#include "corl/grpo/dump.h"

#include <filesystem>

#include "corl/util/fs.h"
#include "corl/util/log.h"
#include "corl/util/safetensors.h"

namespace corl::grpo {
nlohmann::json tensor_json(const torch::Tensor& t) {
  const auto values = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  if (values.dim() == 0) return values.item<double>();
  nlohmann::json out = nlohmann::json::array();
  for (int64_t i = 0; i < values.size(0); ++i) out.push_back(tensor_json(values[i]));
  return out;
}

void write_batch_dump(const std::string& dir, const GrpoRecipe& recipe, const StepBatch& batch,
                      const nlohmann::json& micro_batches) {
  const auto& g = recipe.grpo;
  nlohmann::json dump = {{"step", batch.step + 1},
                         {"task", recipe.task},
                         {"loss_type", g.loss_type},
                         {"epsilon", g.epsilon},
                         {"epsilon_high", epsilon_high_of(recipe)},
                         {"beta", g.beta},
                         {"max_completion_length", g.max_completion_length},
                         {"num_generations", g.num_generations},
                         {"scale_rewards", g.scale_rewards},
                         {"multi_objective_aggregation", g.multi_objective_aggregation},
                         {"reward_funcs", g.reward_funcs},
                         {"reward_weights", g.reward_weights},
                         {"importance_sampling_level", g.importance_sampling_level},
                         {"mask_truncated_completions", g.mask_truncated_completions},
                         {"top_entropy_quantile", g.top_entropy_quantile},
                         {"importance_sampling_correction", g.importance_sampling_correction},
                         {"importance_sampling_mode", g.importance_sampling_mode},
                         {"importance_sampling_cap", g.importance_sampling_cap},
                         {"unify_lambda", g.unify_lambda},
                         {"unify_reward", g.unify_reward},
                         {"unify_advantage", g.unify_advantage},
                         {"mm2t_loss_weight", g.mm2t_loss_weight},
                         {"gradient_accumulation_steps", recipe.optim.gradient_accumulation_steps},
                         {"kept_groups", tensor_json(batch.kept)},
                         {"micro_batches", micro_batches}};
  if (batch.r_t2i.defined()) dump["reward_t2i"] = tensor_json(batch.r_t2i);
  if (batch.r_mm2t.defined()) dump["reward_mm2t"] = tensor_json(batch.r_mm2t);
  for (const auto& [name, v] : batch.by_reward) dump["rewards"][name] = tensor_json(v);
  if (batch.advantages.images.defined())
    dump["advantages_t2i"] = tensor_json(batch.advantages.images);
  if (batch.advantages.answers.defined()) {
    dump["advantages_mm2t"] = tensor_json(batch.advantages.answers);
  }
  if (makes_answers(recipe)) {
    dump["completions"] = batch.answers.completions;
    dump["truncated"] = batch.answers.truncated;
    dump["lengths"] = batch.answers.lengths;
  }
  if (makes_images(recipe)) dump["prompts"] = batch.images.prompts;
  std::filesystem::create_directories(dir);
  util::write_file_atomic(dir + "/batch.json", dump.dump(1) + "\n");
  log::info(recipe.run.name + ": wrote step " + std::to_string(batch.step + 1) + "'s batch to " +
            dir + "/batch.json");
}

void write_gradient_dump(const std::string& dir, const torch::nn::Module& model) {
  util::NamedTensors grads;
  for (const auto& p : model.named_parameters()) {
    if (p.value().grad().defined()) grads.emplace_back(p.key(), p.value().grad());
  }
  std::filesystem::create_directories(dir);
  util::save_safetensors(dir + "/grad.safetensors", grads);
}

}  // namespace corl::grpo
