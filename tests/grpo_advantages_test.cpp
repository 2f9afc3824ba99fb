// The unified stage's advantages against values worked by hand, and which groups carry a signal.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "corl/grpo/advantages.h"

namespace corl::grpo {
namespace {

torch::Tensor rewards(const std::vector<double>& v) { return torch::tensor(v, torch::kDouble); }

std::vector<double> values(const torch::Tensor& t) {
  const auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::vector<bool> flags(const torch::Tensor& t) {
  std::vector<bool> out;
  for (int64_t i = 0; i < t.numel(); ++i) out.push_back(t[i].item<bool>());
  return out;
}

void expect_near(const torch::Tensor& got, const std::vector<double>& want, double tol = 1e-6) {
  const auto v = values(got);
  ASSERT_EQ(v.size(), want.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], want[i], tol) << "element " << i;
}

// Group of two with rewards {1, 0}: mean 1/2, unbiased std sqrt(1/2), so A = +-(1/2)/(sqrt(1/2)
// + 1e-4) = +-0.70700...
const double kPair = 0.5 / (std::sqrt(0.5) + 1e-4);

TEST(UnifiedAdvantages, PerTaskGroupOfTwoIsAllSignal) {
  // Image rewards split, answer rewards equal: |A_t2i| + |A_mm2t| is the same for both rollouts,
  // yet image 0 is better than image 1.
  const AdvantageSettings s{2, ops::RewardScale::kGroup, 0.8};
  const auto a =
      unified_advantages(rewards({1, 0}), rewards({0.5, 0.5}), UnifiedAdvantage::kPerTask, s);
  expect_near(a.images, {kPair, -kPair});
  expect_near(a.answers, {0, 0});
  EXPECT_EQ(flags(a.no_signal), std::vector<bool>{false});
}

TEST(UnifiedAdvantages, BinaryRewardsSplitHalfAndHalfAreSignal) {
  // Two groups of four: answers right half the time in group 0 (images equal), nothing varies in
  // group 1.
  const AdvantageSettings s{4, ops::RewardScale::kGroup, 0.8};
  const auto r_t2i = rewards({0.3, 0.3, 0.3, 0.3, 0.7, 0.7, 0.7, 0.7});
  const auto r_mm2t = rewards({1, 0, 1, 0, 1, 1, 1, 1});
  for (auto mode : {UnifiedAdvantage::kPerTask, UnifiedAdvantage::kSharedAdvantage,
                    UnifiedAdvantage::kSharedReward}) {
    const auto a = unified_advantages(r_t2i, r_mm2t, mode, s);
    EXPECT_EQ(flags(a.no_signal), (std::vector<bool>{false, true})) << static_cast<int>(mode);
  }
  // Per task, lambda A_mm2t: mean 1/2, std sqrt(1/3), A = +-0.8 (1/2) / (sqrt(1/3) + 1e-4).
  const double c = 0.8 * 0.5 / (std::sqrt(1.0 / 3.0) + 1e-4);
  const auto a = unified_advantages(r_t2i, r_mm2t, UnifiedAdvantage::kPerTask, s);
  expect_near(a.answers, {c, -c, c, -c, 0, 0, 0, 0});
  expect_near(a.images, std::vector<double>(8, 0.0));
}

TEST(UnifiedAdvantages, NoSignalOnlyWhenBothTasksHaveNone) {
  const AdvantageSettings s{2, ops::RewardScale::kGroup, 0.8};
  // Group 0: both flat; group 1: images vary; group 2: answers vary.
  const auto r_t2i = rewards({0.2, 0.2, 0.1, 0.9, 0.4, 0.4});
  const auto r_mm2t = rewards({1, 1, 0, 0, 1, 0});
  for (auto mode : {UnifiedAdvantage::kPerTask, UnifiedAdvantage::kSharedAdvantage}) {
    const auto a = unified_advantages(r_t2i, r_mm2t, mode, s);
    EXPECT_EQ(flags(a.no_signal), (std::vector<bool>{true, false, false}))
        << static_cast<int>(mode);
  }
}

TEST(UnifiedAdvantages, AdvantagesThatCancelCarryNoSignal) {
  // lambda 1, a group of two with mirrored rewards: A_t2i = {+c, -c}, A_mm2t = {-c, +c} (c =
  // kPair), so the shared advantage A_t2i + A_mm2t is {0, 0} although both tasks' rewards vary;
  // the shared reward r_t2i + r_mm2t = {1, 1} has no spread. Per task, image 0 is pushed up and
  // answer 0 down: signal.
  const AdvantageSettings s{2, ops::RewardScale::kGroup, 1.0};
  const auto r_t2i = rewards({1, 0});
  const auto r_mm2t = rewards({0, 1});
  const auto shared = unified_advantages(r_t2i, r_mm2t, UnifiedAdvantage::kSharedAdvantage, s);
  expect_near(shared.images, {0, 0}, 0.0);
  EXPECT_EQ(flags(shared.no_signal), std::vector<bool>{true});
  const auto reward = unified_advantages(r_t2i, r_mm2t, UnifiedAdvantage::kSharedReward, s);
  EXPECT_EQ(flags(reward.no_signal), std::vector<bool>{true});
  const auto per_task = unified_advantages(r_t2i, r_mm2t, UnifiedAdvantage::kPerTask, s);
  expect_near(per_task.images, {kPair, -kPair});
  expect_near(per_task.answers, {-kPair, kPair});
  EXPECT_EQ(flags(per_task.no_signal), std::vector<bool>{false});
}

TEST(UnifiedAdvantages, LambdaZeroSilencesAnAnswerOnlySpread) {
  // lambda 0: group 0's images are equal and only its answers vary, so every advantage it
  // contributes is 0 (images: 0; answers: 0 x A_mm2t) in every mode; group 1's images vary.
  const AdvantageSettings s{2, ops::RewardScale::kGroup, 0.0};
  const auto r_t2i = rewards({0.5, 0.5, 1, 0});
  const auto r_mm2t = rewards({1, 0, 1, 1});
  for (auto mode : {UnifiedAdvantage::kPerTask, UnifiedAdvantage::kSharedAdvantage,
                    UnifiedAdvantage::kSharedReward}) {
    const auto a = unified_advantages(r_t2i, r_mm2t, mode, s);
    expect_near(a.answers.narrow(0, 0, 2), {0, 0}, 0.0);
    expect_near(a.images, {0, 0, kPair, -kPair});
    EXPECT_EQ(flags(a.no_signal), (std::vector<bool>{true, false})) << static_cast<int>(mode);
  }
}

TEST(UnifiedAdvantages, SharedRewardCombinesRewardsFirst) {
  // r = r_t2i + 0.8 r_mm2t = {1.3, 0.5}: one advantage for image i and answer i.
  const AdvantageSettings s{2, ops::RewardScale::kGroup, 0.8};
  const auto a =
      unified_advantages(rewards({0.5, 0.5}), rewards({1, 0}), UnifiedAdvantage::kSharedReward, s);
  const double d = 0.4 / (std::sqrt(0.32) + 1e-4);  // (1.3 - 0.9) / (std of {1.3, 0.5} + eps)
  expect_near(a.images, {d, -d});
  expect_near(a.answers, {d, -d});
  // Rewards that cancel in the sum carry no signal for the shared advantage.
  const auto flat =
      unified_advantages(rewards({0.8, 0.0}), rewards({0, 1}), UnifiedAdvantage::kSharedReward, s);
  EXPECT_EQ(flags(flat.no_signal), std::vector<bool>{true});
  expect_near(flat.images, {0, 0});
}

TEST(UnifiedAdvantages, SharedAdvantageSumsEachTasks) {
  const AdvantageSettings s{2, ops::RewardScale::kNone, 0.5};
  // Dr.GRPO scale: A_t2i = {+0.1, -0.1}, A_mm2t = {-0.5, +0.5}; A = A_t2i + 0.5 A_mm2t.
  const auto a = unified_advantages(rewards({0.6, 0.4}), rewards({0, 1}),
                                    UnifiedAdvantage::kSharedAdvantage, s);
  expect_near(a.images, {0.1 - 0.25, -0.1 + 0.25});
  expect_near(a.answers, {0.1 - 0.25, -0.1 + 0.25});
}

TEST(TaskAdvantages, OneTaskFillsItsSideOnly) {
  const AdvantageSettings s{2, ops::RewardScale::kGroup, 0.8};
  const auto images = task_advantages(rewards({1, 0, 3, 3}), true, s);
  expect_near(images.images, {kPair, -kPair, 0, 0});
  EXPECT_FALSE(images.answers.defined());
  EXPECT_EQ(flags(images.no_signal), (std::vector<bool>{false, true}));
  const auto answers = task_advantages(rewards({0, 1}), false, s);
  expect_near(answers.answers, {-kPair, kPair});
  EXPECT_FALSE(answers.images.defined());
}

// scale_rewards batch (TRL; PPO Lite): mean per group, std over the whole step. G = 2, rewards
// {1, 0 | 3, 3}: centred {0.5, -0.5, 0, 0}; the step's mean 1.75, squared deviations 0.5625 +
// 3.0625 + 1.5625 + 1.5625 = 6.75, unbiased variance 2.25, std 1.5.
TEST(RewardAdvantages, BatchScaleHandWorked) {
  const AdvantageSettings s{2, ops::RewardScale::kBatch, 0.8};
  const double a = 0.5 / (1.5 + 1e-4);
  expect_near(reward_advantages(rewards({1, 0, 3, 3}), s), {a, -a, 0, 0});
  // The group's own spread instead: the first group's +-kPair, the flat group 0.
  const AdvantageSettings group{2, ops::RewardScale::kGroup, 0.8};
  expect_near(reward_advantages(rewards({1, 0, 3, 3}), group), {kPair, -kPair, 0, 0});
}

TEST(RewardAdvantages, GroupOfOneHasNoAdvantage) {
  // A lone rollout is its group's mean: 0 under every scale, and no signal.
  for (const auto scale :
       {ops::RewardScale::kGroup, ops::RewardScale::kBatch, ops::RewardScale::kNone}) {
    const AdvantageSettings s{1, scale, 0.8};
    expect_near(reward_advantages(rewards({1, 3, 0}), s), {0, 0, 0});
    EXPECT_EQ(flags(task_advantages(rewards({1, 3, 0}), true, s).no_signal),
              (std::vector<bool>{true, true, true}));
  }
}

// multi_objective_aggregation normalize_then_sum (TRL, GDPO). G = 2, two rewards weighed 1 and
// 0.5: r1 = {1, 0 | 1, 1}, r2 = {0, 2 | 0, 4}. In-group normalised: r1 -> {+kPair, -kPair | 0, 0};
// r2 -> {-1/(sqrt 2 + eps), +1/(sqrt 2 + eps) | -2/(sqrt 8 + eps), +2/(sqrt 8 + eps)}. Their
// weighted sum is then centred and scaled by the step's mean and unbiased std.
TEST(RewardAdvantages, NormalizeThenSumHandWorked) {
  AdvantageSettings s{2, ops::RewardScale::kGroup, 0.8, RewardAggregation::kNormalizeThenSum};
  const double b = 1.0 / (std::sqrt(2.0) + 1e-4);
  const double c = 2.0 / (std::sqrt(8.0) + 1e-4);
  const std::vector<double> sum{kPair - 0.5 * b, -kPair + 0.5 * b, -0.5 * c, 0.5 * c};
  const auto r = task_reward({rewards({1, 0, 1, 1}), rewards({0, 2, 0, 4})}, {1.0, 0.5}, s);
  expect_near(r, sum);
  double mean = 0.0;
  for (double v : sum) mean += v / 4.0;
  double var = 0.0;
  for (double v : sum) var += (v - mean) * (v - mean) / 3.0;
  std::vector<double> want;
  for (double v : sum) want.push_back((v - mean) / (std::sqrt(var) + 1e-4));
  expect_near(reward_advantages(r, s), want, 1e-5);
  // scale_rewards does not enter it (TRL ignores it there).
  s.scale = ops::RewardScale::kNone;
  expect_near(reward_advantages(r, s), want, 1e-5);
  // sum_then_normalize: the plain weighted sum.
  s.aggregation = RewardAggregation::kSumThenNormalize;
  expect_near(task_reward({rewards({1, 0, 1, 1}), rewards({0, 2, 0, 4})}, {1.0, 0.5}, s),
              {1, 1, 1, 3});
}

}  // namespace
}  // namespace corl::grpo
