#include "corl/grpo/recipe.h"

#include <algorithm>
#include <limits>
#include <sstream>

#include "corl/grpo/sampler.h"  // defines: batches_per_epoch, updates_of_epochs
#include "corl/util/error.h"
#include "corl/util/strings.h"

namespace corl::grpo {
namespace {

void bind_remote(config::Schema& s, const std::string& key, reward::RemoteOptions& o) {
  s.add(key + ".url", &o.url,
        "The scorer's endpoint, http:// or https:// (scripts/reward_server.py serves "
        "http://127.0.0.1:PORT/score); redirects are not followed");
  s.add(key + ".task", &o.task, "Rollouts it scores: t2i (images) or mm2t (answers)")
      .choices({"t2i", "mm2t"});
  s.add(key + ".timeout_s", &o.timeout_s, "Seconds a request may take, connecting included")
      .range(0.001, 86400.0);
  s.add(key + ".batch_size", &o.batch_size, "Rollouts per request").range(1, 100000);
  s.add(key + ".max_in_flight", &o.max_in_flight, "Requests a rank has open at once")
      .range(1, 1024);
  s.add(key + ".retries", &o.retries,
        "Further tries of a request that could not connect, timed out or got a 5xx or 429 status")
      .range(0, 100);
  s.add(key + ".retry_delay_s", &o.retry_delay_s,
        "Seconds before the first retry; each further one waits twice as long")
      .range(0.0, 3600.0);
}

}  // namespace

void bind(config::Schema& s, GrpoRecipe& r) {
  config::bind(s, r.run);
  s.add("run.device", &r.device,
        "Where the policy and the KL reference run: cpu, or cuda (the GPU LOCAL_RANK names); "
        "rewards and the detector stay on the CPU")
      .choices({"cpu", "cuda"});
  s.add("run.autocast", &r.autocast,
        "Mixed precision of the policy: none (float32) or bf16 (LibTorch's autocast: matrix "
        "products in bfloat16; on the CPU attention stays float32, and a CPU without native "
        "bfloat16 products, AVX512-BF16 or AMX, runs it slower than none)")
      .choices({"none", "bf16"});
  s.add("init", &r.init,
        "Checkpoint or run folder the policy starts from (and the KL reference, when beta > 0); "
        "--init overrides it");
  s.add("model.path", &r.model.path,
        "Hugging Face Janus folder (config.json, safetensors, tokenizer.json) the policy starts "
        "from instead of init; its checkpoints keep that layout");
  model::bind(s, r.training);
  s.add("data.train", &r.data.train, "Training rows (JSON lines, with images)");
  s.add("data.eval", &r.data.eval, "Held-out rows judged at the end");
  s.add("data.qa_types", &r.data.qa_types, "Question types the stage trains on")
      .choices({"MC", "OE"})
      .min_items(1);
  s.add("data.skip_bad_rows", &r.data.skip_bad_rows,
        "Skip (and count) malformed rows instead of stopping at the first");
  s.add("task", &r.task,
        "Rollouts trained on: unified (images and answers, one loss), t2i (images), mm2t (answers)")
      .choices({"unified", "t2i", "mm2t"});
  auto& g = r.grpo;
  s.add("grpo.num_generations", &g.num_generations, "G: rollouts per prompt and per question")
      .range(2, 1024);
  s.add("grpo.per_device_train_batch_size", &g.per_device_train_batch_size,
        "Completions (images, or answers; a unified sample's image and answer count once) per "
        "rank per micro-step, as TRL: x gradient_accumulation_steps / num_generations groups per "
        "rank per generation batch")
      .range(1, 10000000);
  s.add("grpo.steps_per_generation", &g.steps_per_generation,
        "Micro-steps per generation batch (TRL); -1: gradient_accumulation_steps. A multiple k of "
        "gradient_accumulation_steps: each generation batch is trained on in k optimizer updates "
        "(x num_iterations)")
      .range(-1, 100000);
  s.add("grpo.generation_batch_size", &g.generation_batch_size,
        "Completions per generation batch over every rank (TRL); -1: per_device_train_batch_size x "
        "ranks x steps_per_generation, the only value it may take")
      .range(-1, 100000000);
  s.add("grpo.max_steps", &g.max_steps,
        "Optimizer updates to train for (TRL); -1: num_train_epochs passes over the rows")
      .range(-1, 100000000);
  s.add("grpo.num_train_epochs", &g.num_train_epochs,
        "Passes over the training rows when max_steps is -1 (TRL; may be fractional): an epoch "
        "is floor(rows / prompts per generation batch) generation batches of distinct rows")
      .range(0.0, 1000000.0);
  s.add("grpo.num_iterations", &g.num_iterations, "mu: policy updates per generation batch")
      .range(1, 100);
  s.add("grpo.beta", &g.beta, "Weight of the k3 KL to the frozen starting policy (0: no reference)")
      .range(0.0, 100.0);
  s.add("grpo.epsilon", &g.epsilon, "Lower clip: ratio >= 1 - epsilon").range(0.0, 1.0);
  s.add("grpo.epsilon_high", &g.epsilon_high,
        "Upper clip: ratio <= 1 + epsilon_high; -1: epsilon (TRL's default, DAPO uses 0.28)")
      .range(-1.0, 100.0);
  s.add("grpo.loss_type", &g.loss_type,
        "How the step's tokens are weighed: grpo (mean over the step's rollouts of each one's "
        "token mean), bnpo (each rank's token mean of each micro-batch, averaged: TRL's), dr_grpo "
        "(token sum / (rollouts x max_completion_length)), dapo (token sum / the step's tokens: "
        "TRL's). grpo and dr_grpo weigh every rollout of the step alike, where TRL weighs each "
        "micro-batch alike: the same when micro-batches are even")
      .choices({"grpo", "bnpo", "dr_grpo", "dapo"});
  s.add("grpo.scale_rewards", &g.scale_rewards,
        "group: divide advantages by the group's std; batch: by the whole step's std (mean still "
        "per group); none: mean-centred only (Dr.GRPO)")
      .choices({"group", "batch", "none"});
  s.add("grpo.multi_objective_aggregation", &g.multi_objective_aggregation,
        "Each task's rewards: sum_then_normalize (weighted sum, then scale_rewards) or "
        "normalize_then_sum (each reward normalised in its group, weighted sum, then normalised "
        "over the step: GDPO)")
      .choices({"sum_then_normalize", "normalize_then_sum"});
  s.add("grpo.importance_sampling_level", &g.importance_sampling_level,
        "token: one ratio per token; sequence: exp of the log-ratio's mean over the rollout's "
        "tokens, one per rollout (GSPO)")
      .choices({"token", "sequence"});
  s.add(
      "grpo.mask_truncated_completions", &g.mask_truncated_completions,
      "Answers cut off at max_completion_length (no <eos>) leave the loss (images are never cut)");
  s.add("grpo.top_entropy_quantile", &g.top_entropy_quantile,
        "rho: the policy term keeps only tokens whose entropy is >= the (1 - rho) quantile of the "
        "step's tokens in the groups trained on, per task (1: all)")
      .range(0.0, 1.0);
  s.add("grpo.importance_sampling_correction", &g.importance_sampling_correction,
        "Weigh the policy term by the ratio of the trainer's old log-probs to the sampler's "
        "(truncated or masked at importance_sampling_cap)");
  s.add("grpo.importance_sampling_mode", &g.importance_sampling_mode,
        "token_truncate, token_mask, sequence_truncate or sequence_mask: per token or per "
        "rollout (product of the token ratios), clipped to the cap or zeroed above it")
      .choices({"token_truncate", "token_mask", "sequence_truncate", "sequence_mask"});
  s.add("grpo.importance_sampling_cap", &g.importance_sampling_cap,
        "C_max of the sampler/trainer correction")
      .range(1e-6, 1e6);
  s.add("grpo.temperature", &g.temperature,
        "Sampling temperature of the rollouts; their log-probs are the tempered distribution's")
      .range(1e-3, 100.0);
  s.add("grpo.answer_temperature", &g.answer_temperature,
        "Sampling temperature of the answers when it differs from the images' (0: temperature)")
      .range(0.0, 100.0);
  s.add("grpo.top_k", &g.top_k, "Rollout top-k (0: none)").range(0, 1000000);
  s.add("grpo.top_p", &g.top_p, "Rollout nucleus mass (1: none)").range(1e-6, 1.0);
  s.add("grpo.max_prompt_length", &g.max_prompt_length,
        "Longest prompt or question prefix in tokens; a longer row is an error")
      .range(8, 100000);
  s.add("grpo.max_completion_length", &g.max_completion_length, "Longest sampled answer")
      .range(1, 100000);
  s.add("grpo.cfg_weight", &g.cfg_weight, "Classifier-free guidance weight of the rollout images")
      .range(0.0, 100.0);
  s.add("grpo.logprob_cfg", &g.logprob_cfg,
        "Image log-probs from the guided logits the codes were drawn from (else conditional)");
  s.add("grpo.unify_reward", &g.unify_reward,
        "Unified stage: r = r_t2i + lambda r_mm2t, one group advantage shared by image i and "
        "answer i");
  s.add("grpo.unify_advantage", &g.unify_advantage,
        "Unified stage: A = A_t2i + lambda A_mm2t from per-task advantages, shared likewise "
        "(when unify_reward is false); both false: image i takes A_t2i, answer i lambda A_mm2t");
  s.add("grpo.unify_lambda", &g.unify_lambda, "lambda: weight of the understanding task")
      .range(0.0, 100.0);
  s.add("grpo.mm2t_loss_weight", &g.mm2t_loss_weight,
        "Unified stage: loss = loss_t2i + this x loss_mm2t (the answers' share of the update)")
      .range(0.0, 100.0);
  s.add("grpo.dynamic_sampling", &g.dynamic_sampling,
        "Drop groups without signal: every advantage they contribute is 0");
  s.add("grpo.share_prompts", &g.share_prompts,
        "The answers' scoring passes (update, reference, old log-probs) read each group's image "
        "and question once and its G answers attend to them: the same log-probs up to float "
        "rounding, in less time");
  s.add("grpo.reward_funcs", &g.reward_funcs,
        "Rewards by name: cycle, tim, geneval (images); accuracy, format, perception, options "
        "(answers); or the name of a remote reward defined under reward.remote")
      .min_items(1);
  s.add("grpo.reward_weights", &g.reward_weights, "Weight of each reward, in reward_funcs' order")
      .range(-1000.0, 1000.0);
  s.add("grpo.caption_max_tokens", &g.caption_max_tokens, "Longest caption of the cycle reward")
      .range(1, 10000);
  s.add("grpo.max_bad_steps", &g.max_bad_steps,
        "Non-finite steps in a row (skipped, counted) before the run stops")
      .range(1, 1000000);
  train::bind(s, r.optim);
  auto& w = r.reward;
  s.add("reward.cycle_text", &w.cycle_text, "Caption vs prompt in the cycle reward")
      .choices({"f1", "jaccard"});
  s.add("reward.cycle_image", &w.cycle_image, "Image distance in the cycle reward")
      .choices({"rmse", "ssim"});
  s.add("reward.geneval_partial", &w.geneval_partial,
        "geneval reward: the judge's partial credit (else 1 for a correct image, 0 otherwise)");
  s.add("reward.position_margin", &w.position_margin,
        "Centres must differ by more than this for a relation to hold")
      .range(0.0, 1.0);
  s.add("reward.exclusive", &w.exclusive,
        "geneval reward: objects the prompt did not ask for count against the image");
  s.add_sections("reward.remote", &w.remote, bind_remote);
  s.add("train.checkpoint_every", &r.train.checkpoint_every,
        "Generation batches between checkpoints (0: none); steps_per_generation / "
        "gradient_accumulation_steps x num_iterations optimizer updates each")
      .range(0, 100000000);
  train::bind(s, r.eval);
  dist::bind(s, r.dist);
}

const std::string& start_from(const GrpoRecipe& recipe) {
  return recipe.model.path.empty() ? recipe.init : recipe.model.path;
}

Task task_of(const GrpoRecipe& r) {
  if (r.task == "t2i") return Task::kT2I;
  if (r.task == "mm2t") return Task::kMM2T;
  return Task::kUnified;
}

void validate(const GrpoRecipe& r) {
  const auto& g = r.grpo;
  if (g.epsilon_high < 0.0 && g.epsilon_high != -1.0) {
    throw RecipeError("grpo.epsilon_high: " + std::to_string(g.epsilon_high) +
                      " is negative; give a bound >= 0, or -1 for epsilon");
  }
  const Task task = task_of(r);
  bool image = false;
  bool answer = false;
  for (const auto& [name, remote] : r.reward.remote) {
    if (reward::is_image_reward(name) || reward::is_answer_reward(name)) {
      throw RecipeError("reward.remote." + name + ": '" + name +
                        "' is a built-in reward's name; give the remote reward a name of its own");
    }
    reward::check_remote_options(remote, "reward.remote." + name);
  }
  for (const auto& name : g.reward_funcs) {
    if (std::count(g.reward_funcs.begin(), g.reward_funcs.end(), name) > 1) {
      throw RecipeError("grpo.reward_funcs: '" + name + "' is listed twice");
    }
    const bool remote = r.reward.remote.count(name) > 0;
    if (!remote && !reward::is_image_reward(name) && !reward::is_answer_reward(name)) {
      std::vector<std::string> defined;
      for (const auto& entry : r.reward.remote) defined.push_back(entry.first);
      throw RecipeError("grpo.reward_funcs: unknown reward '" + name +
                        "'; built-in: " + util::join(reward::reward_names(), ", ") +
                        (defined.empty()
                             ? "; no remote rewards are defined"
                             : "; remote (reward.remote): " + util::join(defined, ", ")) +
                        ". A remote reward is defined by reward.remote." + name + ".url");
    }
    const bool scores_image = scores_images(r, name);
    image |= scores_image;
    answer |= !scores_image;
    if (task == Task::kT2I && !scores_image) {
      throw RecipeError("grpo.reward_funcs: '" + name +
                        "' scores answers, but task t2i makes only images");
    }
    if (task == Task::kMM2T && scores_image) {
      throw RecipeError("grpo.reward_funcs: '" + name +
                        "' scores images, but task mm2t makes only answers");
    }
  }
  if (g.reward_weights.size() != g.reward_funcs.size()) {
    throw RecipeError("grpo.reward_weights: " + std::to_string(g.reward_weights.size()) +
                      " weights for " + std::to_string(g.reward_funcs.size()) +
                      " reward_funcs; give one weight per reward");
  }
  if (task != Task::kMM2T && !image) {
    throw RecipeError("grpo.reward_funcs: task " + r.task +
                      " makes images but no reward scores them (cycle, tim, geneval or a remote "
                      "reward with task t2i)");
  }
  if (task != Task::kT2I && !answer) {
    throw RecipeError(
        "grpo.reward_funcs: task " + r.task +
        " makes answers but no reward scores them (accuracy, format, perception, options or a "
        "remote reward with task mm2t)");
  }
  // The batch keys count as TRL counts them (recipe.h). A recipe written when
  // per_device_train_batch_size counted groups and max_steps generation batches fails here when
  // the numbers cannot be TRL's, with the conversion.
  const int G = g.num_generations;
  const int accumulation = r.optim.gradient_accumulation_steps;
  // An optimizer update takes gradient_accumulation_steps micro-steps of one generation batch;
  // one spanning two generation batches (TRL allows it) is not built.
  if (g.steps_per_generation == 0 || g.steps_per_generation < -1 ||
      (g.steps_per_generation > 0 && g.steps_per_generation % accumulation != 0)) {
    throw RecipeError("grpo.steps_per_generation: " + std::to_string(g.steps_per_generation) +
                      " is not a multiple of the " + std::to_string(accumulation) +
                      " micro-steps of an optimizer update (optim.gradient_accumulation_steps): "
                      "give k x " +
                      std::to_string(accumulation) +
                      " for k updates per generation batch, or -1 for one");
  }
  const int micro_steps = steps_per_generation_of(r);
  if (static_cast<int64_t>(g.per_device_train_batch_size) * micro_steps % G != 0) {
    throw RecipeError(
        "grpo.per_device_train_batch_size: " + std::to_string(g.per_device_train_batch_size) +
        " completions per rank per micro-step x " + std::to_string(micro_steps) +
        " micro-steps per generation batch (grpo.steps_per_generation, by default "
        "optim.gradient_accumulation_steps) is not a whole number of groups of num_generations " +
        std::to_string(G) +
        ". The key counts completions, as in TRL, not groups: for P groups per rank per "
        "generation batch set it to P x " +
        std::to_string(G) + " / " + std::to_string(micro_steps));
  }
  if (g.max_steps == 0) {
    throw RecipeError(
        "grpo.max_steps: 0 optimizer updates; give a count, or -1 for "
        "grpo.num_train_epochs passes over the rows");
  }
  if (r.optim.learning_rate <= 0.0) {
    throw RecipeError("optim.learning_rate must be > 0 for a training stage");
  }
  train::check_schedule(r.optim);
  if (r.model.path.empty() && r.init.empty()) {
    throw RecipeError(
        "model.path and init are both empty: give the Hugging Face Janus folder to start from "
        "with --set model.path=DIR (or a corl checkpoint with --init)");
  }
}

int steps_per_generation_of(const GrpoRecipe& r) {
  return r.grpo.steps_per_generation > 0 ? r.grpo.steps_per_generation
                                         : r.optim.gradient_accumulation_steps;
}

int updates_per_pass(const GrpoRecipe& r) {
  return steps_per_generation_of(r) / r.optim.gradient_accumulation_steps;
}

int updates_per_generation(const GrpoRecipe& r) {
  return updates_per_pass(r) * r.grpo.num_iterations;
}

int groups_per_rank(const GrpoRecipe& r) {
  return r.grpo.per_device_train_batch_size * steps_per_generation_of(r) / r.grpo.num_generations;
}

int total_updates(const GrpoRecipe& r, size_t rows, int world_size) {
  if (r.grpo.max_steps > 0) return r.grpo.max_steps;
  const int64_t groups = static_cast<int64_t>(groups_per_rank(r)) * world_size;
  const int64_t per_epoch = batches_per_epoch(rows, groups);
  const int64_t updates =
      updates_of_epochs(r.grpo.num_train_epochs, per_epoch, updates_per_generation(r));
  if (updates < 1 || updates > std::numeric_limits<int>::max()) {
    std::ostringstream epochs;
    epochs << r.grpo.num_train_epochs;
    throw RecipeError("grpo.num_train_epochs: " + epochs.str() + " passes of " +
                      std::to_string(per_epoch) + " generation batches (" + std::to_string(rows) +
                      " rows, " + std::to_string(groups) + " prompts a batch) make " +
                      std::to_string(updates) +
                      " optimizer updates; set grpo.max_steps or more epochs");
  }
  return static_cast<int>(updates);
}

int generation_batches(const GrpoRecipe& r, int updates) {
  return (updates + updates_per_generation(r) - 1) / updates_per_generation(r);
}

void check_generation_batch(const GrpoRecipe& r, int world_size) {
  const int64_t made = static_cast<int64_t>(r.grpo.per_device_train_batch_size) * world_size *
                       steps_per_generation_of(r);
  if (r.grpo.generation_batch_size != -1 && r.grpo.generation_batch_size != made) {
    throw RecipeError(
        "grpo.generation_batch_size: " + std::to_string(r.grpo.generation_batch_size) + ", but " +
        std::to_string(world_size) + " ranks x per_device_train_batch_size " +
        std::to_string(r.grpo.per_device_train_batch_size) + " x steps_per_generation " +
        std::to_string(steps_per_generation_of(r)) + " make " + std::to_string(made) +
        " completions per generation batch (TRL's rule); leave it -1 or give "
        "that");
  }
}

LossType loss_type_of(const GrpoRecipe& r) { return loss_type_of(r.grpo.loss_type); }

UnifiedAdvantage unified_advantage_of(const GrpoRecipe& r) {
  if (r.grpo.unify_reward) return UnifiedAdvantage::kSharedReward;
  if (r.grpo.unify_advantage) return UnifiedAdvantage::kSharedAdvantage;
  return UnifiedAdvantage::kPerTask;
}

double epsilon_high_of(const GrpoRecipe& r) {
  return r.grpo.epsilon_high < 0.0 ? r.grpo.epsilon : r.grpo.epsilon_high;
}

ops::RewardScale reward_scale_of(const GrpoRecipe& r) {
  if (r.grpo.scale_rewards == "none") return ops::RewardScale::kNone;
  if (r.grpo.scale_rewards == "batch") return ops::RewardScale::kBatch;
  return ops::RewardScale::kGroup;
}

RewardAggregation reward_aggregation_of(const GrpoRecipe& r) {
  return r.grpo.multi_objective_aggregation == "normalize_then_sum"
             ? RewardAggregation::kNormalizeThenSum
             : RewardAggregation::kSumThenNormalize;
}

bool needs_old_logprobs(const GrpoRecipe& r) {
  return updates_per_generation(r) > 1 || r.grpo.importance_sampling_correction ||
         r.grpo.top_entropy_quantile < 1.0;
}

reward::RewardOptions reward_options_of(const GrpoRecipe& r) {
  reward::RewardOptions o;
  o.cycle_text = r.reward.cycle_text;
  o.cycle_image = r.reward.cycle_image;
  o.geneval_partial = r.reward.geneval_partial;
  o.judge = {r.reward.position_margin, r.reward.exclusive};
  return o;
}

rollout::RolloutOptions rollout_options_of(const GrpoRecipe& r) {
  const auto& g = r.grpo;
  rollout::RolloutOptions o;
  o.num_generations = g.num_generations;
  o.temperature = g.temperature;
  o.top_k = g.top_k;
  o.top_p = g.top_p;
  o.max_completion_length = g.max_completion_length;
  o.cfg_weight = g.cfg_weight;
  o.logprob_cfg = g.logprob_cfg;
  o.keep_logp = g.importance_sampling_correction;
  return o;
}

double answer_temperature_of(const GrpoRecipe& r) {
  return r.grpo.answer_temperature > 0.0 ? r.grpo.answer_temperature : r.grpo.temperature;
}

bool makes_images(const GrpoRecipe& r) { return task_of(r) != Task::kMM2T; }

bool scores_images(const GrpoRecipe& r, const std::string& name) {
  const auto remote = r.reward.remote.find(name);
  return remote != r.reward.remote.end() ? remote->second.task == "t2i"
                                         : reward::is_image_reward(name);
}

torch::Device policy_device(const GrpoRecipe& r, int local_rank, int visible_gpus) {
  if (r.device != "cuda") return torch::kCPU;
  if (visible_gpus == 0) {
    throw RecipeError("run.device: cuda, but no CUDA device is visible to LibTorch");
  }
  if (local_rank >= visible_gpus) {
    throw UsageError("LOCAL_RANK " + std::to_string(local_rank) + ": only " +
                     std::to_string(visible_gpus) + " CUDA devices are visible");
  }
  return {torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank)};
}
bool makes_answers(const GrpoRecipe& r) { return task_of(r) != Task::kT2I; }

}  // namespace corl::grpo
