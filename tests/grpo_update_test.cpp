// One GRPO update's gradient (grpo/update.h) against the gradient of TRL's loss, computed here
// one share at a time as TRL's ranks compute it on their micro-batches (trl/trainer/
// grpo_trainer.py, _compute_loss), from log-probs scored here one rollout at a time with a plain
// log-softmax: for each loss type, with gradient accumulation 1, 2 (even micro-batches, where
// TRL's definition is corl's for every type) and 3 (uneven: TRL's for bnpo and dapo, the
// whole step's for grpo and dr_grpo, whose rule does not depend on the cut), and with the step
// split over two Gloo ranks (threads of this process) whose gradients are summed. Only float
// reassociation may separate them.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

#include "corl/dist/launch.h"
#include "corl/grpo/update.h"
#include "corl/rollout/rollout.h"
#include "tiny_model.h"

namespace corl::grpo {
namespace {

using corl::testing::tiny_config;
using corl::testing::tiny_model;
using corl::testing::tokenizer;

constexpr int64_t kGroups = 4;
constexpr int64_t kG = 3;

GrpoRecipe recipe_for(const std::string& loss_type, int accumulation) {
  GrpoRecipe r;
  r.task = "unified";
  r.grpo.num_generations = kG;
  // kGroups groups of kG over `accumulation` micro-steps (completions per micro-step, as TRL).
  r.grpo.per_device_train_batch_size = static_cast<int>(kGroups * kG / accumulation);
  r.grpo.loss_type = loss_type;
  r.grpo.beta = 0.04;
  r.grpo.epsilon = 0.2;
  r.grpo.epsilon_high = 0.28;
  r.grpo.max_completion_length = 6;
  r.grpo.mm2t_loss_weight = 2.0;
  r.grpo.cfg_weight = 1.0;
  r.optim.gradient_accumulation_steps = accumulation;
  return r;
}

model::UnifiedModel reference_model() {
  auto m = tiny_model();
  torch::NoGradGuard no_grad;
  torch::manual_seed(9);
  for (auto& p : m->parameters()) p.add_(0.05 * torch::randn_like(p));
  return m;
}

// A step's rollouts, advantages and old log-probs: 4 groups of 3, images of random codes and
// answers sampled by the tiny model (ragged lengths).
StepBatch global_batch(model::UnifiedModel& model, const model::SequenceBuilder& builder) {
  const auto config = tiny_config();
  StepBatch b;
  torch::manual_seed(3);
  b.images.codes = torch::randint(config.image_vocab_size, {kGroups * kG, config.image_tokens});
  const std::vector<std::string> prompts{"a photo of a red circle", "a photo of a blue square",
                                         "a photo of a green triangle", "a photo of a red diamond"};
  for (int64_t i = 0; i < kGroups * kG; ++i) b.images.prompts.push_back(prompts[i / kG]);
  rollout::RolloutOptions options;
  options.num_generations = kG;
  options.max_completion_length = 6;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(4);
  std::vector<torch::Tensor> images(kGroups,
                                    torch::rand({3, config.image_size, config.image_size}));
  b.answers = rollout::roll_answers(model, builder, images,
                                    {"What color?", "What shape?", "How many?", "What color?"},
                                    options, generator);
  b.advantages.images = torch::randn({kGroups * kG});
  b.advantages.answers = torch::randn({kGroups * kG});
  b.kept = torch::ones({kGroups}, torch::kBool);
  torch::NoGradGuard no_grad;
  // Old log-probs away from the current ones, so that some ratios leave the trust region.
  b.old_images = rollout::score_images(model, builder, b.images.prompts, b.images.codes, {}).logp +
                 0.3 * torch::randn({kGroups * kG, config.image_tokens});
  const auto answers = rollout::score_completions(model, builder, b.answers.sequences);
  b.old_answers = answers.logp + 0.3 * torch::randn(answers.logp.sizes()) * answers.mask;
  return b;
}

// The groups `groups` of the global batch, in that order (a rank's share).
StepBatch share_of(const StepBatch& g, const std::vector<int64_t>& groups) {
  std::vector<int64_t> rows;
  for (int64_t group : groups) {
    for (int64_t k = 0; k < kG; ++k) rows.push_back(group * kG + k);
  }
  const auto index = torch::tensor(rows, torch::kInt64);
  StepBatch b;
  b.images.codes = g.images.codes.index_select(0, index);
  for (int64_t i : rows) {
    b.images.prompts.push_back(g.images.prompts[i]);
    b.answers.sequences.push_back(g.answers.sequences[i]);
    b.answers.lengths.push_back(g.answers.lengths[i]);
  }
  b.advantages.images = g.advantages.images.index_select(0, index);
  b.advantages.answers = g.advantages.answers.index_select(0, index);
  b.old_images = g.old_images.index_select(0, index);
  b.old_answers = g.old_answers.index_select(0, index);
  b.kept = torch::ones({static_cast<int64_t>(groups.size())}, torch::kBool);
  return b;
}

void score_reference(model::UnifiedModel& reference, const model::SequenceBuilder& builder,
                     StepBatch& b) {
  torch::NoGradGuard no_grad;
  for (auto& micro : b.micro) {
    if (micro.rollouts.empty()) continue;
    const auto index = torch::tensor(micro.rollouts, torch::kInt64);
    std::vector<std::string> prompts;
    std::vector<model::Sequence> sequences;
    for (int64_t i : micro.rollouts) {
      prompts.push_back(b.images.prompts[i]);
      sequences.push_back(b.answers.sequences[i]);
    }
    micro.ref_images = rollout::score_images(reference, builder, prompts,
                                             b.images.codes.index_select(0, index), {})
                           .logp;
    micro.ref_answers = rollout::score_completions(reference, builder, sequences).logp;
  }
}

std::vector<torch::Tensor> gradients(const model::UnifiedModel& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model->parameters()) {
    out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  }
  return out;
}

// A policy and its reference, made before any rank's thread starts (they draw from the global
// generator).
struct Models {
  StageInputs in;
  model::UnifiedModel reference = reference_model();
  Models() {
    in.policy.model = tiny_model();
    in.builder = std::make_unique<model::SequenceBuilder>(tokenizer(), tiny_config());
  }
};

// The gradient of one process's (or one rank's) accumulate_gradients over `batch`: the update
// of window `window` of its generation batch.
std::vector<torch::Tensor> staged_gradient(const GrpoRecipe& recipe, StepBatch batch,
                                           dist::ProcessGroup& group, Models& models,
                                           size_t window = 0) {
  auto& in = models.in;
  cut_micro_batches(recipe, tiny_config().image_tokens, group, batch);
  score_reference(models.reference, *in.builder, batch);
  const auto result = accumulate_gradients(in, recipe, batch, window, false, group);
  EXPECT_TRUE(result.finite);
  dist::all_reduce_gradients(group, in.policy.model->parameters(), 1 << 20);
  return gradients(in.policy.model);
}

// Each rollout's log-probs by itself: one unpadded sequence through the model, a log-softmax of
// the head's logits at every position that has a target. [R, width] and its mask.
std::pair<torch::Tensor, torch::Tensor> one_by_one(model::UnifiedModel& model,
                                                   const model::SequenceBuilder& builder,
                                                   const std::vector<model::Sequence>& sequences,
                                                   bool images) {
  std::vector<torch::Tensor> rows;
  int64_t width = 0;
  for (const auto& sequence : sequences) {
    const auto b = builder.collate({sequence}, model::Padding::kRight);
    const auto hidden = model->hidden_states(model->embed(b), b.attention_mask, b.position_ids)[0];
    const auto targets = (images ? b.image_targets : b.text_targets)[0];
    const auto at = targets.ne(model::kIgnore).nonzero().squeeze(1);
    const auto h = hidden.index_select(0, at);
    const auto logits = images ? model->image_logits(h) : model->text_logits(h);
    rows.push_back(torch::log_softmax(logits.to(torch::kFloat32), -1)
                       .gather(1, targets.index_select(0, at).unsqueeze(1))
                       .squeeze(1));
    width = std::max(width, rows.back().size(0));
  }
  auto mask = torch::zeros({static_cast<int64_t>(rows.size()), width});
  std::vector<torch::Tensor> padded;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t n = rows[i].size(0);
    padded.push_back(torch::cat({rows[i], torch::zeros({width - n})}));
    mask[i].narrow(0, 0, n).fill_(1.0);
  }
  return {torch::stack(padded), mask};
}

// Row indices of each rank's share of each micro-batch: shares[m][r].
using Shares = std::vector<std::vector<std::vector<int64_t>>>;

// One task's loss as TRL's ranks compute it: each rank's _compute_loss on each of its
// micro-batches (its own rows; l the masked per-token loss of DESIGN section 4's equation),
//   grpo     ((l m).sum(-1) / m.sum(-1).clamp(min=1)).mean() / gradient_accumulation_steps
//   bnpo     (l m).sum() / m.sum().clamp(min=1) / gradient_accumulation_steps
//   dr_grpo  (l m).sum() / (rows x max_completion_length) / gradient_accumulation_steps
//   dapo     (l m).sum() / (num_items_in_batch / num_processes x gradient_accumulation_steps /
//            steps_per_generation), num_items_in_batch the whole generation batch's tokens (every
//            row of `mask`), `per_generation` = steps_per_generation / gradient_accumulation_steps
// summed over its micro-batches (`shares`: one update's); DDP averages the ranks. A share with
// no rows adds nothing.
torch::Tensor trl_task_loss(const std::string& type, const torch::Tensor& logp,
                            const torch::Tensor& old, const torch::Tensor& ref,
                            const torch::Tensor& adv, const torch::Tensor& mask, int64_t length,
                            const Shares& shares, double per_generation = 1.0) {
  const auto ratio = torch::exp(logp - old);
  const auto a = adv.unsqueeze(1);
  const auto d = ref - logp;
  const auto l =
      (-torch::min(ratio * a, ratio.clamp(0.8, 1.28) * a) + 0.04 * (torch::exp(d) - d - 1.0)) *
      mask;
  const double accumulation = static_cast<double>(shares.size());
  const double ranks = static_cast<double>(shares.at(0).size());
  torch::Tensor total = torch::zeros({});
  for (const auto& micro : shares) {
    for (const auto& rows : micro) {
      if (rows.empty()) continue;
      const auto index = torch::tensor(rows, torch::kInt64);
      const auto lr = l.index_select(0, index);
      const auto mr = mask.index_select(0, index);
      if (type == "grpo") {
        total = total + (lr.sum(1) / mr.sum(1).clamp_min(1.0)).mean() / accumulation;
      } else if (type == "bnpo") {
        total = total + lr.sum() / mr.sum().clamp_min(1.0) / accumulation;
      } else if (type == "dr_grpo") {
        total = total + lr.sum() / static_cast<double>(lr.size(0) * length) / accumulation;
      } else {
        total = total + lr.sum() / (mask.sum().clamp_min(1.0) / ranks / per_generation);
      }
    }
  }
  return total / ranks;
}

std::vector<torch::Tensor> trl_gradient(const GrpoRecipe& recipe, const StepBatch& b,
                                        const Shares& shares) {
  const double per_generation = static_cast<double>(steps_per_generation_of(recipe)) /
                                recipe.optim.gradient_accumulation_steps;
  auto model = tiny_model();
  auto reference = reference_model();
  const model::SequenceBuilder builder(tokenizer(), tiny_config());
  model->train();
  std::vector<model::Sequence> image_sequences;
  for (size_t i = 0; i < b.images.prompts.size(); ++i) {
    image_sequences.push_back(builder.text_to_image(b.images.prompts[i], b.images.codes[i]));
  }
  const auto [image_logp, image_mask] = one_by_one(model, builder, image_sequences, true);
  const auto [answer_logp, answer_mask] = one_by_one(model, builder, b.answers.sequences, false);
  torch::Tensor ref_images, ref_answers;
  {
    torch::NoGradGuard no_grad;
    ref_images = one_by_one(reference, builder, image_sequences, true).first;
    ref_answers = one_by_one(reference, builder, b.answers.sequences, false).first;
  }
  const auto& type = recipe.grpo.loss_type;
  const auto loss =
      trl_task_loss(type, image_logp, b.old_images, ref_images, b.advantages.images, image_mask,
                    tiny_config().image_tokens, shares, per_generation) +
      recipe.grpo.mm2t_loss_weight *
          trl_task_loss(type, answer_logp, b.old_answers.narrow(1, 0, answer_logp.size(1)),
                        ref_answers, b.advantages.answers, answer_mask, 6, shares,
                        per_generation);
  loss.backward();
  return gradients(model);
}

// max |a - b| over every parameter, and the largest element of b.
std::pair<double, double> difference(const std::vector<torch::Tensor>& a,
                                     const std::vector<torch::Tensor>& b) {
  double worst = 0.0;
  double largest = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
    largest = std::max(largest, b[i].abs().max().item<double>());
  }
  return {worst, largest};
}

// float32 reassociation of sums over a few hundred terms through a two-layer model: far below
// this bound (about 1700 units in the last place of the largest element); a wrong normaliser
// moves the gradient by whole factors.
constexpr double kRelative = 1e-4;

// Groups of each rank's share of each micro-batch -> their rollouts.
Shares rollouts_of(const std::vector<std::vector<std::vector<int64_t>>>& groups) {
  Shares out;
  for (const auto& micro : groups) {
    out.emplace_back();
    for (const auto& share : micro) {
      out.back().emplace_back();
      for (int64_t g : share) {
        for (int64_t k = 0; k < kG; ++k) out.back().back().push_back(g * kG + k);
      }
    }
  }
  return out;
}

bool cut_free(const std::string& type) { return type == "grpo" || type == "dr_grpo"; }

TEST(GrpoUpdate, StepGradientIsTrlsForAnyAccumulation) {
  at::set_num_threads(1);
  auto model = tiny_model();
  const model::SequenceBuilder builder(tokenizer(), tiny_config());
  const StepBatch batch = global_batch(model, builder);
  ASSERT_GT(batch.answers.lengths[0] + batch.answers.lengths[5], 2);
  const Shares whole = rollouts_of({{{0, 1, 2, 3}}});
  for (const std::string type : {"grpo", "dr_grpo", "dapo", "bnpo"}) {
    for (int accumulation : {1, 2, 3}) {
      SCOPED_TRACE(type + ", accumulation " + std::to_string(accumulation));
      const auto recipe = recipe_for(type, accumulation);
      dist::ProcessGroup one;
      Models models;
      const auto got = staged_gradient(recipe, batch, one, models);
      // Accumulation 3 over 4 groups: micro-batches {0}, {1}, {2, 3}.
      const Shares cut = accumulation == 1   ? whole
                         : accumulation == 2 ? rollouts_of({{{0, 1}}, {{2, 3}}})
                                             : rollouts_of({{{0}}, {{1}}, {{2, 3}}});
      const auto want = trl_gradient(recipe, batch, accumulation == 3 && cut_free(type) ? whole : cut);
      const auto [worst, largest] = difference(got, want);
      ASSERT_GT(largest, 0.0);
      EXPECT_LE(worst, kRelative * largest) << "largest element " << largest;
    }
  }
}

// steps_per_generation twice gradient_accumulation_steps: the generation batch's 4 groups are
// trained in two updates, groups {0, 1} then {2, 3} (TRL's slices of the buffered batch), each
// update's gradient TRL's loss over its own micro-batches, dapo's divisor the generation
// batch's tokens scaled to one update.
TEST(GrpoUpdate, EachUpdateOfAGenerationBatchIsTrlsOverItsSlice) {
  at::set_num_threads(1);
  auto model = tiny_model();
  const model::SequenceBuilder builder(tokenizer(), tiny_config());
  const StepBatch batch = global_batch(model, builder);
  for (const std::string type : {"grpo", "dr_grpo", "dapo", "bnpo"}) {
    for (int accumulation : {1, 2}) {
      auto recipe = recipe_for(type, accumulation);
      recipe.grpo.steps_per_generation = 2 * accumulation;
      recipe.grpo.per_device_train_batch_size = static_cast<int>(kGroups * kG / (2 * accumulation));
      const Shares slices[2] = {
          accumulation == 1 ? rollouts_of({{{0, 1}}}) : rollouts_of({{{0}}, {{1}}}),
          accumulation == 1 ? rollouts_of({{{2, 3}}}) : rollouts_of({{{2}}, {{3}}})};
      for (size_t window = 0; window < 2; ++window) {
        SCOPED_TRACE(type + ", accumulation " + std::to_string(accumulation) + ", update " +
                     std::to_string(window + 1));
        dist::ProcessGroup one;
        Models models;
        const auto got = staged_gradient(recipe, batch, one, models, window);
        const auto want = trl_gradient(recipe, batch, slices[window]);
        const auto [worst, largest] = difference(got, want);
        ASSERT_GT(largest, 0.0);
        EXPECT_LE(worst, kRelative * largest) << "largest element " << largest;
      }
    }
  }
}

TEST(GrpoUpdate, TwoRanksSumToTheStepGradient) {
  if (!dist::backend_built("gloo")) GTEST_SKIP() << "built without Gloo's headers";
  at::set_num_threads(1);
  auto model = tiny_model();
  const model::SequenceBuilder builder(tokenizer(), tiny_config());
  const StepBatch batch = global_batch(model, builder);
  for (const std::string type : {"grpo", "dapo", "bnpo"}) {
    // Accumulation 3: micro-batches {0}, {1}, {2, 3}; rank 0 holds groups 0 and 2, rank 1
    // groups 1 and 3 (round robin), so each rank misses a micro-batch entirely.
    SCOPED_TRACE(type);
    auto recipe = recipe_for(type, 3);
    recipe.grpo.per_device_train_batch_size = static_cast<int>(kGroups / 2 * kG / 3);
    const int port = dist::free_port();
    std::vector<std::vector<torch::Tensor>> per_rank(2);
    std::vector<Models> models(2);
    std::vector<std::thread> ranks;
    for (int rank = 0; rank < 2; ++rank) {
      ranks.emplace_back([&, rank] {
        dist::RankEnv env;
        env.rank = rank;
        env.world_size = 2;
        env.master_port = port;
        dist::ProcessGroup group(env, "gloo", std::chrono::seconds(60));
        per_rank[rank] =
            staged_gradient(recipe, share_of(batch, {rank, rank + 2}), group, models[rank]);
      });
    }
    for (auto& t : ranks) t.join();
    // bnpo: each rank's own token mean of each micro-batch, averaged over ranks (TRL's local
    // batch), so rank 0's lone group of micro-batch 0 weighs as much as the pair of
    // micro-batch 2.
    const Shares cut = cut_free(type) ? rollouts_of({{{0, 1, 2, 3}}})
                                      : rollouts_of({{{0}, {}}, {{}, {1}}, {{2}, {3}}});
    const auto want = trl_gradient(recipe, batch, cut);
    for (int rank = 0; rank < 2; ++rank) {
      const auto [worst, largest] = difference(per_rank[rank], want);
      EXPECT_LE(worst, kRelative * largest) << "rank " << rank << ", largest " << largest;
    }
  }
}

}  // namespace
}  // namespace corl::grpo

namespace corl::grpo {
namespace {

TEST(ClipGradients, NormIsMeasuredWithOrWithoutClipping) {
  auto a = torch::zeros({1}, torch::requires_grad());
  auto b = torch::zeros({2}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f});
  b.mutable_grad() = torch::tensor({0.0f, 4.0f});
  EXPECT_DOUBLE_EQ(clip_gradients({a, b}, 0.0), 5.0);  // no clipping: measured, unchanged
  EXPECT_FLOAT_EQ(b.grad()[1].item<float>(), 4.0f);
  EXPECT_NEAR(clip_gradients({a, b}, 1.0), 5.0, 1e-6);  // clipped to norm 1
  EXPECT_NEAR(b.grad()[1].item<float>(), 0.8f, 1e-5);
  // A finite loss can still have a non-finite gradient: without clipping it must show.
  b.mutable_grad() = torch::tensor({0.0f, std::numeric_limits<float>::infinity()});
  EXPECT_FALSE(std::isfinite(clip_gradients({a, b}, 0.0)));
  b.mutable_grad() = torch::tensor({std::nanf(""), 1.0f});
  EXPECT_FALSE(std::isfinite(clip_gradients({a, b}, 0.0)));
}

}  // namespace
}  // namespace corl::grpo
