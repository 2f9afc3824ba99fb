#include "corl/grpo/stage.h"

#include <ATen/autocast_mode.h>  // defines: at::autocast::set_autocast_enabled, ..._dtype

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <random>

#include "corl/data/dataset.h"
#include "corl/dist/data_parallel.h"
#include "corl/dist/process_group.h"
#include "corl/ops/group_advantages.h"
#include "corl/ops/grpo_loss.h"
#include "corl/rollout/rollout.h"
#include "corl/train/checkpoint.h"
#include "corl/train/evaluate.h"
#include "corl/train/optimizer.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"

namespace corl::grpo {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct NamedImageReward {
  std::string name;
  double weight;
  std::unique_ptr<reward::ImageReward> reward;
};
struct NamedAnswerReward {
  std::string name;
  double weight;
  std::unique_ptr<reward::AnswerReward> reward;
};

// bf16 autocast of CUDA ops for the object's lifetime (LibTorch's C++ API has no such guard).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool on) : on_(on) {
    if (!on_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    was_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
  }
  ~CudaAutocast() {
    if (!on_) return;
    at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, was_dtype_);
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};

// What one step rolled out, scored and will train on.
struct StepBatch {
  std::vector<int> rows;  // dataset rows of the step's samples
  rollout::ImageRollouts images;
  rollout::AnswerRollouts answers;
  torch::Tensor r_t2i, r_mm2t;  // [P * G] float64 weighted sums, when the task has them
  std::map<std::string, torch::Tensor> by_reward;
  torch::Tensor advantages;          // [P * G] shared by image i and answer i (or one task's)
  torch::Tensor advantages_mm2t;     // [P * G] answer i's own, when the tasks share none
  torch::Tensor kept_groups;         // [P] bool
  torch::Tensor zero_spread;         // [P] bool: groups whose rewards have no spread
  std::vector<int64_t> global_kept;  // data parallel: kept flags of the global batch's groups
  std::vector<torch::Tensor> image_hidden, text_hidden;
  torch::Tensor old_t2i;  // [P * G, image_tokens] when needed
  torch::Tensor old_mm2t, mask_mm2t;
  // The frozen reference's log-probs, per micro-batch: computed in the first policy update and
  // reused by the other num_iterations - 1 (the micro-batches are the same in each).
  std::vector<torch::Tensor> ref_t2i, ref_mm2t;
};

nlohmann::json tensor_json(const torch::Tensor& t) {
  const auto values = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  if (values.dim() == 0) return values.item<double>();
  nlohmann::json out = nlohmann::json::array();
  for (int64_t i = 0; i < values.size(0); ++i) out.push_back(tensor_json(values[i]));
  return out;
}

nlohmann::json mean_std(const torch::Tensor& values) {
  const auto v = values.to(torch::kDouble);
  return {{"mean", v.mean().item<double>()}, {"std", v.numel() > 1 ? v.std().item<double>() : 0.0}};
}

nlohmann::json advantage_stats(const torch::Tensor& advantages) {
  const auto a = advantages.to(torch::kDouble);
  return {{"mean", a.mean().item<double>()},
          {"std", a.numel() > 1 ? a.std().item<double>() : 0.0},
          {"abs_mean", a.abs().mean().item<double>()},
          {"max", a.max().item<double>()},
          {"min", a.min().item<double>()}};
}

nlohmann::json length_stats(const torch::Tensor& lengths) {
  return {{"mean", lengths.mean().item<double>()},
          {"max", lengths.max().item<double>()},
          {"min", lengths.min().item<double>()}};
}

class Stage {
 public:
  Stage(const GrpoRecipe& recipe, util::RunDir& run, const StageOptions& options)
      : recipe_(recipe), run_(run), options_(options), task_(task_of(recipe)) {}

  void run();

 private:
  void load();
  std::vector<int> draw_rows(int step) const;
  StepBatch roll(int step);
  void score(StepBatch& batch, nlohmann::json& metrics);
  void advantages(StepBatch& batch, nlohmann::json& metrics);
  // One policy update over the kept groups; false when the loss was not finite.
  bool update(StepBatch& batch, int step, int iteration, nlohmann::json& metrics,
              nlohmann::json* dump);
  void save(const std::string& dir, int step, bool with_optimizer);
  // Data parallel: the global batch's kept groups, whether every rank's rewards are finite, and
  // the reward metrics of the whole global batch instead of this rank's share.
  void share(StepBatch& batch, nlohmann::json& metrics, bool& finite);
  // This rank's groups of each micro-batch (local indices), cut as a single process cuts them.
  std::vector<std::vector<int64_t>> micro_groups(const StepBatch& batch) const;
  bool parallel() const { return group_ != nullptr; }
  int world() const { return parallel() ? group_->world_size() : 1; }
  int rank() const { return parallel() ? group_->rank() : 0; }

  bool images_on() const { return task_ != Task::kMM2T; }
  bool answers_on() const { return task_ != Task::kT2I; }
  rollout::RolloutOptions rollout_options() const;
  double answer_temperature() const {
    const auto& g = recipe_.grpo;
    return g.answer_temperature > 0.0 ? g.answer_temperature : g.temperature;
  }

  const GrpoRecipe& recipe_;
  util::RunDir& run_;
  StageOptions options_;
  Task task_;
  torch::Device device_{torch::kCPU};

  train::Policy policy_;
  model::UnifiedModel reference_{nullptr};
  std::unique_ptr<model::SequenceBuilder> builder_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  train::CheckpointSources sources_;
  std::vector<data::Record> rows_;
  std::vector<NamedImageReward> image_rewards_;
  std::vector<NamedAnswerReward> answer_rewards_;
  bool need_captions_ = false;
  bool need_hidden_ = false;
  int bad_in_row_ = 0;
  int bad_total_ = 0;
  std::unique_ptr<dist::ProcessGroup> group_;  // world size > 1 only
};

rollout::RolloutOptions Stage::rollout_options() const {
  const auto& g = recipe_.grpo;
  rollout::RolloutOptions o;
  o.num_generations = g.num_generations;
  o.temperature = g.temperature;
  o.top_k = g.top_k;
  o.top_p = g.top_p;
  o.max_completion_length = g.max_completion_length;
  o.cfg_weight = g.cfg_weight;
  o.logprob_cfg = g.logprob_cfg;
  return o;
}

void Stage::load() {
  if (recipe_.device == "cuda") {
    if (!torch::cuda::is_available()) {
      throw RecipeError("run.device: cuda, but no CUDA device is visible to LibTorch");
    }
    device_ = torch::Device(torch::kCUDA, 0);
  }
  log::info(recipe_.run.name + ": starting policy " + start_from(recipe_) + " on " + device_.str());
  policy_ = train::load_policy(start_from(recipe_));
  policy_.model->to(device_);  // the VQ decoder stays on the host with the rewards
  sources_ = train::checkpoint_sources(policy_);
  builder_ = std::make_unique<model::SequenceBuilder>(*policy_.text, policy_.model->config);
  policy_.vq->eval();
  for (auto& p : policy_.vq->parameters()) p.set_requires_grad(false);
  if (recipe_.grpo.beta > 0.0) {
    reference_ = train::load_policy(start_from(recipe_)).model;
    reference_->to(device_);
    reference_->eval();
    for (auto& p : reference_->parameters()) p.set_requires_grad(false);
  }

  const auto& g = recipe_.grpo;
  const auto reward_options = reward_options_of(recipe_);
  for (size_t k = 0; k < g.reward_funcs.size(); ++k) {
    const std::string& name = g.reward_funcs[k];
    if (reward::is_image_reward(name)) {
      auto r = reward::make_image_reward(name, reward_options);
      need_captions_ |= r->needs_caption();
      need_hidden_ |= r->needs_hidden();
      image_rewards_.push_back({name, g.reward_weights[k], std::move(r)});
    } else {
      answer_rewards_.push_back(
          {name, g.reward_weights[k], reward::make_answer_reward(name, reward_options)});
    }
  }

  data::ReadOptions read;
  read.resolution = policy_.model->config.image_size;
  read.skip_bad_rows = recipe_.data.skip_bad_rows;
  auto dataset = data::read_dataset(recipe_.data.train, read);
  const bool need_spec = std::any_of(image_rewards_.begin(), image_rewards_.end(),
                                     [](const auto& r) { return r.name == "geneval"; });
  const bool need_scene = std::any_of(answer_rewards_.begin(), answer_rewards_.end(),
                                      [](const auto& r) { return r.name == "perception"; });
  for (auto& r : dataset.records) {
    const bool type_ok = std::find(recipe_.data.qa_types.begin(), recipe_.data.qa_types.end(),
                                   r.qa_type) != recipe_.data.qa_types.end();
    if (answers_on() && !type_ok) continue;
    if (need_spec && !r.spec) {
      throw DataError(recipe_.data.train + ":" + std::to_string(r.line) +
                      ": the geneval reward needs a scene spec (\"spec\") on every row");
    }
    if (need_scene && !r.scene) {
      throw DataError(recipe_.data.train + ":" + std::to_string(r.line) +
                      ": the perception reward needs the image's scene (\"scene\") on every row");
    }
    rows_.push_back(std::move(r));
  }
  if (rows_.empty()) {
    throw DataError(recipe_.data.train + ": no rows with qa_type in data.qa_types to train on");
  }
}

std::vector<int> Stage::draw_rows(int step) const {
  std::mt19937_64 rng(data::split_seed(recipe_.run.seed, "grpo/rows/" + std::to_string(step)));
  // The global batch is drawn as one process with all of it draws it; a rank keeps its groups.
  const int per_rank = recipe_.grpo.per_device_train_batch_size;
  std::vector<int> rows;
  for (int i = 0; i < per_rank * world(); ++i) {
    rows.push_back(static_cast<int>(rng() % rows_.size()));
  }
  if (!parallel()) return rows;
  std::vector<int> mine;
  for (int64_t g : dist::rank_groups(per_rank, rank(), world())) mine.push_back(rows[g]);
  return mine;
}

StepBatch Stage::roll(int step) {
  StepBatch batch;
  batch.rows = draw_rows(step);
  // One generator per group, from (seed, step, group of the global batch): a group's rollouts do
  // not depend on which rank draws them nor on the rest of its batch.
  std::vector<at::Generator> generator;
  for (int64_t g : dist::rank_groups(recipe_.grpo.per_device_train_batch_size, rank(), world())) {
    generator.push_back(at::make_generator<at::CPUGeneratorImpl>(data::split_seed(
        recipe_.run.seed, "grpo/rollout/" + std::to_string(step) + "/" + std::to_string(g))));
  }
  const auto options = rollout_options();
  auto& model = policy_.model;
  model->eval();
  if (images_on()) {
    std::vector<std::string> prompts;
    for (int r : batch.rows) {
      const auto length = builder_->text_to_image(rows_[r].prompt).ids.size();
      if (static_cast<int>(length) > recipe_.grpo.max_prompt_length) {
        throw DataError(recipe_.data.train + ":" + std::to_string(rows_[r].line) + ": prompt is " +
                        std::to_string(length) + " tokens, over grpo.max_prompt_length " +
                        std::to_string(recipe_.grpo.max_prompt_length));
      }
      prompts.push_back(rows_[r].prompt);
    }
    batch.images = rollout::roll_images(model, *builder_, policy_.vq, prompts, options, generator);
  }
  if (answers_on()) {
    std::vector<torch::Tensor> images;
    std::vector<std::string> questions;
    for (int r : batch.rows) {
      images.push_back(model::image_to_tensor(rows_[r].image, model->config.image_size));
      questions.push_back(rows_[r].qa_problem);
      const auto length = builder_->image_to_text(images.back(), questions.back()).ids.size();
      if (static_cast<int>(length) > recipe_.grpo.max_prompt_length) {
        throw DataError(recipe_.data.train + ":" + std::to_string(rows_[r].line) +
                        ": question prefix is " + std::to_string(length) +
                        " tokens, over grpo.max_prompt_length " +
                        std::to_string(recipe_.grpo.max_prompt_length));
      }
    }
    auto answer_options = options;
    answer_options.temperature = answer_temperature();
    batch.answers =
        rollout::roll_answers(model, *builder_, images, questions, answer_options, generator);
  }
  return batch;
}

void Stage::score(StepBatch& batch, nlohmann::json& metrics) {
  auto& model = policy_.model;
  if (images_on()) {
    const auto& im = batch.images;
    const int64_t n = static_cast<int64_t>(im.prompts.size());
    std::vector<std::string> captions;
    if (need_captions_) {
      captions =
          rollout::caption_images(model, *builder_, im.images, recipe_.grpo.caption_max_tokens);
    }
    if (need_hidden_ || recipe_.grpo.num_iterations > 1) {
      // One pass gives the hidden states tim reads and the old log-probs mu > 1 needs.
      torch::NoGradGuard no_grad;
      auto scores = rollout::score_images(model, *builder_, im.prompts, im.codes, rollout_options(),
                                          {false, need_hidden_});
      batch.old_t2i = scores.logp;
      if (need_hidden_) {
        for (int64_t i = 0; i < n; ++i) batch.image_hidden.push_back(scores.image_hidden[i]);
        batch.text_hidden = std::move(scores.text_hidden);
      }
    }
    batch.r_t2i = torch::zeros({n}, torch::kDouble);
    for (const auto& named : image_rewards_) {
      auto values = torch::zeros({n}, torch::kDouble);
      for (int64_t i = 0; i < n; ++i) {
        const auto& row = rows_[batch.rows[im.source[i]]];
        reward::ImageCase c;
        c.prompt = row.prompt;
        c.spec = row.spec ? &*row.spec : nullptr;
        c.real_image = row.image;
        c.image = im.images[i];
        if (need_captions_) c.caption = captions[i];
        if (need_hidden_) {
          c.image_hidden = batch.image_hidden[i];
          c.text_hidden = batch.text_hidden[i];
        }
        values[i] = named.reward->score(c);
      }
      batch.by_reward[named.name] = values;
      batch.r_t2i += named.weight * values;
      metrics["reward/" + named.name] = mean_std(values);
    }
    metrics["reward_t2i"] = mean_std(batch.r_t2i);
    if (need_captions_ && !captions.empty()) metrics["sample_caption"] = captions[0];
  }
  if (answers_on()) {
    const auto& an = batch.answers;
    const int64_t n = static_cast<int64_t>(an.completions.size());
    batch.r_mm2t = torch::zeros({n}, torch::kDouble);
    for (const auto& named : answer_rewards_) {
      auto values = torch::zeros({n}, torch::kDouble);
      for (int64_t i = 0; i < n; ++i) {
        const auto& row = rows_[batch.rows[an.source[i]]];
        const data::Scene* scene = row.scene ? &*row.scene : nullptr;
        values[i] = named.reward->score({an.completions[i], row.qa_solution, row.qa_type, scene});
      }
      batch.by_reward[named.name] = values;
      batch.r_mm2t += named.weight * values;
      metrics["reward/" + named.name] = mean_std(values);
    }
    metrics["reward_mm2t"] = mean_std(batch.r_mm2t);
    auto lengths = torch::tensor(an.lengths, torch::kDouble);
    metrics["completion_length"] = length_stats(lengths);
    double truncated = 0;
    for (auto t : an.truncated) truncated += t;
    metrics["completion_truncated"] = truncated / std::max<int64_t>(1, n);
    metrics["sample_completion"] = an.completions.empty() ? "" : an.completions[0];
    if (recipe_.grpo.num_iterations > 1) {
      torch::NoGradGuard no_grad;
      auto scores =
          rollout::score_completions(model, *builder_, an.sequences, answer_temperature());
      batch.old_mm2t = scores.logp;
      batch.mask_mm2t = scores.mask;
    }
  }
}

void Stage::advantages(StepBatch& batch, nlohmann::json& metrics) {
  const auto& g = recipe_.grpo;
  const int64_t G = g.num_generations;
  const auto scale = reward_scale_of(recipe_);
  const double lambda = g.unify_lambda;
  torch::Tensor spread_basis;  // the rewards whose zero spread means "no signal"
  switch (task_) {
    case Task::kT2I:
      spread_basis = batch.r_t2i;
      batch.advantages = ops::group_advantages(batch.r_t2i, G, scale);
      break;
    case Task::kMM2T:
      spread_basis = batch.r_mm2t;
      batch.advantages = ops::group_advantages(batch.r_mm2t, G, scale);
      break;
    case Task::kUnified:
      if (g.unify_reward) {
        spread_basis = batch.r_t2i + lambda * batch.r_mm2t;
        metrics["reward_unified"] = mean_std(spread_basis);
        batch.advantages = ops::group_advantages(spread_basis, G, scale);
      } else if (!g.unify_advantage) {
        // Each rollout is pushed by its own task's advantage alone; lambda weighs the answers'.
        batch.advantages = ops::group_advantages(batch.r_t2i, G, scale);
        batch.advantages_mm2t = lambda * ops::group_advantages(batch.r_mm2t, G, scale);
        spread_basis = (batch.advantages.abs() + batch.advantages_mm2t.abs()).to(torch::kDouble);
        metrics["advantage_mm2t"] = advantage_stats(batch.advantages_mm2t);
      } else {
        batch.advantages = ops::group_advantages(batch.r_t2i, G, scale) +
                           lambda * ops::group_advantages(batch.r_mm2t, G, scale);
        // A group carries no signal only when both of its tasks have none.
        spread_basis = batch.advantages.to(torch::kDouble);
      }
      break;
  }
  const auto zero = ops::zero_spread_groups(spread_basis, G);
  batch.zero_spread = zero;
  metrics["zero_spread_fraction"] = zero.to(torch::kDouble).mean().item<double>();
  batch.kept_groups = g.dynamic_sampling ? zero.logical_not() : torch::ones_like(zero);
  metrics["advantage"] = advantage_stats(batch.advantages);
}

void Stage::share(StepBatch& batch, nlohmann::json& metrics, bool& finite) {
  auto& group = *group_;
  // Gathered per-rollout values; their order does not matter to the statistics below.
  auto gather = [&](const torch::Tensor& t) {
    return group.all_gather(t.to(torch::kDouble).contiguous()).reshape(-1);
  };
  // [W, P] -> global order: rank r's j-th group is group j * W + r (dist::rank_groups).
  const auto kept = group.all_gather(batch.kept_groups.to(torch::kInt64)).t().reshape(-1);
  batch.global_kept.assign(kept.data_ptr<int64_t>(), kept.data_ptr<int64_t>() + kept.numel());
  auto bad = torch::zeros({1}, torch::kDouble);
  if (!finite) bad.fill_(1.0);
  std::vector<torch::Tensor> flags{bad};
  group.all_reduce_sum(flags);
  finite = flags[0].item<double>() == 0.0;

  for (const auto& [name, values] : batch.by_reward)
    metrics["reward/" + name] = mean_std(gather(values));
  torch::Tensor r_t2i, r_mm2t;
  if (batch.r_t2i.defined()) metrics["reward_t2i"] = mean_std(r_t2i = gather(batch.r_t2i));
  if (batch.r_mm2t.defined()) metrics["reward_mm2t"] = mean_std(r_mm2t = gather(batch.r_mm2t));
  if (task_ == Task::kUnified && recipe_.grpo.unify_reward) {
    metrics["reward_unified"] = mean_std(r_t2i + recipe_.grpo.unify_lambda * r_mm2t);
  }
  if (answers_on()) {
    const auto& an = batch.answers;
    metrics["completion_length"] = length_stats(gather(torch::tensor(an.lengths, torch::kDouble)));
    std::vector<double> truncated(an.truncated.begin(), an.truncated.end());
    metrics["completion_truncated"] =
        gather(torch::tensor(truncated, torch::kDouble)).mean().item<double>();
  }
  metrics["zero_spread_fraction"] = gather(batch.zero_spread).mean().item<double>();
  metrics["advantage"] = advantage_stats(gather(batch.advantages));
  if (batch.advantages_mm2t.defined()) {
    metrics["advantage_mm2t"] = advantage_stats(gather(batch.advantages_mm2t));
  }
}

std::vector<std::vector<int64_t>> Stage::micro_groups(const StepBatch& batch) const {
  const int accumulation = recipe_.optim.gradient_accumulation_steps;
  if (!parallel()) {
    const auto kept = batch.kept_groups.to(torch::kInt64).contiguous();
    return dist::micro_batches(
        std::vector<int64_t>(kept.data_ptr<int64_t>(), kept.data_ptr<int64_t>() + kept.numel()),
        accumulation);
  }
  std::vector<std::vector<int64_t>> mine;
  for (const auto& micro : dist::micro_batches(batch.global_kept, accumulation)) {
    mine.emplace_back();
    for (int64_t g : micro) {
      if (g % world() == rank()) mine.back().push_back(g / world());
    }
  }
  return mine;
}

bool Stage::update(StepBatch& batch, int step, int iteration, nlohmann::json& metrics,
                   nlohmann::json* dump) {
  const auto& g = recipe_.grpo;
  const auto& o = recipe_.optim;
  const int64_t G = g.num_generations;
  auto& model = policy_.model;
  model->train();
  optimizer_->zero_grad();

  const auto micro_sets = micro_groups(batch);
  const int micro_batches = static_cast<int>(micro_sets.size());
  ops::GrpoLossOptions loss_options;
  loss_options.epsilon_low = g.epsilon;
  loss_options.epsilon_high = g.epsilon_high;
  loss_options.beta = g.beta;
  loss_options.aggregation = aggregation_of(recipe_);
  // Data parallel: each micro-batch's loss normalisers count every rank's members of it, so
  // that the ranks' losses sum to the single-process loss of the micro-batch.
  torch::Tensor normalisers;  // [micro_batches, 2]: images, answers
  std::vector<int64_t> answer_tokens(micro_batches, 0);
  if (parallel()) {
    normalisers = torch::zeros({std::max(1, micro_batches), 2}, torch::kDouble);
    const int64_t image_tokens = policy_.model->config.image_tokens;
    for (int micro = 0; micro < micro_batches; ++micro) {
      std::vector<int64_t> images, answers;
      for (int64_t j : micro_sets[micro]) {
        for (int64_t k = 0; k < G; ++k) {
          images.push_back(image_tokens);
          if (answers_on()) answers.push_back(batch.answers.lengths[j * G + k]);
        }
      }
      normalisers[micro][0] = ops::loss_normaliser(images, image_tokens, loss_options.aggregation);
      normalisers[micro][1] =
          ops::loss_normaliser(answers, g.max_completion_length, loss_options.aggregation);
      for (int64_t t : answers) answer_tokens[micro] += t;
    }
    std::vector<torch::Tensor> counts{normalisers};
    group_->all_reduce_sum(counts);
    normalisers = counts[0].clamp_min(1.0);
  }

  double loss_total = 0, loss_t2i = 0, loss_mm2t = 0;
  double kl_t2i = 0, kl_mm2t = 0, clip_t2i = 0, clip_mm2t = 0;
  double entropy_t2i = 0, entropy_mm2t = 0;
  bool finite = true;
  const bool first = iteration == 0;
  for (int micro = 0; micro < micro_batches; ++micro) {
    // Whole groups per micro-batch.
    std::vector<int64_t> rollouts;
    for (int64_t j : micro_sets[micro]) {
      for (int64_t k = 0; k < G; ++k) rollouts.push_back(j * G + k);
    }
    if (rollouts.empty()) {
      // Data parallel: none of this micro-batch's groups is on this rank.
      if (first && g.beta > 0.0) {
        if (images_on()) batch.ref_t2i.emplace_back();
        if (answers_on()) batch.ref_mm2t.emplace_back();
      }
      continue;
    }
    const auto index = torch::tensor(rollouts, torch::kInt64);
    // Rewards and advantages live on the host; log-probs where the policy runs.
    const auto on_device = index.to(device_);
    const auto advantages = batch.advantages.index_select(0, index).to(device_, torch::kFloat32);
    torch::Tensor loss = torch::zeros({}, torch::TensorOptions().device(device_));
    nlohmann::json micro_dump;
    if (images_on()) {
      std::vector<std::string> prompts;
      for (int64_t i : rollouts) prompts.push_back(batch.images.prompts[i]);
      const auto codes = batch.images.codes.index_select(0, index);
      auto scores = rollout::score_images(model, *builder_, prompts, codes, rollout_options(),
                                          {first, false});
      const auto old =
          batch.old_t2i.defined() ? batch.old_t2i.index_select(0, on_device) : scores.logp.detach();
      torch::Tensor ref;
      if (g.beta > 0.0) {
        if (first) {
          torch::NoGradGuard no_grad;
          batch.ref_t2i.push_back(
              rollout::score_images(reference_, *builder_, prompts, codes, rollout_options()).logp);
        }
        ref = batch.ref_t2i.at(micro);
      }
      const auto mask = torch::ones_like(scores.logp);
      loss_options.max_completion_length = scores.logp.size(1);
      if (parallel()) loss_options.normaliser = normalisers[micro][0].item<double>();
      const auto l = ops::grpo_loss(scores.logp, old, ref, advantages, mask, loss_options);
      loss = loss + l.loss;
      loss_t2i += l.loss.item<double>() / micro_batches;
      kl_t2i += l.kl / micro_batches;
      clip_t2i += l.clip_fraction / micro_batches;
      if (first) entropy_t2i += scores.entropy.mean().item<double>() / micro_batches;
      if (dump) {
        micro_dump["t2i"] = {
            {"rollouts", tensor_json(index)},        {"logp", tensor_json(scores.logp)},
            {"old_logp", tensor_json(old)},          {"mask", tensor_json(mask)},
            {"advantages", tensor_json(advantages)}, {"loss", l.loss.item<double>()}};
        if (ref.defined()) micro_dump["t2i"]["ref_logp"] = tensor_json(ref);
      }
    }
    if (answers_on()) {
      std::vector<model::Sequence> sequences;
      for (int64_t i : rollouts) sequences.push_back(batch.answers.sequences[i]);
      auto scores = rollout::score_completions(model, *builder_, sequences, answer_temperature(),
                                               {first, false});
      torch::Tensor old = scores.logp.detach();
      if (batch.old_mm2t.defined()) {
        // Stored for all rollouts at the batch's width; this micro-batch's may be narrower.
        old = batch.old_mm2t.index_select(0, on_device).narrow(1, 0, scores.logp.size(1));
      }
      torch::Tensor ref;
      if (g.beta > 0.0) {
        if (first) {
          torch::NoGradGuard no_grad;
          batch.ref_mm2t.push_back(
              rollout::score_completions(reference_, *builder_, sequences, answer_temperature())
                  .logp);
        }
        ref = batch.ref_mm2t.at(micro);
      }
      loss_options.max_completion_length = g.max_completion_length;
      if (parallel()) loss_options.normaliser = normalisers[micro][1].item<double>();
      const auto answer_advantages =
          batch.advantages_mm2t.defined()
              ? batch.advantages_mm2t.index_select(0, index).to(device_, torch::kFloat32)
              : advantages;
      const auto l =
          ops::grpo_loss(scores.logp, old, ref, answer_advantages, scores.mask, loss_options);
      // The normalisers were counted from the sampled lengths; the mask must agree.
      TORCH_CHECK(!parallel() || l.tokens == answer_tokens[micro], "update: ", l.tokens,
                  " answer tokens in the mask, ", answer_tokens[micro], " sampled");
      loss = loss + (images_on() ? g.mm2t_loss_weight : 1.0) * l.loss;
      loss_mm2t += l.loss.item<double>() / micro_batches;
      kl_mm2t += l.kl / micro_batches;
      clip_mm2t += l.clip_fraction / micro_batches;
      if (first) {
        entropy_mm2t +=
            ((scores.entropy * scores.mask).sum() / scores.mask.sum().clamp_min(1)).item<double>() /
            micro_batches;
      }
      if (dump) {
        micro_dump["mm2t"] = {{"rollouts", tensor_json(index)},
                              {"logp", tensor_json(scores.logp)},
                              {"old_logp", tensor_json(old)},
                              {"mask", tensor_json(scores.mask)},
                              {"advantages", tensor_json(answer_advantages)},
                              {"loss", l.loss.item<double>()}};
        if (ref.defined()) micro_dump["mm2t"]["ref_logp"] = tensor_json(ref);
      }
    }
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      finite = false;
      break;
    }
    loss_total += value / micro_batches;
    (loss / micro_batches).backward();
    if (dump) {
      micro_dump["loss"] = value;
      (*dump)["micro_batches"].push_back(micro_dump);
    }
  }
  if (parallel()) {
    // Losses are shares of the global ones (sum); the diagnostics are the mean over ranks.
    auto v = torch::tensor({finite ? 0.0 : 1.0, loss_total, loss_t2i, loss_mm2t, kl_t2i, kl_mm2t,
                            clip_t2i, clip_mm2t, entropy_t2i, entropy_mm2t},
                           torch::kDouble);
    std::vector<torch::Tensor> sums{v};
    group_->all_reduce_sum(sums);
    const auto a = sums[0].accessor<double, 1>();
    const double w = world();
    finite = a[0] == 0.0;
    loss_total = a[1], loss_t2i = a[2], loss_mm2t = a[3];
    kl_t2i = a[4] / w, kl_mm2t = a[5] / w, clip_t2i = a[6] / w, clip_mm2t = a[7] / w;
    entropy_t2i = a[8] / w, entropy_mm2t = a[9] / w;
  }
  if (!finite) {
    optimizer_->zero_grad();
    return false;
  }
  if (parallel()) {
    // The sum of the ranks' gradients is the gradient of the global batch's loss.
    dist::all_reduce_gradients(*group_, model->parameters(),
                               static_cast<int64_t>(recipe_.dist.bucket_mb * (1 << 20)));
  }
  double grad_norm = 0.0;
  if (o.max_grad_norm > 0) {
    grad_norm = torch::nn::utils::clip_grad_norm_(model->parameters(), o.max_grad_norm);
  }
  if (!std::isfinite(grad_norm)) {
    optimizer_->zero_grad();
    return false;
  }
  const double lr = train::learning_rate_at(o, step, recipe_.grpo.max_steps);
  train::set_learning_rate(*optimizer_, lr);
  optimizer_->step();
  if (parallel() && recipe_.dist.check_weights) {
    const auto params = model->named_parameters();
    const int64_t differs = dist::first_differing_parameter(*group_, params.values());
    if (differs >= 0) {
      throw DataError("dist: after step " + std::to_string(step + 1) + ", rank " +
                      std::to_string(rank()) +
                      "'s weights differ from rank 0's (first: " + params.keys()[differs] + ")");
    }
  }

  if (first) {
    metrics["lr"] = lr;
    metrics["grad_norm"] = grad_norm;
    metrics["loss"] = loss_total;
    if (images_on()) {
      metrics["loss_t2i"] = loss_t2i;
      metrics["clip_fraction_t2i"] = clip_t2i;
      metrics["entropy_t2i"] = entropy_t2i;
      if (g.beta > 0) metrics["kl_t2i"] = kl_t2i;
    }
    if (answers_on()) {
      metrics["loss_mm2t"] = loss_mm2t;
      metrics["clip_fraction_mm2t"] = clip_mm2t;
      metrics["entropy_mm2t"] = entropy_mm2t;
      if (g.beta > 0) metrics["kl_mm2t"] = kl_mm2t;
    }
  }
  return true;
}

void Stage::save(const std::string& dir, int step, bool with_optimizer) {
  const nlohmann::json trainer = {{"step", step},
                                  {"stage", recipe_.run.name},
                                  {"task", recipe_.task},
                                  {"init", recipe_.init},
                                  // The rows and the rollout generator of step s follow from (seed,
                                  // s): the data position and the random state are the step itself.
                                  {"seed", recipe_.run.seed},
                                  {"data_position", step},
                                  {"bad_steps_in_row", bad_in_row_},
                                  {"bad_steps", bad_total_}};
  train::save_checkpoint(dir, policy_.model, sources_, trainer,
                         with_optimizer ? optimizer_.get() : nullptr);
}

void Stage::run() {
  load();
  const auto& g = recipe_.grpo;
  if (options_.ranks.world_size > 1) {
    const bool cuda = policy_.model->parameters().front().is_cuda();
    const auto backend = dist::resolve_backend(recipe_.dist.backend, cuda);
    if (backend == "nccl" && !cuda) {
      throw UsageError(
          "dist.backend nccl: NCCL moves GPU tensors but the policy is on the CPU; "
          "use gloo (or auto)");
    }
    if (!options_.dump_batch.empty()) {
      throw UsageError("--dump-batch: a single process only (the dump is one process's batch)");
    }
    group_ = std::make_unique<dist::ProcessGroup>(options_.ranks, backend,
                                                  std::chrono::seconds(recipe_.dist.timeout_s));
    log::info(recipe_.run.name + ": " + std::to_string(world()) + " ranks over " + backend +
              ", a global batch of " + std::to_string(g.per_device_train_batch_size * world()) +
              " groups per step");
  }
  optimizer_ = train::make_optimizer(*policy_.model, recipe_.optim);
  int start = 0;
  if (options_.resume) {
    if (auto point = train::resume_latest(run_, *policy_.model, *optimizer_)) {
      start = point->step;
      bad_in_row_ = point->trainer.value("bad_steps_in_row", 0);
      bad_total_ = point->trainer.value("bad_steps", 0);
      log::info(recipe_.run.name + ": resuming from " + point->checkpoint + " at step " +
                std::to_string(start));
    } else {
      log::warn(recipe_.run.name + ": --resume given but " + run_.path() +
                " has no checkpoint; starting anew");
    }
  }
  if (parallel()) {
    // Every rank read the same files; rank 0's weights are made everyone's all the same, so that
    // a node with a stale copy of the starting checkpoint cannot make the ranks drift apart.
    torch::NoGradGuard no_grad;
    for (auto& p : policy_.model->parameters()) group_->broadcast(p, 0);
  }
  log::info(recipe_.run.name + ": " + std::to_string(rows_.size()) + " training rows, " +
            std::to_string(g.max_steps) + " steps of " +
            std::to_string(g.per_device_train_batch_size) + " groups x " +
            std::to_string(g.num_generations) + " (" + recipe_.task + ")");

  const CudaAutocast autocast(recipe_.autocast == "bf16");
  std::optional<util::Progress> progress;
  if (run_.writer()) progress.emplace(recipe_.run.name, g.max_steps - start, "steps");
  for (int step = start; step < g.max_steps; ++step) {
    nlohmann::json metrics = {{"step", step + 1}};
    const auto t0 = Clock::now();
    StepBatch batch = roll(step);
    const double rollout_s = seconds_since(t0);
    const auto t1 = Clock::now();
    score(batch, metrics);
    advantages(batch, metrics);
    const double reward_s = seconds_since(t1);

    const auto t2 = Clock::now();
    bool finite = true;
    for (const auto& [name, values] : batch.by_reward) {
      finite &= torch::isfinite(values).all().item<bool>();
    }
    bool any_kept = batch.kept_groups.any().item<bool>();
    if (parallel()) {
      share(batch, metrics, finite);
      any_kept = std::count(batch.global_kept.begin(), batch.global_kept.end(), 1) > 0;
    }
    nlohmann::json dump;
    const bool dumping = !options_.dump_batch.empty() && step == start;
    int updates = 0;
    if (finite && any_kept) {
      for (int iteration = 0; iteration < g.num_iterations && finite; ++iteration) {
        finite =
            update(batch, step, iteration, metrics, dumping && iteration == 0 ? &dump : nullptr);
        updates += finite;
      }
    }
    const double update_s = seconds_since(t2);
    if (!finite) {
      ++bad_total_;
      ++bad_in_row_;
      log::warn(recipe_.run.name + ": step " + std::to_string(step + 1) +
                ": non-finite reward or loss; step skipped (" + std::to_string(bad_in_row_) +
                " in a row)");
      if (bad_in_row_ >= g.max_bad_steps) {
        throw DataError(recipe_.run.name + ": " + std::to_string(bad_in_row_) +
                        " non-finite steps in a row (grpo.max_bad_steps); stopping. The last "
                        "good checkpoint in " +
                        run_.path() + "/checkpoints is intact");
      }
    } else {
      bad_in_row_ = 0;
    }
    metrics["updates"] = updates;
    metrics["bad_steps"] = bad_total_;
    metrics["groups_kept"] = parallel()
                                 ? std::count(batch.global_kept.begin(), batch.global_kept.end(), 1)
                                 : batch.kept_groups.sum().item<int64_t>();
    metrics["time_rollout"] = rollout_s;
    metrics["time_reward"] = reward_s;
    metrics["time_update"] = update_s;
    run_.metric(metrics);

    if (dumping) {
      dump["step"] = step + 1;
      dump["loss_type"] = g.loss_type;
      dump["epsilon"] = g.epsilon;
      dump["epsilon_high"] = g.epsilon_high;
      dump["beta"] = g.beta;
      dump["max_completion_length"] = g.max_completion_length;
      dump["num_generations"] = g.num_generations;
      dump["scale_rewards"] = g.scale_rewards;
      dump["unify_lambda"] = g.unify_lambda;
      dump["unify_reward"] = g.unify_reward;
      dump["unify_advantage"] = g.unify_advantage;
      dump["mm2t_loss_weight"] = g.mm2t_loss_weight;
      dump["task"] = recipe_.task;
      dump["gradient_accumulation_steps"] = recipe_.optim.gradient_accumulation_steps;
      if (batch.r_t2i.defined()) dump["reward_t2i"] = tensor_json(batch.r_t2i);
      if (batch.r_mm2t.defined()) dump["reward_mm2t"] = tensor_json(batch.r_mm2t);
      for (const auto& [name, values] : batch.by_reward)
        dump["rewards"][name] = tensor_json(values);
      dump["advantages"] = tensor_json(batch.advantages);
      if (batch.advantages_mm2t.defined()) {
        dump["advantages_mm2t"] = tensor_json(batch.advantages_mm2t);
      }
      dump["kept_groups"] = tensor_json(batch.kept_groups);
      if (answers_on()) dump["completions"] = batch.answers.completions;
      if (images_on()) dump["prompts"] = batch.images.prompts;
      fs::create_directories(options_.dump_batch);
      util::write_file_atomic(options_.dump_batch + "/batch.json", dump.dump(1) + "\n");
      log::info(recipe_.run.name + ": wrote step " + std::to_string(step + 1) + "'s batch to " +
                options_.dump_batch + "/batch.json");
    }
    if (progress) progress->advance();
    const int done = step + 1;
    if (run_.writer() && recipe_.train.checkpoint_every > 0 &&
        done % recipe_.train.checkpoint_every == 0 && done < g.max_steps) {
      save(train::step_checkpoint(run_.path(), done), done, true);
    }
  }
  if (!run_.writer()) return;  // rank 0 writes the model and judges it for every rank
  progress->finish();
  save(run_.path() + "/final", g.max_steps, false);

  // Held-out figures of the trained policy.
  if (recipe_.eval.prompts > 0 || recipe_.eval.questions > 0) {
    data::ReadOptions read;
    read.resolution = policy_.model->config.image_size;
    read.skip_bad_rows = recipe_.data.skip_bad_rows;
    const auto eval_rows = data::read_dataset(recipe_.data.eval, read);
    const auto scores = train::evaluate_tasks(policy_.model, *builder_, policy_.vq,
                                              eval_rows.records, recipe_.eval, recipe_.run.seed);
    run_.metric({{"step", g.max_steps},
                 {"geneval", scores.geneval},
                 {"geneval_categories", scores.categories},
                 {"answer_accuracy", scores.answer_accuracy},
                 {"format_rate", scores.format_rate},
                 {"prompts", scores.prompts},
                 {"questions", scores.questions}});
    char line[256];
    std::snprintf(line, sizeof line,
                  "held-out geneval %.3f (n = %d), answer accuracy %.3f, well-formed %.3f (n = %d)",
                  scores.geneval, scores.prompts, scores.answer_accuracy, scores.format_rate,
                  scores.questions);
    log::info(recipe_.run.name + ": " + line + "; wrote " + run_.path() + "/final");
  }
}

}  // namespace

void run_stage(const GrpoRecipe& recipe, util::RunDir& run, const StageOptions& options) {
  Stage(recipe, run, options).run();
}

}  // namespace corl::grpo
