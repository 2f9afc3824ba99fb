#include "corl/grpo/update.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "corl/grpo/dump.h"  // defines: tensor_json
#include "corl/grpo/metrics.h"
#include "corl/ops/grpo_loss.h"

namespace corl::grpo {
namespace {

// One task's rollouts in one micro-batch, as the loss reads them.
struct TaskPart {
  std::string task;                   // "t2i" or "mm2t"
  torch::Tensor logp, mask, entropy;  // the current policy's, [R, T]
  torch::Tensor old_logp, ref_logp;   // [R, T]; ref only when beta > 0
  torch::Tensor advantages;           // [R]
  torch::Tensor policy_weight;        // [R, T] (StepBatch::weight_*), or undefined
  double divisor = 1.0;               // grpo/loss.h
};

// The clipped surrogate (+ beta k3 KL) of one task's part: the same for images and answers.
ops::GrpoLoss task_loss(const TaskPart& part, const GrpoRecipe& recipe) {
  ops::GrpoLossOptions options;
  options.epsilon_low = recipe.grpo.epsilon;
  options.epsilon_high = epsilon_high_of(recipe);
  options.beta = recipe.grpo.beta;
  options.aggregation = numerator_of(loss_type_of(recipe));
  options.normaliser = part.divisor;
  options.sequence_level = recipe.grpo.importance_sampling_level == "sequence";
  options.policy_weight = part.policy_weight;
  return ops::grpo_loss(part.logp, part.old_logp, part.ref_logp, part.advantages, part.mask,
                        options);
}

void record(const TaskPart& part, const ops::GrpoLoss& l, MetricSums& sums) {
  const double tokens = static_cast<double>(l.tokens);
  sums.total("loss_" + part.task, l.loss.item<double>());
  sums.mean("clip_fraction_" + part.task, l.clip_fraction * tokens, tokens);
  if (part.ref_logp.defined()) sums.mean("kl_" + part.task, l.kl * tokens, tokens);
  if (l.sequence_ratio.defined()) {
    // Over the rollouts with tokens in the loss: the spread of GSPO's ratio (mean and square).
    const auto has = part.mask.sum(1).gt(0);
    const auto s = l.sequence_ratio.masked_select(has).to(torch::kFloat64);
    const double n = static_cast<double>(s.numel());
    sums.mean("sequence_ratio_" + part.task, s.sum().item<double>(), n);
    sums.mean("sequence_ratio_sq_" + part.task, s.pow(2).sum().item<double>(), n);
  }
  if (part.entropy.defined()) {
    sums.mean("entropy_" + part.task, (part.entropy * part.mask).sum().item<double>(),
              part.mask.sum().item<double>());
  }
}

nlohmann::json part_dump(const TaskPart& part, const std::vector<int64_t>& rollouts,
                         const ops::GrpoLoss& l) {
  nlohmann::json d = {{"rollouts", rollouts},
                      {"logp", tensor_json(part.logp)},
                      {"old_logp", tensor_json(part.old_logp)},
                      {"mask", tensor_json(part.mask)},
                      {"advantages", tensor_json(part.advantages)},
                      {"divisor", part.divisor},
                      {"loss", l.loss.item<double>()}};
  if (part.ref_logp.defined()) d["ref_logp"] = tensor_json(part.ref_logp);
  if (part.policy_weight.defined()) d["policy_weight"] = tensor_json(part.policy_weight);
  return d;
}

// What the policy weights were made from, for recomputing them (tests/grpo_dump_check.py): the
// batch's rows of the micro-batch, at the part's width.
void dump_weight_sources(nlohmann::json& d, const torch::Tensor& index, int64_t width,
                         const torch::Tensor& sampler_logp, const torch::Tensor& entropy) {
  const auto rows = [&](const torch::Tensor& t) {
    return tensor_json(t.index_select(0, index.to(t.device())).narrow(1, 0, width));
  };
  if (sampler_logp.defined()) d["sampler_logp"] = rows(sampler_logp);
  if (entropy.defined()) d["old_entropy"] = rows(entropy);
}

// One task's counts that the loss of update window `window` divides by (grpo/loss.h): those of
// the update's own micro-batches, but under dapo every micro-batch of the generation batch, each
// scaled by gradient_accumulation_steps / steps_per_generation: TRL divides by the generation
// batch's tokens (num_items_in_batch) scaled so to one update. The two agree when the
// generation batch is one update's.
std::vector<TokenCounts> counts_of(const GrpoRecipe& recipe, const StepBatch& batch,
                                   size_t window, bool images) {
  std::vector<TokenCounts> out;
  const auto of = [&](size_t m) { return images ? batch.micro[m].images : batch.micro[m].answers; };
  if (loss_type_of(recipe) == LossType::kDapo) {
    const double share = 1.0 / updates_per_pass(recipe);
    for (size_t m = 0; m < batch.micro.size(); ++m) {
      out.push_back({of(m).rollouts * share, of(m).tokens * share});
    }
    return out;
  }
  for (size_t m = batch.windows[window].first; m < batch.windows[window].second; ++m) {
    out.push_back(of(m));
  }
  return out;
}

}  // namespace

UpdateResult accumulate_gradients(StageInputs& in, const GrpoRecipe& recipe, const StepBatch& batch,
                                  size_t window, bool entropy, dist::ProcessGroup& group,
                                  nlohmann::json* dump) {
  const auto& g = recipe.grpo;
  auto& model = in.policy.model;
  model->train();
  const LossType type = loss_type_of(recipe);
  const bool images = makes_images(recipe);
  const bool answers = makes_answers(recipe);
  const double answer_weight = images ? g.mm2t_loss_weight : 1.0;
  const auto image_counts = counts_of(recipe, batch, window, true);
  const auto answer_counts = counts_of(recipe, batch, window, false);
  const int64_t image_tokens = model->config.image_tokens;
  const auto answer_kept = [&](int64_t i) {
    return !batch.answer_kept.defined() || batch.answer_kept[i].item<float>() > 0.0f;
  };

  // Every rank names every figure, whether or not it holds rollouts of its own.
  MetricSums sums;
  sums.total("loss", 0.0);
  sums.total("nonfinite", 0.0);
  for (const char* task : {"t2i", "mm2t"}) {
    if (std::string(task) == "t2i" ? !images : !answers) continue;
    sums.total(std::string("loss_") + task, 0.0);
    sums.mean(std::string("clip_fraction_") + task, 0.0, 0.0);
    if (g.beta > 0.0) sums.mean(std::string("kl_") + task, 0.0, 0.0);
    if (entropy) sums.mean(std::string("entropy_") + task, 0.0, 0.0);
    if (g.importance_sampling_level == "sequence") {
      sums.mean(std::string("sequence_ratio_") + task, 0.0, 0.0);
      sums.mean(std::string("sequence_ratio_sq_") + task, 0.0, 0.0);
    }
  }

  for (size_t m = batch.windows[window].first; m < batch.windows[window].second; ++m) {
    const MicroBatch& micro = batch.micro[m];
    if (micro.rollouts.empty()) continue;  // none of this micro-batch's groups is on this rank
    const auto index = torch::tensor(micro.rollouts, torch::kInt64);
    const auto on_device = index.to(in.device);
    torch::Tensor loss = torch::zeros({}, torch::TensorOptions().device(in.device));
    nlohmann::json micro_dump;
    // The log-probs whose gradient the dump records (d loss / d logp, TRL's check's figure).
    std::vector<std::pair<std::string, torch::Tensor>> dumped_logp;
    if (images) {
      std::vector<std::string> prompts;
      for (int64_t i : micro.rollouts) prompts.push_back(batch.images.prompts[i]);
      auto scores = rollout::score_images(model, *in.builder, prompts,
                                          batch.images.codes.index_select(0, index),
                                          rollout_options_of(recipe), {entropy, false});
      TaskPart part;
      part.task = "t2i";
      part.logp = scores.logp;
      part.mask = torch::ones_like(scores.logp);
      part.entropy = scores.entropy;
      part.old_logp = batch.old_images.defined() ? batch.old_images.index_select(0, on_device)
                                                 : scores.logp.detach();
      part.ref_logp = micro.ref_images;
      part.advantages =
          batch.advantages.images.index_select(0, index).to(in.device, torch::kFloat32);
      if (batch.weight_images.defined()) {
        part.policy_weight = batch.weight_images.index_select(0, index).to(in.device);
      }
      part.divisor = loss_divisor(type, image_counts, image_tokens, micro.local_images,
                                  group.world_size());
      const auto l = task_loss(part, recipe);
      loss = loss + l.loss;
      record(part, l, sums);
      if (dump) {
        if (part.logp.requires_grad()) part.logp.retain_grad();
        dumped_logp.emplace_back("t2i", part.logp);
        micro_dump["t2i"] = part_dump(part, micro.rollouts, l);
        dump_weight_sources(micro_dump["t2i"], index, part.logp.size(1), batch.images.sampler_logp,
                            batch.entropy_images);
      }
    }
    if (answers) {
      std::vector<model::Sequence> sequences;
      int64_t sampled = 0;
      for (int64_t i : micro.rollouts) {
        sequences.push_back(batch.answers.sequences[i]);
        if (answer_kept(i)) sampled += batch.answers.lengths[i];
      }
      auto scores = rollout::score_completions(model, *in.builder, sequences,
                                               answer_temperature_of(recipe),
                                               {entropy, false, g.share_prompts});
      TaskPart part;
      part.task = "mm2t";
      part.logp = scores.logp;
      // mask_truncated_completions: a truncated answer's tokens leave the loss (TRL, DAPO).
      part.mask = scores.mask;
      if (batch.answer_kept.defined()) {
        part.mask = part.mask * batch.answer_kept.index_select(0, index)
                                    .to(in.device, part.mask.scalar_type())
                                    .unsqueeze(1);
      }
      part.entropy = scores.entropy;
      // Old log-probs are stored at the whole batch's width; this micro-batch's may be narrower.
      part.old_logp =
          batch.old_answers.defined()
              ? batch.old_answers.index_select(0, on_device).narrow(1, 0, scores.logp.size(1))
              : scores.logp.detach();
      part.ref_logp = micro.ref_answers;
      part.advantages =
          batch.advantages.answers.index_select(0, index).to(in.device, torch::kFloat32);
      if (batch.weight_answers.defined()) {
        part.policy_weight = batch.weight_answers.index_select(0, index)
                                 .narrow(1, 0, scores.logp.size(1))
                                 .to(in.device);
      }
      part.divisor = loss_divisor(type, answer_counts, g.max_completion_length,
                                  micro.local_answers, group.world_size());
      const auto l = task_loss(part, recipe);
      // The step's token counts came from the sampled lengths; the mask must agree.
      TORCH_CHECK(l.tokens == sampled, "accumulate_gradients: ", l.tokens,
                  " answer tokens in the mask, ", sampled, " sampled");
      loss = loss + answer_weight * l.loss;
      record(part, l, sums);
      if (dump) {
        if (part.logp.requires_grad()) part.logp.retain_grad();
        dumped_logp.emplace_back("mm2t", part.logp);
        micro_dump["mm2t"] = part_dump(part, micro.rollouts, l);
        dump_weight_sources(micro_dump["mm2t"], index, part.logp.size(1),
                            batch.answers.sampler_logp, batch.entropy_answers);
      }
    }
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      sums.total("nonfinite", 1.0);
      break;
    }
    sums.total("loss", value);
    loss.backward();
    if (dump) {
      for (const auto& [task, logp] : dumped_logp) {
        if (logp.grad().defined()) micro_dump[task]["logp_grad"] = tensor_json(logp.grad());
      }
      micro_dump["loss"] = value;
      dump->push_back(micro_dump);
    }
  }

  UpdateResult result;
  result.stats = sums.reduce(group);
  result.finite = result.stats.at("nonfinite").get<double>() == 0.0;
  result.stats.erase("nonfinite");
  for (const char* task : {"t2i", "mm2t"}) {
    // GSPO's ratio as {mean, std} over the step's rollouts, from its [sum, count] and its square's.
    const std::string name = std::string("sequence_ratio_") + task;
    const std::string square = std::string("sequence_ratio_sq_") + task;
    if (!result.stats.contains(name)) continue;
    const double mean = result.stats.at(name).get<double>();
    const double variance = result.stats.at(square).get<double>() - mean * mean;
    result.stats[name] = {{"mean", mean}, {"std", std::sqrt(std::max(0.0, variance))}};
    result.stats.erase(square);
  }
  return result;
}

double clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm) {
  if (max_norm > 0.0) return torch::nn::utils::clip_grad_norm_(parameters, max_norm);
  auto squares = torch::zeros({}, torch::kDouble);
  for (const auto& p : parameters) {
    if (p.grad().defined()) squares += p.grad().to(torch::kDouble).pow(2).sum().cpu();
  }
  return std::sqrt(squares.item<double>());
}

}  // namespace corl::grpo
