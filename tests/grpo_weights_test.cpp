// The policy term's weights against values worked by hand, with TRL's definitions
// (trl/trainer/grpo_trainer.py 1.x: get_high_entropy_mask, vllm_importance_sampling_mode).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "corl/grpo/weights.h"

namespace corl::grpo {
namespace {

torch::Tensor matrix(const std::vector<std::vector<double>>& rows) {
  std::vector<torch::Tensor> out;
  for (const auto& row : rows) out.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(out);
}

void expect_matrix(const torch::Tensor& got, const std::vector<std::vector<double>>& want) {
  const auto g = got.to(torch::kFloat64);
  ASSERT_EQ(g.size(0), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(g.size(1), static_cast<int64_t>(want[i].size()));
    for (size_t j = 0; j < want[i].size(); ++j) {
      EXPECT_NEAR(g[i][j].item<double>(), want[i][j], 1e-6) << i << ", " << j;
    }
  }
}

// Five masked tokens with entropies {0.1, 0.5, 0.2, 0.9, 0.4}; sorted {0.1, 0.2, 0.4, 0.5, 0.9}.
// rho = 0.4: the 0.6 quantile sits at position 0.6 x 4 = 2.4, so 0.4 + 0.4 x (0.5 - 0.4) = 0.44,
// and the two tokens at or above it (0.5, 0.9) are kept: the top 40%.
TEST(EntropyMask, TopQuantileHandWorked) {
  const auto entropy = matrix({{0.1, 0.5, 0.2}, {0.9, 0.4, 7.0}});
  const auto mask = matrix({{1, 1, 1}, {1, 1, 0}});  // the 7.0 is padding
  const auto pooled = entropy.masked_select(mask.gt(0));
  EXPECT_NEAR(entropy_threshold(pooled, 0.4), 0.44, 1e-12);
  expect_matrix(high_entropy_mask(entropy, mask, entropy_threshold(pooled, 0.4)),
                {{0, 1, 0}, {1, 0, 0}});
  // rho = 1 keeps every masked token (the threshold is the minimum), never the padding.
  expect_matrix(high_entropy_mask(entropy, mask, entropy_threshold(pooled, 1.0)),
                {{1, 1, 1}, {1, 1, 0}});
  // rho = 0 keeps only the highest-entropy token (TRL: "masks all but the highest").
  expect_matrix(high_entropy_mask(entropy, mask, entropy_threshold(pooled, 0.0)),
                {{0, 0, 0}, {1, 0, 0}});
}

TEST(EntropyMask, TiesAtTheThresholdAreKept) {
  // Image codes of a flat background share one entropy: >= keeps all of them.
  const auto entropy = matrix({{0.3, 0.3, 0.3, 0.3}});
  const auto mask = torch::ones({1, 4});
  expect_matrix(high_entropy_mask(entropy, mask, entropy_threshold(entropy.reshape(-1), 0.2)),
                {{1, 1, 1, 1}});
  EXPECT_THROW(entropy_threshold(torch::zeros({0}), 0.5), std::invalid_argument);
}

// old - sampler on row 0: {0, 0.5, -2}; row 1: {1.5, 0, (masked: the sampler's 30 is padding)}.
// Token ratios e^0 = 1, e^0.5 = 1.648721, e^-2 = 0.135335; e^1.5 = 4.481689, 1, 1 (masked d = 0).
// Sequence ratios exp(sum d): e^-1.5 = 0.223130 and e^1.5 = 4.481689.
struct MismatchCase {
  torch::Tensor old_logp = matrix({{-1.0, -0.5, -3.0}, {-0.5, -1.0, -1.0}});
  torch::Tensor sampler_logp = matrix({{-1.0, -1.0, -1.0}, {-2.0, -1.0, 30.0}});
  torch::Tensor mask = matrix({{1, 1, 1}, {1, 1, 0}});
  SamplerCorrection run(const std::string& mode) {
    return sampler_correction(old_logp, sampler_logp, mask, mode, 2.0);
  }
};

TEST(SamplerCorrection, TokenModesHandWorked) {
  MismatchCase c;
  const auto truncate = c.run("token_truncate");
  EXPECT_FALSE(truncate.sequence);
  expect_matrix(truncate.weight, {{1.0, 1.648721, 0.135335}, {2.0, 1.0, 1.0}});
  expect_matrix(truncate.over, {{0, 0, 0}, {1, 0, 0}});
  expect_matrix(c.run("token_mask").weight, {{1.0, 1.648721, 0.135335}, {0.0, 1.0, 1.0}});
}

TEST(SamplerCorrection, SequenceModesHandWorked) {
  MismatchCase c;
  const auto truncate = c.run("sequence_truncate");
  EXPECT_TRUE(truncate.sequence);
  expect_matrix(truncate.ratio, {{0.223130}, {4.481689}});
  expect_matrix(truncate.weight, {{0.223130}, {2.0}});
  expect_matrix(c.run("sequence_mask").weight, {{0.223130}, {0.0}});
}

TEST(SamplerCorrection, AllTokensMaskedGiveOne) {
  // No token in the loss: d = 0, so every ratio is 1 and nothing is over the cap.
  MismatchCase c;
  c.mask = torch::zeros({2, 3});
  expect_matrix(c.run("sequence_mask").weight, {{1.0}, {1.0}});
  expect_matrix(c.run("token_truncate").weight, {{1, 1, 1}, {1, 1, 1}});
  EXPECT_THROW(c.run("token"), std::invalid_argument);
}

// The quantile is the trained groups' alone: groups 0 (rows 0, 1) trained, group 1 (rows 2, 3)
// dropped by dynamic sampling. The trained tokens sorted {0.1, 0.2, 0.5, 0.9}; rho = 0.5: the 0.5
// quantile at position 1.5 is 0.2 + 0.5 x 0.3 = 0.35, keeping 0.5 and 0.9 (half the trained
// tokens). Pooled with the dropped group's {5, 6, 7, 8} it would be 0.9 + 0.5 x 4.1 = 2.95 and
// keep no trained token at all.
TEST(EntropyMask, QuantileOfTheTrainedGroupsOnly) {
  const auto entropy = matrix({{0.1, 0.5}, {0.2, 0.9}, {5, 6}, {7, 8}});
  const auto mask = torch::ones({4, 2}, torch::kFloat64);
  const auto trained = torch::tensor({true, true, false, false});
  dist::ProcessGroup one;
  const auto m = trained_entropy_mask(entropy, mask, trained, 0.5, one);
  expect_matrix(m.keep.narrow(0, 0, 2), {{0, 1}, {0, 1}});
  EXPECT_DOUBLE_EQ(m.kept_share, 0.5);
  // No trained token anywhere: nothing is kept.
  const auto none = trained_entropy_mask(entropy, mask, torch::zeros({4}, torch::kBool), 0.5, one);
  EXPECT_FALSE(none.keep.any().item<bool>());
  EXPECT_DOUBLE_EQ(none.kept_share, 0.0);
}

}  // namespace
}  // namespace corl::grpo
