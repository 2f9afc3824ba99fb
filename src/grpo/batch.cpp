#include "corl/grpo/batch.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "corl/dist/data_parallel.h"
#include "corl/grpo/sampler.h"  // defines: generation_rows
#include "corl/grpo/weights.h"  // defines: sampler_correction, trained_entropy_mask
#include "corl/model/inputs.h"
#include "corl/util/error.h"
#include "corl/util/faults.h"

namespace corl::grpo {
namespace {

std::string at_row(const GrpoRecipe& recipe, const data::Record& row) {
  return recipe.data.train + ":" + std::to_string(row.line);
}

// The global batch's rows, without replacement (grpo/sampler.h); a rank keeps its groups.
std::vector<int> draw_rows(const GrpoRecipe& recipe, size_t rows, int step,
                           const dist::ProcessGroup& group) {
  const int per_rank = groups_per_rank(recipe);
  const auto global = generation_rows(recipe.run.seed, rows,
                                      static_cast<int64_t>(per_rank) * group.world_size(), step);
  std::vector<int> mine;
  for (int64_t g : dist::rank_groups(per_rank, group.rank(), group.world_size())) {
    mine.push_back(global[g]);
  }
  return mine;
}

// One generator per group, from (seed, step, group of the global batch); a group's images and
// then its answers draw from it.
std::vector<at::Generator> rollout_generators(const GrpoRecipe& recipe, int step,
                                              const dist::ProcessGroup& group) {
  std::vector<at::Generator> generators;
  for (int64_t g : dist::rank_groups(groups_per_rank(recipe), group.rank(), group.world_size())) {
    generators.push_back(at::make_generator<at::CPUGeneratorImpl>(data::split_seed(
        recipe.run.seed, "grpo/rollout/" + std::to_string(step) + "/" + std::to_string(g))));
  }
  return generators;
}

void roll_images(StageInputs& in, const GrpoRecipe& recipe, std::vector<at::Generator>& generators,
                 StepBatch& batch) {
  auto& model = in.policy.model;
  model->eval();
  const int max_prompt = recipe.grpo.max_prompt_length;
  std::vector<std::string> prompts;
  for (int r : batch.rows) {
    const auto length = in.builder->text_to_image(in.rows[r].prompt).ids.size();
    if (static_cast<int>(length) > max_prompt) {
      throw DataError(at_row(recipe, in.rows[r]) + ": prompt is " + std::to_string(length) +
                      " tokens, over grpo.max_prompt_length " + std::to_string(max_prompt));
    }
    prompts.push_back(in.rows[r].prompt);
  }
  batch.images = rollout::roll_images(model, *in.builder, in.policy.vq, prompts,
                                      rollout_options_of(recipe), generators);
}

void roll_answers(StageInputs& in, const GrpoRecipe& recipe, std::vector<at::Generator>& generators,
                  StepBatch& batch) {
  auto& model = in.policy.model;
  model->eval();
  const int max_prompt = recipe.grpo.max_prompt_length;
  std::vector<torch::Tensor> images;
  std::vector<std::string> questions;
  for (int r : batch.rows) {
    images.push_back(model::image_to_tensor(in.rows[r].image, model->config.image_size));
    questions.push_back(in.rows[r].qa_problem);
    const auto length = in.builder->image_to_text(images.back(), questions.back()).ids.size();
    if (static_cast<int>(length) > max_prompt) {
      throw DataError(at_row(recipe, in.rows[r]) + ": question prefix is " +
                      std::to_string(length) + " tokens, over grpo.max_prompt_length " +
                      std::to_string(max_prompt));
    }
  }
  auto options = rollout_options_of(recipe);
  options.temperature = answer_temperature_of(recipe);
  batch.answers = rollout::roll_answers(model, *in.builder, images, questions, options, generators);
}

// The protocol's items (reward/remote.h) of this rank's rollouts of one task, each group's row
// encoded once.
std::vector<nlohmann::json> remote_items(const StageInputs& in, bool images,
                                         const StepBatch& batch) {
  std::map<int, nlohmann::json> rows;
  const auto row_of = [&](int source) -> const nlohmann::json& {
    auto [entry, fresh] = rows.try_emplace(source);
    if (fresh) entry->second = reward::row_fields(in.rows[batch.rows[source]]);
    return entry->second;
  };
  std::vector<nlohmann::json> items;
  if (images) {
    const auto& im = batch.images;
    for (size_t i = 0; i < im.images.size(); ++i) {
      items.push_back(reward::image_item(im.prompts[i], im.images[i], row_of(im.source[i])));
    }
  } else {
    const auto& an = batch.answers;
    for (size_t i = 0; i < an.completions.size(); ++i) {
      items.push_back(reward::answer_item(an.completions[i], row_of(an.source[i])));
    }
  }
  return items;
}

// A remote reward's scores of this step, on their way.
struct RemoteRequest {
  const WeightedReward<reward::RemoteReward>* named;
  reward::PendingScores pending;
};

// Asks every remote reward of one task for this rank's rollouts of it; the requests run while
// the step goes on.
void send_remote(const StageInputs& in, bool images, const StepBatch& batch,
                 std::vector<RemoteRequest>& requests) {
  std::vector<nlohmann::json> items;
  for (const auto& named : in.remote_rewards) {
    if (named.reward->scores_images() != images) continue;
    if (items.empty()) items = remote_items(in, images, batch);
    requests.push_back({&named, named.reward->score(items, batch.step + 1)});
  }
}

// Waits for the step's remote rewards. One that failed on any rank stops every rank here, before
// anything is trained on the step; the failing rank's error names the reward, URL and step.
void receive_remote(std::vector<RemoteRequest>& requests, dist::ProcessGroup& group,
                    StepBatch& batch) {
  std::string failure;
  std::string sub_names;
  for (auto& request : requests) {
    try {
      auto scores = request.pending.get();
      const std::string& name = request.named->name;
      batch.by_reward[name] = torch::tensor(scores.scores, torch::kDouble);
      for (const auto& [sub, values] : scores.sub_scores) {
        batch.sub_scores[name + "/" + sub] = torch::tensor(values, torch::kDouble);
        sub_names += name + "/" + sub + "\n";
      }
    } catch (const reward::RemoteRewardError& e) {
      if (failure.empty()) failure = e.what();
    }
  }
  if (requests.empty()) return;
  // Every rank's outcome, and the sub-scores it will log (the metrics gather them by name).
  const auto signature = static_cast<int64_t>(std::hash<std::string>{}(sub_names) >> 1);
  const auto all =
      group.all_gather(torch::tensor({int64_t{failure.empty() ? 0 : 1}, signature})).cpu();
  const std::string step = "step " + std::to_string(batch.step + 1);
  if (!failure.empty()) {
    throw reward::RemoteRewardError(failure + "; " + step + " was not trained on");
  }
  for (int rank = 0; rank < group.world_size(); ++rank) {
    if (all[rank][0].item<int64_t>() != 0) {
      throw reward::RemoteRewardError("a remote reward failed on rank " + std::to_string(rank) +
                                      " (its log names it); " + step + " was not trained on");
    }
    if (all[rank][1].item<int64_t>() != signature) {
      throw reward::RemoteRewardError(
          "remote rewards, " + step + ": rank " + std::to_string(rank) +
          "'s replies named other sub_scores than rank " + std::to_string(group.rank()) +
          "'s; a scorer must report the same sub_scores for every batch");
    }
  }
}

// The rewards of one task (images or answers) as reward_funcs lists them, with their weights.
std::vector<std::pair<std::string, double>> task_terms(const GrpoRecipe& recipe, bool images) {
  std::vector<std::pair<std::string, double>> terms;
  const auto& g = recipe.grpo;
  for (size_t k = 0; k < g.reward_funcs.size(); ++k) {
    if (scores_images(recipe, g.reward_funcs[k]) == images) {
      terms.emplace_back(g.reward_funcs[k], g.reward_weights[k]);
    }
  }
  return terms;
}

// r of one task: the weighted sum of its rewards, in reward_funcs' order.
torch::Tensor task_sum(const GrpoRecipe& recipe, bool images, const StepBatch& batch, int64_t n) {
  auto r = torch::zeros({n}, torch::kDouble);
  for (const auto& [name, weight] : task_terms(recipe, images)) {
    r += weight * batch.by_reward.at(name);
  }
  return r;
}

// CORL_FAULTS=reward_nan@STEP (util/faults.h): the task's first reward function returns NaN for
// its first rollout at that step, as a broken reward would.
template <class Reward>
void inject_reward_fault(const std::vector<WeightedReward<Reward>>& rewards,
                         const WeightedReward<Reward>& named, int step, torch::Tensor& values) {
  if (&named == &rewards.front() && values.numel() > 0 && util::fault("reward_nan", step + 1)) {
    values[0] = std::numeric_limits<double>::quiet_NaN();
  }
}

void score_images(StageInputs& in, const GrpoRecipe& recipe, int step, StepBatch& batch) {
  auto& model = in.policy.model;
  const auto& im = batch.images;
  const int64_t n = static_cast<int64_t>(im.prompts.size());
  std::vector<std::string> captions;
  if (in.need_captions) {
    captions =
        rollout::caption_images(model, *in.builder, im.images, recipe.grpo.caption_max_tokens);
    if (!captions.empty()) batch.sample_caption = captions[0];
  }
  rollout::ImageScores scores;
  const bool old = needs_old_logprobs(recipe);
  const bool entropy = recipe.grpo.top_entropy_quantile < 1.0;
  if (in.need_hidden || old) {
    // One pass gives the hidden states tim reads, the old log-probs and the entropies.
    torch::NoGradGuard no_grad;
    scores = rollout::score_images(model, *in.builder, im.prompts, im.codes,
                                   rollout_options_of(recipe), {entropy, in.need_hidden});
    if (old) batch.old_images = scores.logp;
    if (entropy) batch.entropy_images = scores.entropy.cpu();
  }
  for (const auto& named : in.image_rewards) {
    auto values = torch::zeros({n}, torch::kDouble);
    for (int64_t i = 0; i < n; ++i) {
      const auto& row = in.rows[batch.rows[im.source[i]]];
      reward::ImageCase c;
      c.prompt = row.prompt;
      c.spec = row.spec ? &*row.spec : nullptr;
      c.real_image = row.image;
      c.image = im.images[i];
      if (in.need_captions) c.caption = captions[i];
      if (in.need_hidden) {
        c.image_hidden = scores.image_hidden[i];
        c.text_hidden = scores.text_hidden[i];
      }
      values[i] = named.reward->score(c);
    }
    inject_reward_fault(in.image_rewards, named, step, values);
    batch.by_reward[named.name] = values;
  }
}

void score_answers(StageInputs& in, const GrpoRecipe& recipe, int step, StepBatch& batch) {
  const auto& an = batch.answers;
  const int64_t n = static_cast<int64_t>(an.completions.size());
  for (const auto& named : in.answer_rewards) {
    auto values = torch::zeros({n}, torch::kDouble);
    for (int64_t i = 0; i < n; ++i) {
      const auto& row = in.rows[batch.rows[an.source[i]]];
      const data::Scene* scene = row.scene ? &*row.scene : nullptr;
      values[i] = named.reward->score(
          {an.completions[i], row.qa_solution, row.qa_type, scene, row.qa_problem});
    }
    inject_reward_fault(in.answer_rewards, named, step, values);
    batch.by_reward[named.name] = values;
  }
  if (needs_old_logprobs(recipe)) {
    torch::NoGradGuard no_grad;
    const bool entropy = recipe.grpo.top_entropy_quantile < 1.0;
    auto scores = rollout::score_completions(in.policy.model, *in.builder, an.sequences,
                                             answer_temperature_of(recipe),
                                             {entropy, false, recipe.grpo.share_prompts});
    batch.old_answers = scores.logp;
    if (entropy) batch.entropy_answers = scores.entropy.cpu();
  }
}

// Advantages are formed from the whole step's rewards, every rank's (TRL gathers them first), so
// that scale_rewards batch and normalize_then_sum see the step's spread; this rank keeps its own.
StepAdvantages advantages_of(const GrpoRecipe& recipe, dist::ProcessGroup& group,
                             const StepBatch& batch) {
  const auto& g = recipe.grpo;
  const AdvantageSettings settings{g.num_generations, reward_scale_of(recipe), g.unify_lambda,
                                   reward_aggregation_of(recipe)};
  // [N] of this rank -> [W N], rank by rank: whole groups stay together.
  const auto global = [&](const torch::Tensor& r) { return group.all_gather(r).reshape(-1); };
  const auto reward_of = [&](bool images) {
    std::vector<torch::Tensor> values;
    std::vector<double> weights;
    for (const auto& [name, weight] : task_terms(recipe, images)) {
      values.push_back(global(batch.by_reward.at(name)));
      weights.push_back(weight);
    }
    return task_reward(values, weights, settings);
  };
  StepAdvantages all;
  switch (task_of(recipe)) {
    case Task::kT2I:
      all = task_advantages(reward_of(true), /*images=*/true, settings);
      break;
    case Task::kMM2T:
      all = task_advantages(reward_of(false), /*images=*/false, settings);
      break;
    case Task::kUnified:
      all = unified_advantages(reward_of(true), reward_of(false), unified_advantage_of(recipe),
                               settings);
      break;
  }
  const int world = group.world_size();
  const auto mine = [&](const torch::Tensor& t) {
    return t.defined() ? t.reshape({world, -1})[group.rank()].clone() : t;
  };
  StepAdvantages out;
  out.images = mine(all.images);
  out.answers = all.answers.is_same(all.images) ? out.images : mine(all.answers);
  out.no_signal = mine(all.no_signal);
  return out;
}

// {mean, min, max} of every rank's values; null when there are none.
nlohmann::json spread(dist::ProcessGroup& group, const torch::Tensor& values) {
  const auto all = dist::gather_ragged(group, values);
  if (all.numel() == 0) return nullptr;
  return {{"mean", all.mean().item<double>()},
          {"min", all.min().item<double>()},
          {"max", all.max().item<double>()}};
}

// The sampler/trainer correction of one task (grpo/weights.h) and its figures over every rank:
// the weights' spread and the share over the cap, per rollout for the sequence modes and per
// masked token for the token modes (as TRL logs them), and |old - sampler| per masked token.
torch::Tensor sampler_weights(const torch::Tensor& old_logp, const torch::Tensor& sampler_logp,
                              const torch::Tensor& mask, const GrpoRecipe& recipe,
                              const std::string& task, dist::ProcessGroup& group,
                              nlohmann::json& metrics) {
  const auto c =
      sampler_correction(old_logp, sampler_logp, mask, recipe.grpo.importance_sampling_mode,
                         recipe.grpo.importance_sampling_cap);
  const auto counted = c.sequence ? torch::ones_like(c.weight, torch::kBool) : mask.gt(0);
  metrics["importance_sampling_ratio_" + task] = spread(group, c.weight.masked_select(counted));
  const auto over = dist::gather_ragged(group, c.over.masked_select(counted));
  if (over.numel() > 0) metrics["importance_sampling_clipped_" + task] = over.mean().item<double>();
  const auto diff = (old_logp.to(torch::kFloat64) - sampler_logp.to(torch::kFloat64)).abs();
  metrics["sampling_logp_difference_" + task] = spread(group, diff.masked_select(mask.gt(0)));
  return c.weight.to(torch::kFloat32);
}

// The policy term's weights of one task (StepBatch::weight_images/_answers); undefined when the
// recipe asks for none. `trained` [N] bool: the rollouts of the groups the updates train on.
torch::Tensor policy_weights(const GrpoRecipe& recipe, const std::string& task,
                             const torch::Tensor& mask, const torch::Tensor& old_logp,
                             const torch::Tensor& sampler_logp, const torch::Tensor& entropy,
                             const torch::Tensor& trained, dist::ProcessGroup& group,
                             nlohmann::json& metrics) {
  const auto& g = recipe.grpo;
  torch::Tensor weight;
  if (g.importance_sampling_correction) {
    weight = sampler_weights(old_logp.cpu(), sampler_logp, mask, recipe, task, group, metrics)
                 .expand_as(mask)
                 .contiguous();
  }
  if (g.top_entropy_quantile < 1.0) {
    const auto entropy_mask =
        trained_entropy_mask(entropy, mask, trained, g.top_entropy_quantile, group);
    metrics["entropy_mask_kept_" + task] = entropy_mask.kept_share;
    const auto kept = entropy_mask.keep.to(torch::kFloat32);
    weight = weight.defined() ? weight * kept : kept;
  }
  return weight;
}

}  // namespace

void cut_micro_batches(const GrpoRecipe& recipe, int64_t image_tokens, dist::ProcessGroup& group,
                       StepBatch& batch) {
  const int world = group.world_size();
  const int64_t G = recipe.grpo.num_generations;
  // [W, P] -> global order: rank r's j-th group is group j * W + r (dist::rank_groups).
  const auto gathered = group.all_gather(batch.kept.to(torch::kInt64)).t().reshape(-1);
  const std::vector<int64_t> kept(gathered.data_ptr<int64_t>(),
                                  gathered.data_ptr<int64_t>() + gathered.numel());
  batch.kept_groups = std::count(kept.begin(), kept.end(), 1);
  // The kept groups, in order, split evenly over the k updates of a pass; each update's share
  // cut into its micro-batches.
  const int accumulation = recipe.optim.gradient_accumulation_steps;
  const int64_t updates = updates_per_pass(recipe);
  std::vector<std::vector<int64_t>> cuts;
  batch.windows.clear();
  for (int64_t w = 0; w < updates; ++w) {
    const int64_t lo = batch.kept_groups * w / updates;
    const int64_t hi = batch.kept_groups * (w + 1) / updates;
    std::vector<int64_t> share(kept.size(), 0);
    int64_t seen = 0;
    for (size_t g = 0; g < kept.size(); ++g) {
      if (kept[g] == 0) continue;
      if (seen >= lo && seen < hi) share[g] = 1;
      ++seen;
    }
    const auto window = dist::micro_batches(share, accumulation);
    batch.windows.emplace_back(cuts.size(), cuts.size() + window.size());
    cuts.insert(cuts.end(), window.begin(), window.end());
  }
  // Per micro-batch: image rollouts, image tokens, answer rollouts, answer tokens.
  std::vector<double> counts(4 * cuts.size(), 0.0);
  for (size_t m = 0; m < cuts.size(); ++m) {
    MicroBatch micro;
    for (int64_t g : cuts[m]) {
      if (g % world != group.rank()) continue;
      const int64_t local = g / world;
      for (int64_t k = 0; k < G; ++k) micro.rollouts.push_back(local * G + k);
    }
    for (int64_t i : micro.rollouts) {
      if (makes_images(recipe)) {
        counts[4 * m] += 1.0;
        counts[4 * m + 1] += static_cast<double>(image_tokens);
      }
      if (makes_answers(recipe)) {
        counts[4 * m + 2] += 1.0;
        if (!batch.answer_kept.defined() || batch.answer_kept[i].item<float>() > 0.0f) {
          counts[4 * m + 3] += static_cast<double>(batch.answers.lengths[i]);
        }
      }
    }
    batch.micro.push_back(std::move(micro));
  }
  for (size_t m = 0; m < batch.micro.size(); ++m) {
    batch.micro[m].local_images = {counts[4 * m], counts[4 * m + 1]};
    batch.micro[m].local_answers = {counts[4 * m + 2], counts[4 * m + 3]};
  }
  std::vector<torch::Tensor> sums{
      torch::tensor(counts, torch::kDouble).reshape({static_cast<int64_t>(cuts.size()), 4})};
  group.all_reduce_sum(sums);
  const auto c = sums[0].accessor<double, 2>();
  for (size_t m = 0; m < batch.micro.size(); ++m) {
    batch.micro[m].images = {c[m][0], c[m][1]};
    batch.micro[m].answers = {c[m][2], c[m][3]};
  }
}

namespace {

// The frozen reference's log-probs of each micro-batch's rollouts, for the k3 KL.
void score_reference(StageInputs& in, const GrpoRecipe& recipe, StepBatch& batch) {
  torch::NoGradGuard no_grad;
  for (auto& micro : batch.micro) {
    if (micro.rollouts.empty()) continue;
    if (makes_images(recipe)) {
      std::vector<std::string> prompts;
      for (int64_t i : micro.rollouts) prompts.push_back(batch.images.prompts[i]);
      const auto codes =
          batch.images.codes.index_select(0, torch::tensor(micro.rollouts, torch::kInt64));
      micro.ref_images = rollout::score_images(in.reference, *in.builder, prompts, codes,
                                               rollout_options_of(recipe))
                             .logp;
    }
    if (makes_answers(recipe)) {
      std::vector<model::Sequence> sequences;
      for (int64_t i : micro.rollouts) sequences.push_back(batch.answers.sequences[i]);
      micro.ref_answers = rollout::score_completions(in.reference, *in.builder, sequences,
                                                     answer_temperature_of(recipe),
                                                     {false, false, recipe.grpo.share_prompts})
                              .logp;
    }
  }
}

}  // namespace

StageInputs load_stage_inputs(const GrpoRecipe& recipe, torch::Device device) {
  StageInputs in;
  in.device = device;
  in.policy = train::load_policy(start_from(recipe));
  in.policy.model->to(device);
  in.builder = std::make_unique<model::SequenceBuilder>(*in.policy.text, in.policy.model->config);
  in.policy.vq->eval();
  for (auto& p : in.policy.vq->parameters()) p.set_requires_grad(false);
  const auto& g = recipe.grpo;
  if (g.beta > 0.0) {
    in.reference = train::load_policy(start_from(recipe)).model;
    in.reference->to(device);
    in.reference->eval();
    for (auto& p : in.reference->parameters()) p.set_requires_grad(false);
  }

  const auto reward_options = reward_options_of(recipe);
  bool need_spec = false;
  bool need_scene = false;
  for (size_t k = 0; k < g.reward_funcs.size(); ++k) {
    const std::string& name = g.reward_funcs[k];
    const auto remote = recipe.reward.remote.find(name);
    if (remote != recipe.reward.remote.end()) {
      in.remote_rewards.push_back({name, g.reward_weights[k],
                                   std::make_unique<reward::RemoteReward>(name, remote->second)});
    } else if (reward::is_image_reward(name)) {
      auto r = reward::make_image_reward(name, reward_options);
      in.need_captions |= r->needs_caption();
      in.need_hidden |= r->needs_hidden();
      in.image_rewards.push_back({name, g.reward_weights[k], std::move(r)});
    } else {
      in.answer_rewards.push_back(
          {name, g.reward_weights[k], reward::make_answer_reward(name, reward_options)});
    }
    need_spec |= name == "geneval";
    need_scene |= name == "perception";
  }

  data::ReadOptions read;
  read.resolution = in.policy.model->config.image_size;
  read.skip_bad_rows = recipe.data.skip_bad_rows;
  auto dataset = data::read_dataset(recipe.data.train, read);
  const auto& types = recipe.data.qa_types;
  for (auto& r : dataset.records) {
    const bool type_ok = std::find(types.begin(), types.end(), r.qa_type) != types.end();
    if (makes_answers(recipe) && !type_ok) continue;
    if (need_spec && !r.spec) {
      throw DataError(at_row(recipe, r) +
                      ": the geneval reward needs a scene spec (\"spec\") on every row");
    }
    if (need_scene && !r.scene) {
      throw DataError(at_row(recipe, r) +
                      ": the perception reward needs the image's scene (\"scene\") on every row");
    }
    in.rows.push_back(std::move(r));
  }
  if (in.rows.empty()) {
    throw DataError(recipe.data.train + ": no rows with qa_type in data.qa_types to train on");
  }
  return in;
}

StepBatch make_step_batch(StageInputs& in, const GrpoRecipe& recipe, int step,
                          dist::ProcessGroup& group) {
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  StepBatch batch;
  batch.step = step;
  batch.rows = draw_rows(recipe, in.rows.size(), step, group);
  auto generators = rollout_generators(recipe, step, group);
  std::vector<RemoteRequest> remote;
  const auto began = Clock::now();
  if (makes_images(recipe)) {
    roll_images(in, recipe, generators, batch);
    send_remote(in, /*images=*/true, batch, remote);
  }
  if (makes_answers(recipe)) {
    roll_answers(in, recipe, generators, batch);
    send_remote(in, /*images=*/false, batch, remote);
  }
  batch.rollout_seconds = seconds_since(began);
  const auto scored = Clock::now();
  if (makes_images(recipe)) score_images(in, recipe, step, batch);
  torch::Tensor answer_mask;
  if (makes_answers(recipe)) {
    score_answers(in, recipe, step, batch);
    const auto& an = batch.answers;
    const auto n = static_cast<int64_t>(an.lengths.size());
    const std::vector<double> cut(an.truncated.begin(), an.truncated.end());
    batch.answer_kept = recipe.grpo.mask_truncated_completions
                            ? 1.0 - torch::tensor(cut, torch::kDouble).to(torch::kFloat32)
                            : torch::ones({n});
    // The answers' loss mask over the batch's width: sampled tokens of the answers kept.
    const int64_t width = n > 0 ? *std::max_element(an.lengths.begin(), an.lengths.end()) : 0;
    const auto lengths = torch::tensor(an.lengths, torch::kInt64).unsqueeze(1);
    answer_mask = torch::arange(width, torch::kInt64).unsqueeze(0).lt(lengths).to(torch::kFloat32) *
                  batch.answer_kept.unsqueeze(1);
  }
  // Without dynamic sampling every group is trained on whatever its rewards: the micro-batches
  // and the reference's log-probs need no reward, and are made while remote rewards are scored.
  const bool keep_all = !recipe.grpo.dynamic_sampling;
  if (keep_all) {
    batch.kept = torch::ones({static_cast<int64_t>(batch.rows.size())}, torch::kBool);
    cut_micro_batches(recipe, in.policy.model->config.image_tokens, group, batch);
    if (recipe.grpo.beta > 0.0) score_reference(in, recipe, batch);
  }
  const auto waited = Clock::now();
  receive_remote(remote, group, batch);
  batch.remote_wait_seconds = seconds_since(waited);
  if (makes_images(recipe)) {
    batch.r_t2i = task_sum(recipe, true, batch, batch.images.codes.size(0));
  }
  if (makes_answers(recipe)) {
    batch.r_mm2t =
        task_sum(recipe, false, batch, static_cast<int64_t>(batch.answers.lengths.size()));
  }
  batch.advantages = advantages_of(recipe, group, batch);
  if (!keep_all) batch.kept = batch.advantages.no_signal.logical_not();
  // The policy weights come after the kept groups: the entropy quantile is the trained tokens'.
  const auto trained = batch.kept.repeat_interleave(recipe.grpo.num_generations);
  if (makes_images(recipe)) {
    const auto mask = torch::ones({batch.images.codes.size(0), batch.images.codes.size(1)});
    batch.weight_images =
        policy_weights(recipe, "t2i", mask, batch.old_images, batch.images.sampler_logp,
                       batch.entropy_images, trained, group, batch.weight_metrics);
  }
  if (makes_answers(recipe)) {
    batch.weight_answers =
        policy_weights(recipe, "mm2t", answer_mask, batch.old_answers, batch.answers.sampler_logp,
                       batch.entropy_answers, trained, group, batch.weight_metrics);
  }

  auto bad = torch::zeros({1}, torch::kDouble);
  for (const auto& [name, values] : batch.by_reward) {
    if (!torch::isfinite(values).all().item<bool>()) bad.fill_(1.0);
  }
  std::vector<torch::Tensor> flags{bad};
  group.all_reduce_sum(flags);
  batch.rewards_finite = flags[0].item<double>() == 0.0;

  if (!keep_all) {
    cut_micro_batches(recipe, in.policy.model->config.image_tokens, group, batch);
    if (recipe.grpo.beta > 0.0 && batch.rewards_finite) score_reference(in, recipe, batch);
  }
  batch.score_seconds = seconds_since(scored);
  return batch;
}

}  // namespace corl::grpo
