// A GRPO step's batch, made whole before any update (TRL's _generate_and_score_completions):
// the step's unified samples, G images and G answers for each from the current policy, their
// rewards and group advantages, the micro-batches this rank trains on with the step's token
// counts, and the old and reference log-probs the updates compare against.
//
// Everything random follows from (seed, step, group of the global batch), so a group's rollouts
// do not depend on which rank draws them, nor a resumed run's on where it stopped.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "corl/data/dataset.h"
#include "corl/dist/process_group.h"
#include "corl/grpo/advantages.h"
#include "corl/grpo/loss.h"
#include "corl/grpo/recipe.h"
#include "corl/model/inputs.h"
#include "corl/reward/remote.h"
#include "corl/reward/reward.h"
#include "corl/rollout/rollout.h"
#include "corl/train/checkpoint.h"

namespace corl::grpo {

template <class Reward>
struct WeightedReward {
  std::string name;
  double weight;
  std::unique_ptr<Reward> reward;
};

// What every step rolls out with and scores against, loaded once.
struct StageInputs {
  train::Policy policy;
  model::UnifiedModel reference{nullptr};  // the frozen starting policy, when beta > 0
  std::unique_ptr<model::SequenceBuilder> builder;
  std::vector<data::Record> rows;  // training rows of the stage's question types
  std::vector<WeightedReward<reward::ImageReward>> image_rewards;
  std::vector<WeightedReward<reward::AnswerReward>> answer_rewards;
  std::vector<WeightedReward<reward::RemoteReward>> remote_rewards;  // either task's
  bool need_captions = false;  // an image reward reads the policy's caption of its image
  bool need_hidden = false;    // an image reward reads the policy's hidden states
  torch::Device device{torch::kCPU};
};

// Loads the starting policy onto `device` (the VQ decoder stays on the host with the rewards),
// the reference when beta > 0, the rewards and the training rows.
StageInputs load_stage_inputs(const GrpoRecipe& recipe, torch::Device device);

// One micro-batch of gradient accumulation: whole groups, cut from the global batch's kept
// groups as a single process cuts them (dist/data_parallel.h); this rank holds some of them.
struct MicroBatch {
  std::vector<int64_t> rollouts;  // this rank's rollouts in it (local indices)
  TokenCounts images, answers;    // over every rank's share of it
  TokenCounts local_images, local_answers;  // this rank's share of it
  torch::Tensor ref_images;       // [rollouts, image_tokens]: the reference's, when beta > 0
  torch::Tensor ref_answers;      // [rollouts, L]: likewise
};

struct StepBatch {
  int step = 0;                                    // 0-based
  std::vector<int> rows;                           // this rank's samples, one group each
  rollout::ImageRollouts images;                   // G per sample, when the task makes images
  rollout::AnswerRollouts answers;                 // G per sample, when the task makes answers
  std::map<std::string, torch::Tensor> by_reward;  // [N] float64, each reward by name
  // [N] float64, the named sub-scores remote rewards reported, as "REWARD/SUB" (logged only)
  std::map<std::string, torch::Tensor> sub_scores;
  torch::Tensor r_t2i, r_mm2t;  // [N] float64 weighted sums per task, in reward_funcs' order
  StepAdvantages advantages;
  torch::Tensor kept;          // [P] bool: this rank's groups that are trained on
  int64_t kept_groups = 0;     // over every rank
  bool rewards_finite = true;  // over every rank
  torch::Tensor old_images;    // [N, image_tokens] before any update, when needs_old_logprobs
  torch::Tensor old_answers;   // [N, L] likewise
  // [N, T] weights of the policy term (ops::GrpoLossOptions::policy_weight): the entropy mask
  // times the sampler/trainer correction; undefined when neither is on.
  torch::Tensor weight_images, weight_answers;
  torch::Tensor entropy_images, entropy_answers;  // [N, T] before any update, for the mask
  torch::Tensor
      answer_kept;  // [N] float: 0 for a truncated answer under mask_truncated_completions
  nlohmann::json weight_metrics = nlohmann::json::object();  // the weights' figures, whole step
  std::vector<MicroBatch> micro;
  // The micro-batches of each optimizer update of a pass, [begin, end) in `micro`: the kept
  // groups are split evenly over the k = steps_per_generation / gradient_accumulation_steps
  // updates, each cut into (at most) gradient_accumulation_steps micro-batches. One window when
  // k is 1; an empty one (fewer kept groups than updates) makes no update.
  std::vector<std::pair<size_t, size_t>> windows;
  std::string sample_caption;    // the cycle reward's caption of the first image, when made
  double rollout_seconds = 0.0;  // sampling the rollouts
  double score_seconds = 0.0;    // rewards, advantages, old and reference log-probs
  double remote_wait_seconds = 0.0;  // of score_seconds, waiting for remote rewards
};

// Cuts batch.micro and batch.windows from the global batch's kept groups (batch.kept of every
// rank): this rank's rollouts in each micro-batch, and each one's rollouts and tokens per task
// over all ranks (the loss divides by them: grpo/loss.h). Collective.
void cut_micro_batches(const GrpoRecipe& recipe, int64_t image_tokens, dist::ProcessGroup& group,
                       StepBatch& batch);

// Rolls out, scores and prepares step `step` of this rank. Collective: every rank calls it.
// Remote rewards are asked as soon as the rollouts they score exist (images before the answers
// are sampled) and awaited only once the step's own scoring, old log-probs and (when no group
// can be dropped) reference log-probs are done. Throws reward::RemoteRewardError on every rank
// when a remote reward failed on any: no step is trained on a partial reward.
StepBatch make_step_batch(StageInputs& inputs, const GrpoRecipe& recipe, int step,
                          dist::ProcessGroup& group);

}  // namespace corl::grpo
