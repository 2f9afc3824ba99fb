#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "corl/ops/group_advantages.h"

namespace corl::ops {
namespace {

torch::Tensor rewards(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat64);
}

void expect_values(const torch::Tensor& actual, const std::vector<double>& expected,
                   double tolerance = 1e-6) {
  ASSERT_EQ(actual.dim(), 1);
  ASSERT_EQ(actual.size(0), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual[i].item<double>(), expected[i], tolerance) << "at " << i;
  }
}

TEST(GroupAdvantages, HandWorkedGroup) {
  // {1, 2, 3, 6}: mean 3, squared deviations {4, 1, 0, 9} sum to 14, unbiased variance 14 / 3.
  const double std = std::sqrt(14.0 / 3.0);
  const torch::Tensor advantages =
      group_advantages(rewards({1, 2, 3, 6}), 4, RewardScale::kGroup, /*eps=*/0.0);
  EXPECT_EQ(advantages.scalar_type(), torch::kFloat32);
  expect_values(advantages, {-2 / std, -1 / std, 0, 3 / std});

  const double eps = 1e-4;
  expect_values(group_advantages(rewards({1, 2, 3, 6}), 4, RewardScale::kGroup, eps),
                {-2 / (std + eps), -1 / (std + eps), 0, 3 / (std + eps)});
}

TEST(GroupAdvantages, GroupsAreIndependent) {
  // Second group {10, 10, 20, 20}: mean 15, unbiased variance 4 * 25 / 3, std 10 / sqrt(3).
  const double std_a = std::sqrt(14.0 / 3.0);
  const double half = 5.0 / (10.0 / std::sqrt(3.0));
  expect_values(
      group_advantages(rewards({1, 2, 3, 6, 10, 10, 20, 20}), 4, RewardScale::kGroup, 0.0),
      {-2 / std_a, -1 / std_a, 0, 3 / std_a, -half, -half, half, half});
}

TEST(GroupAdvantages, NoScaleSubtractsGroupMean) {
  expect_values(group_advantages(rewards({1, 2, 3, 6, 10, 10, 20, 20}), 4, RewardScale::kNone),
                {-2, -1, 0, 3, -5, -5, 5, 5});
}

TEST(GroupAdvantages, SingleRolloutGroupsAreZero) {
  for (RewardScale scale : {RewardScale::kGroup, RewardScale::kNone}) {
    const torch::Tensor advantages = group_advantages(rewards({0.5, -3, 7}), 1, scale, 0.0);
    expect_values(advantages, {0, 0, 0}, 0.0);
  }
}

TEST(GroupAdvantages, EqualRewardsGiveExactZeros) {
  // 0.1 * 3 / 3 != 0.1 in floating point, and with eps = 0 the spread would be divided by itself.
  const torch::Tensor advantages =
      group_advantages(rewards({0.1, 0.1, 0.1, 0, 1, 2}), 3, RewardScale::kGroup, 0.0);
  expect_values(advantages, {0, 0, 0, -1, 0, 1});
  EXPECT_TRUE(torch::all(advantages.narrow(0, 0, 3).eq(0)).item<bool>());
}

TEST(GroupAdvantages, AcceptsAnyFloatingDtype) {
  for (auto dtype : {torch::kFloat16, torch::kBFloat16, torch::kFloat32}) {
    const torch::Tensor r = torch::tensor({1.0, 2.0, 3.0, 6.0}).to(dtype);
    expect_values(group_advantages(r, 2, RewardScale::kNone), {-0.5, 0.5, -1.5, 1.5});
  }
}

TEST(GroupAdvantages, RejectsBadShapes) {
  EXPECT_THROW(group_advantages(rewards({1, 2, 3}), 2, RewardScale::kGroup), std::invalid_argument);
  EXPECT_THROW(group_advantages(rewards({1, 2}), 0, RewardScale::kGroup), std::invalid_argument);
  EXPECT_THROW(group_advantages(torch::zeros({2, 2}), 2, RewardScale::kGroup),
               std::invalid_argument);
  EXPECT_THROW(group_advantages(torch::zeros({4}, torch::kInt64), 2, RewardScale::kGroup),
               std::invalid_argument);
  try {
    group_advantages(rewards({1, 2, 3}), 2, RewardScale::kGroup);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("groups of 2"), std::string::npos) << e.what();
  }
}

TEST(ZeroSpreadGroups, FlagsGroupsWithEqualRewards) {
  const torch::Tensor r = rewards({1, 1, 1, 0, 1, 0, 0.5, 0.5, 0.5 + 1e-12});
  const torch::Tensor flags = zero_spread_groups(r, 3);
  ASSERT_EQ(flags.scalar_type(), torch::kBool);
  ASSERT_EQ(flags.sizes(), torch::IntArrayRef({3}));
  EXPECT_TRUE(flags[0].item<bool>());
  EXPECT_FALSE(flags[1].item<bool>());
  EXPECT_TRUE(flags[2].item<bool>());  // within the default tolerance of 1e-9
  EXPECT_FALSE(zero_spread_groups(r, 3, /*tolerance=*/0.0)[2].item<bool>());
}

TEST(ZeroSpreadGroups, RejectsBadShapes) {
  EXPECT_THROW(zero_spread_groups(rewards({1, 2, 3}), 2), std::invalid_argument);
  EXPECT_THROW(zero_spread_groups(rewards({1, 2}), -1), std::invalid_argument);
}

}  // namespace
}  // namespace corl::ops
