#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "corl/ops/token_logprobs.h"

namespace corl::ops {
namespace {

constexpr int64_t kIgnore = -100;  // model::kIgnore

// The plain definition, in float64: a full log-softmax and a gather.
torch::Tensor reference_logprobs(const torch::Tensor& logits, const torch::Tensor& targets) {
  const torch::Tensor logp = torch::log_softmax(logits.to(torch::kFloat64), -1);
  return logp.gather(-1, targets.clamp_min(0).unsqueeze(-1))
      .squeeze(-1)
      .masked_fill(targets.lt(0), 0.0);
}

// Random targets in [0, vocab) with every third position ignored.
torch::Tensor random_targets(torch::IntArrayRef shape, int64_t vocab) {
  torch::Tensor targets = torch::randint(vocab, shape, torch::kInt64);
  torch::Tensor flat = targets.view({-1});
  for (int64_t i = 0; i < flat.size(0); i += 3) flat[i] = kIgnore;
  return targets;
}

TEST(TokenLogprobs, MatchesLogSoftmaxGatherAcrossChunks) {
  torch::manual_seed(0);
  const int64_t vocab = 11;
  const torch::Tensor logits = 3.0 * torch::randn({3, 5, vocab});
  const torch::Tensor targets = random_targets({3, 5}, vocab);
  const torch::Tensor expected = reference_logprobs(logits, targets);
  // 15 rows: chunks of 4 leave a short last chunk; 1 and 2048 are the extremes.
  for (int64_t chunk : {1, 4, 2048}) {
    const torch::Tensor logp = token_logprobs(logits, targets, chunk);
    ASSERT_EQ(logp.sizes(), targets.sizes());
    EXPECT_EQ(logp.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::allclose(logp.to(torch::kFloat64), expected, 1e-6, 1e-5)) << chunk;
    EXPECT_TRUE(torch::all(logp.masked_select(targets.lt(0)).eq(0)).item<bool>());
  }
}

TEST(TokenLogprobs, GradientMatchesAutogradOfReference) {
  torch::manual_seed(1);
  const int64_t vocab = 7;
  const torch::Tensor values = 2.0 * torch::randn({3, 5, vocab});
  const torch::Tensor targets = random_targets({3, 5}, vocab);
  const torch::Tensor upstream = torch::randn({3, 5});

  torch::Tensor logits = values.clone().requires_grad_(true);
  (token_logprobs(logits, targets, /*chunk_rows=*/4) * upstream).sum().backward();

  torch::Tensor reference = values.to(torch::kFloat64).requires_grad_(true);
  (reference_logprobs(reference, targets) * upstream.to(torch::kFloat64)).sum().backward();

  ASSERT_TRUE(logits.grad().defined());
  EXPECT_EQ(logits.grad().sizes(), logits.sizes());
  EXPECT_TRUE(torch::allclose(logits.grad().to(torch::kFloat64), reference.grad(), 1e-6, 1e-5));
  // Ignored rows pass nothing back.
  const torch::Tensor ignored_rows = logits.grad().index({targets.lt(0)});
  EXPECT_TRUE(torch::all(ignored_rows.eq(0)).item<bool>());
}

TEST(TokenLogprobs, HandWorkedRow) {
  // exp(logits) = {1, 2, 3}: p = {1/6, 2/6, 3/6}, so log p[2] = log(1/2), and the gradient
  // onehot(2) - p = {-1/6, -2/6, 1/2}.
  torch::Tensor logits = torch::tensor({0.0, std::log(2.0), std::log(3.0)}, torch::kFloat32)
                             .reshape({1, 3})
                             .requires_grad_(true);
  const torch::Tensor targets = torch::tensor({2}, torch::kInt64);
  const torch::Tensor logp = token_logprobs(logits, targets);
  EXPECT_NEAR(logp.item<float>(), std::log(0.5), 1e-6);
  logp.sum().backward();
  const torch::Tensor grad = logits.grad();
  EXPECT_NEAR(grad[0][0].item<float>(), -1.0 / 6.0, 1e-6);
  EXPECT_NEAR(grad[0][1].item<float>(), -2.0 / 6.0, 1e-6);
  EXPECT_NEAR(grad[0][2].item<float>(), 0.5, 1e-6);
}

TEST(TokenLogprobs, LargeLogitsStayFinite) {
  // Logits {1e4, 1e4 - 1, 0, -1e4}: relative to the top one the row is {0, -1, -1e4, -2e4}, so
  // log p[1] = -1 - log(1 + e^-1) to float precision, and exp(1e4) would overflow.
  torch::Tensor logits = torch::tensor({1e4, 1e4 - 1.0, 0.0, -1e4}, torch::kFloat32)
                             .reshape({1, 4})
                             .requires_grad_(true);
  const torch::Tensor logp = token_logprobs(logits, torch::tensor({1}, torch::kInt64));
  EXPECT_NEAR(logp.item<float>(), -1.0 - std::log1p(std::exp(-1.0)), 1e-6);
  logp.sum().backward();
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>());
  const double p1 = std::exp(-1.0) / (1.0 + std::exp(-1.0));
  EXPECT_NEAR(logits.grad()[0][1].item<float>(), 1.0 - p1, 1e-6);
  EXPECT_NEAR(logits.grad()[0][0].item<float>(), -(1.0 - p1), 1e-6);
}

TEST(TokenLogprobs, GradientMatchesFiniteDifferences) {
  // Central differences of sum(g * logp) on a tiny float64 case. The output is float32, so a step
  // of 1e-2 balances its rounding (~1e-7 / h) against the truncation error (~h^2).
  torch::manual_seed(2);
  const torch::Tensor values = torch::randn({2, 4}, torch::kFloat64);
  const torch::Tensor targets = torch::tensor({3, 0}, torch::kInt64);
  const torch::Tensor upstream = torch::tensor({0.7, -1.3}, torch::kFloat64);
  auto objective = [&](const torch::Tensor& x) {
    return (token_logprobs(x, targets).to(torch::kFloat64) * upstream).sum().item<double>();
  };

  torch::Tensor logits = values.clone().requires_grad_(true);
  (token_logprobs(logits, targets).to(torch::kFloat64) * upstream).sum().backward();
  EXPECT_EQ(logits.grad().scalar_type(), torch::kFloat64);

  const double h = 1e-2;
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 4; ++j) {
      torch::Tensor plus = values.clone();
      torch::Tensor minus = values.clone();
      plus[i][j] += h;
      minus[i][j] -= h;
      const double numeric = (objective(plus) - objective(minus)) / (2.0 * h);
      EXPECT_NEAR(logits.grad()[i][j].item<double>(), numeric, 2e-4) << i << ", " << j;
    }
  }
}

TEST(TokenLogprobs, LowPrecisionLogitsAreScoredInFloat32) {
  torch::manual_seed(3);
  const torch::Tensor values = (4.0 * torch::randn({6, 50})).to(torch::kBFloat16);
  const torch::Tensor targets = random_targets({6}, 50);
  torch::Tensor logits = values.clone().requires_grad_(true);
  const torch::Tensor logp = token_logprobs(logits, targets, /*chunk_rows=*/4);
  EXPECT_EQ(logp.scalar_type(), torch::kFloat32);
  // The bf16 values are exact in float64, so only float32 rounding separates the two.
  EXPECT_TRUE(
      torch::allclose(logp.to(torch::kFloat64), reference_logprobs(values, targets), 1e-6, 1e-5));
  logp.sum().backward();
  EXPECT_EQ(logits.grad().scalar_type(), torch::kBFloat16);
}

TEST(TokenLogprobs, RejectsMismatchedArguments) {
  const torch::Tensor logits = torch::zeros({2, 3, 5});
  EXPECT_THROW(token_logprobs(logits, torch::zeros({2, 4}, torch::kInt64)), std::invalid_argument);
  EXPECT_THROW(token_logprobs(logits, torch::zeros({2, 3}, torch::kInt32)), std::invalid_argument);
  EXPECT_THROW(token_logprobs(logits, torch::zeros({2, 3}, torch::kInt64), 0),
               std::invalid_argument);
  EXPECT_THROW(token_entropy(torch::zeros({2, 3}, torch::kInt64)), std::invalid_argument);
}

TEST(TokenLogprobs, EntropyMatchesReference) {
  torch::manual_seed(4);
  const torch::Tensor logits = 3.0 * torch::randn({3, 5, 9});
  const torch::Tensor logp = torch::log_softmax(logits.to(torch::kFloat64), -1);
  const torch::Tensor expected = -(logp.exp() * logp).sum(-1);
  const torch::Tensor entropy = token_entropy(logits, /*chunk_rows=*/4);
  ASSERT_EQ(entropy.sizes(), torch::IntArrayRef({3, 5}));
  EXPECT_EQ(entropy.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(entropy.requires_grad());
  EXPECT_TRUE(torch::allclose(entropy.to(torch::kFloat64), expected, 1e-6, 1e-5));
}

TEST(TokenLogprobs, EntropyOfHandWorkedRows) {
  // Uniform over 4: log 4. A -inf logit is an impossible token: {0, 0, -inf} is uniform over 2.
  const double inf = std::numeric_limits<double>::infinity();
  const torch::Tensor uniform = torch::full({1, 4}, 1e4);
  EXPECT_NEAR(token_entropy(uniform).item<float>(), std::log(4.0), 1e-6);
  const torch::Tensor masked = torch::tensor({0.0, 0.0, -inf}, torch::kFloat32).reshape({1, 3});
  EXPECT_NEAR(token_entropy(masked).item<float>(), std::log(2.0), 1e-6);
  // Shifting every logit by 1e4 changes nothing: p = {1, e^-1} / (1 + e^-1).
  const double p0 = 1.0 / (1.0 + std::exp(-1.0));
  const double h = -(p0 * std::log(p0) + (1 - p0) * std::log(1 - p0));
  const torch::Tensor shifted = torch::tensor({1e4, 1e4 - 1.0}, torch::kFloat32).reshape({1, 2});
  EXPECT_NEAR(token_entropy(shifted).item<float>(), h, 1e-6);
}

}  // namespace
}  // namespace corl::ops
