#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "corl/ops/grpo_loss.h"

namespace corl::ops {
namespace {

torch::Tensor matrix(const std::vector<std::vector<double>>& rows,
                     torch::ScalarType dtype = torch::kFloat32) {
  std::vector<torch::Tensor> out;
  for (const auto& row : rows) out.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(out).to(dtype);
}

void expect_matrix(const torch::Tensor& actual, const std::vector<std::vector<double>>& expected,
                   double tolerance = 1e-6) {
  ASSERT_EQ(actual.dim(), 2);
  ASSERT_EQ(actual.size(0), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(actual.size(1), static_cast<int64_t>(expected[i].size()));
    for (size_t j = 0; j < expected[i].size(); ++j) {
      EXPECT_NEAR(actual[i][j].item<double>(), expected[i][j], tolerance) << i << ", " << j;
    }
  }
}

// B = 2 rollouts of T = 3 tokens, eps = 0.2, old_logp = 0 so that rho = exp(logp):
//
//   row 0, A = +1, rho {1, 1.5, 0.5}:
//     t0  min(1 * 1, 1 * 1)         = 1     loss -1
//     t1  min(1.5 * 1, 1.2 * 1)     = 1.2   loss -1.2  clipped above, no gradient
//     t2  min(0.5 * 1, 0.8 * 1)     = 0.5   loss -0.5  (below 1 - eps, but A > 0: not clipped)
//   row 1, A = -2, rho {0.5, 1.5, -}, last token masked out:
//     t0  min(0.5 * -2, 0.8 * -2)   = -1.6  loss 1.6   clipped below, no gradient
//     t1  min(1.5 * -2, 1.2 * -2)   = -3    loss 3     (above 1 + eps, but A < 0: not clipped)
//
// Sum 1.9 over 5 tokens; row means -2.7 / 3 = -0.9 and 4.6 / 2 = 2.3.
// The masked token has logp - old_logp = 100: exp overflows float32 there, and must not matter.
struct HandCase {
  torch::Tensor logp = torch::log(matrix({{1.0, 1.5, 0.5}, {0.5, 1.5, 1.0}}));
  torch::Tensor old_logp = matrix({{0, 0, 0}, {0, 0, 0}});
  torch::Tensor advantages = torch::tensor({1.0, -2.0}, torch::kFloat32);
  torch::Tensor mask = torch::tensor({1, 1, 1, 1, 1, 0}, torch::kBool).reshape({2, 3});

  HandCase() {
    logp[1][2] = 50.0;
    old_logp[1][2] = -50.0;
    logp.requires_grad_(true);
  }

  GrpoLoss run(Aggregation aggregation, int64_t max_completion_length = 0) {
    GrpoLossOptions options;
    options.aggregation = aggregation;
    options.max_completion_length = max_completion_length;
    return grpo_loss(logp, old_logp, torch::Tensor(), advantages, mask, options);
  }
};

TEST(GrpoLoss, HandWorkedPerTokenLossAndStatistics) {
  HandCase c;
  const GrpoLoss out = c.run(Aggregation::kTokenMean);
  expect_matrix(out.per_token, {{-1.0, -1.2, -0.5}, {1.6, 3.0, 0.0}});
  EXPECT_FALSE(out.per_token.requires_grad());
  EXPECT_EQ(out.tokens, 5);
  EXPECT_NEAR(out.clip_low, 1.0 / 5.0, 1e-9);
  EXPECT_NEAR(out.clip_high, 1.0 / 5.0, 1e-9);
  EXPECT_NEAR(out.clip_fraction, 2.0 / 5.0, 1e-9);
  EXPECT_EQ(out.kl, 0.0);
}

TEST(GrpoLoss, TokenMeanHandWorked) {
  HandCase c;
  const GrpoLoss out = c.run(Aggregation::kTokenMean);
  EXPECT_NEAR(out.loss.item<double>(), 1.9 / 5.0, 1e-6);
  out.loss.backward();
  // Unclipped tokens: d(-A rho)/d logp = -A rho, over 5 tokens.
  expect_matrix(c.logp.grad(), {{-1.0 / 5, 0.0, -0.5 / 5}, {0.0, 3.0 / 5, 0.0}});
}

TEST(GrpoLoss, SeqMeanTokenMeanHandWorked) {
  HandCase c;
  const GrpoLoss out = c.run(Aggregation::kSeqMeanTokenMean);
  EXPECT_NEAR(out.loss.item<double>(), (-0.9 + 2.3) / 2.0, 1e-6);
  out.loss.backward();
  // Row 0 has 3 tokens, row 1 has 2; then the mean over 2 rows.
  expect_matrix(c.logp.grad(), {{-1.0 / 6, 0.0, -0.5 / 6}, {0.0, 3.0 / 4, 0.0}});
}

TEST(GrpoLoss, SeqMeanTokenSumNormHandWorked) {
  {
    HandCase c;  // L = T = 3: 1.9 / (2 * 3)
    const GrpoLoss out = c.run(Aggregation::kSeqMeanTokenSumNorm);
    EXPECT_NEAR(out.loss.item<double>(), 1.9 / 6.0, 1e-6);
    out.loss.backward();
    expect_matrix(c.logp.grad(), {{-1.0 / 6, 0.0, -0.5 / 6}, {0.0, 3.0 / 6, 0.0}});
  }
  HandCase c;  // L = 4: 1.9 / (2 * 4)
  EXPECT_NEAR(c.run(Aggregation::kSeqMeanTokenSumNorm, 4).loss.item<double>(), 1.9 / 8.0, 1e-6);
}

TEST(GrpoLoss, FloatMaskEqualsBoolMask) {
  HandCase c;
  const double by_bool = c.run(Aggregation::kSeqMeanTokenMean).loss.item<double>();
  c.mask = c.mask.to(torch::kFloat32);
  EXPECT_NEAR(c.run(Aggregation::kSeqMeanTokenMean).loss.item<double>(), by_bool, 1e-7);
}

TEST(GrpoLoss, AsymmetricClipRange) {
  // eps_low 0.2, eps_high 0.28 (DAPO's clip-higher). A = +1: rho 1.25 stays (-1.25, gradient
  // -1.25), rho 1.3 becomes 1.28. A = -1: rho 0.75 becomes 0.8 (loss 0.8), rho 0.85 stays
  // (loss 0.85, gradient 0.85).
  torch::Tensor logp = torch::log(matrix({{1.25, 1.3}, {0.75, 0.85}})).requires_grad_(true);
  const torch::Tensor old_logp = torch::zeros({2, 2});
  const torch::Tensor advantages = torch::tensor({1.0, -1.0}, torch::kFloat32);
  const torch::Tensor mask = torch::ones({2, 2}, torch::kBool);
  GrpoLossOptions options;
  options.epsilon_low = 0.2;
  options.epsilon_high = 0.28;
  options.aggregation = Aggregation::kTokenMean;
  GrpoLoss out = grpo_loss(logp, old_logp, torch::Tensor(), advantages, mask, options);
  expect_matrix(out.per_token, {{-1.25, -1.28}, {0.8, 0.85}});
  EXPECT_NEAR(out.clip_high, 0.25, 1e-9);
  EXPECT_NEAR(out.clip_low, 0.25, 1e-9);
  out.loss.backward();
  expect_matrix(logp.grad(), {{-1.25 / 4, 0.0}, {0.0, 0.85 / 4}});

  // A tighter lower bound, 1 - 0.1 = 0.9, now clips rho 0.85 too: loss 0.9.
  options.epsilon_low = 0.1;
  out = grpo_loss(logp, old_logp, torch::Tensor(), advantages, mask, options);
  expect_matrix(out.per_token, {{-1.25, -1.28}, {0.9, 0.9}});
  EXPECT_NEAR(out.clip_low, 0.5, 1e-9);
}

TEST(GrpoLoss, K3KlPenalty) {
  // logp = old_logp and A = 0 leave only the penalty. ref - logp = 0.5 on every token:
  // k3 = e^0.5 - 0.5 - 1, and d k3 / d logp = 1 - e^0.5.
  const double k3 = std::exp(0.5) - 1.5;
  torch::Tensor logp = torch::full({2, 2}, -1.0).requires_grad_(true);
  const torch::Tensor old_logp = torch::full({2, 2}, -1.0);
  const torch::Tensor ref_logp = torch::full({2, 2}, -0.5);
  const torch::Tensor advantages = torch::zeros({2});
  const torch::Tensor mask = torch::tensor({1, 1, 1, 0}, torch::kBool).reshape({2, 2});
  GrpoLossOptions options;
  options.aggregation = Aggregation::kTokenMean;
  for (double beta : {0.1, 0.2}) {
    options.beta = beta;
    logp.mutable_grad() = torch::Tensor();
    const GrpoLoss out = grpo_loss(logp, old_logp, ref_logp, advantages, mask, options);
    EXPECT_NEAR(out.kl, k3, 1e-6);  // the statistic does not scale with beta
    EXPECT_NEAR(out.loss.item<double>(), beta * k3, 1e-6);
    out.loss.backward();
    const double g = beta * (1.0 - std::exp(0.5)) / 3.0;
    expect_matrix(logp.grad(), {{g, g}, {g, 0.0}});
  }
}

TEST(GrpoLoss, KlNeedsReferenceOnlyWhenBetaPositive) {
  const torch::Tensor x = torch::zeros({1, 2});
  const torch::Tensor a = torch::ones({1});
  const torch::Tensor mask = torch::ones({1, 2});
  GrpoLossOptions options;
  EXPECT_NO_THROW(grpo_loss(x, x, torch::Tensor(), a, mask, options));
  options.beta = 0.04;
  EXPECT_THROW(grpo_loss(x, x, torch::Tensor(), a, mask, options), std::invalid_argument);
}

TEST(GrpoLoss, EmptyRowsContributeNothing) {
  // Row 1 has no tokens: the sequence mean is over rows 0 and 2 only.
  // Row 0: rho 1, A 1 -> -1 per token. Row 2: rho 1, A 3 -> -3.
  torch::Tensor logp = torch::zeros({3, 2}).requires_grad_(true);
  const torch::Tensor old_logp = torch::zeros({3, 2});
  const torch::Tensor advantages = torch::tensor({1.0, 5.0, 3.0}, torch::kFloat32);
  const torch::Tensor mask = torch::tensor({1, 1, 0, 0, 1, 0}, torch::kBool).reshape({3, 2});
  GrpoLossOptions options;
  GrpoLoss out = grpo_loss(logp, old_logp, torch::Tensor(), advantages, mask, options);
  EXPECT_NEAR(out.loss.item<double>(), (-1.0 + -3.0) / 2.0, 1e-6);
  out.loss.backward();
  expect_matrix(logp.grad(), {{-1.0 / 4, -1.0 / 4}, {0.0, 0.0}, {-3.0 / 2, 0.0}});

  // No tokens at all: a zero loss that still backpropagates (zeros).
  for (Aggregation aggregation : {Aggregation::kTokenMean, Aggregation::kSeqMeanTokenMean,
                                  Aggregation::kSeqMeanTokenSumNorm}) {
    options.aggregation = aggregation;
    logp.mutable_grad() = torch::Tensor();
    out = grpo_loss(logp, old_logp, torch::Tensor(), advantages, torch::zeros({3, 2}), options);
    EXPECT_EQ(out.loss.item<double>(), 0.0);
    EXPECT_EQ(out.tokens, 0);
    ASSERT_TRUE(out.loss.requires_grad());
    out.loss.backward();
    EXPECT_TRUE(torch::all(logp.grad().eq(0)).item<bool>());
  }
}

// Every aggregation against a per-token loop over the formulas in the header, on random float64
// inputs with a mix of clipped and unclipped tokens, an empty row and a KL term.
TEST(GrpoLoss, GradientMatchesPlainFormula) {
  torch::manual_seed(5);
  const int64_t b = 4, t = 6;
  const double eps_low = 0.2, eps_high = 0.28, beta = 0.04;
  const torch::Tensor old_logp = -torch::rand({b, t}, torch::kFloat64) * 3.0;
  const torch::Tensor values = old_logp + 0.3 * torch::randn({b, t}, torch::kFloat64);
  const torch::Tensor ref_logp = old_logp + 0.1 * torch::randn({b, t}, torch::kFloat64);
  const torch::Tensor advantages = torch::randn({b}, torch::kFloat64);
  torch::Tensor mask = torch::rand({b, t}).gt(0.3);
  mask[2].fill_(false);

  auto lp = values.accessor<double, 2>();
  auto old = old_logp.accessor<double, 2>();
  auto ref = ref_logp.accessor<double, 2>();
  auto adv = advantages.accessor<double, 1>();
  auto m = mask.accessor<bool, 2>();
  // Per-token loss and its derivative in logp, unnormalised.
  std::vector<std::vector<double>> loss(b, std::vector<double>(t, 0.0));
  std::vector<std::vector<double>> grad(b, std::vector<double>(t, 0.0));
  std::vector<int> row_count(b, 0);
  int total = 0, clipped = 0;
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < t; ++j) {
      if (!m[i][j]) continue;
      const double rho = std::exp(lp[i][j] - old[i][j]);
      const double a = adv[i];
      const bool clip = (rho < 1 - eps_low && a < 0) || (rho > 1 + eps_high && a > 0);
      const double bound = rho < 1 ? 1 - eps_low : 1 + eps_high;
      const double d = ref[i][j] - lp[i][j];
      loss[i][j] = -(clip ? bound : rho) * a + beta * (std::exp(d) - d - 1);
      grad[i][j] = (clip ? 0.0 : -a * rho) + beta * (1 - std::exp(d));
      ++row_count[i];
      ++total;
      clipped += clip;
    }
  }
  ASSERT_GT(clipped, 0);
  ASSERT_LT(clipped, total);
  int rows = 0;
  for (int64_t i = 0; i < b; ++i) rows += row_count[i] > 0;

  for (Aggregation aggregation : {Aggregation::kTokenMean, Aggregation::kSeqMeanTokenMean,
                                  Aggregation::kSeqMeanTokenSumNorm}) {
    double expected_loss = 0.0;
    std::vector<std::vector<double>> expected_grad(b, std::vector<double>(t, 0.0));
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t j = 0; j < t; ++j) {
        double scale = 1.0 / (b * t);
        if (aggregation == Aggregation::kTokenMean) scale = 1.0 / total;
        if (aggregation == Aggregation::kSeqMeanTokenMean) {
          scale = row_count[i] > 0 ? 1.0 / (row_count[i] * rows) : 0.0;
        }
        expected_loss += loss[i][j] * scale;
        expected_grad[i][j] = grad[i][j] * scale;
      }
    }
    torch::Tensor logp = values.clone().requires_grad_(true);
    GrpoLossOptions options;
    options.epsilon_low = eps_low;
    options.epsilon_high = eps_high;
    options.beta = beta;
    options.aggregation = aggregation;
    const GrpoLoss out = grpo_loss(logp, old_logp, ref_logp, advantages, mask, options);
    EXPECT_NEAR(out.loss.item<double>(), expected_loss, 1e-12);
    EXPECT_NEAR(out.clip_fraction, static_cast<double>(clipped) / total, 1e-12);
    EXPECT_EQ(out.tokens, total);
    out.loss.backward();
    expect_matrix(logp.grad(), expected_grad, 1e-12);
  }
}

TEST(GrpoLoss, RejectsMismatchedShapes) {
  const torch::Tensor x = torch::zeros({2, 3});
  const torch::Tensor a = torch::zeros({2});
  const GrpoLossOptions options;
  auto expect_message = [](const auto& call, const std::string& word) {
    try {
      call();
      ADD_FAILURE() << "no exception for " << word;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_message([&] { grpo_loss(x, torch::zeros({2, 4}), {}, a, x, options); }, "old_logp");
  expect_message([&] { grpo_loss(x, x, {}, torch::zeros({3}), x, options); }, "advantages");
  expect_message([&] { grpo_loss(x, x, {}, a, torch::zeros({3}), options); }, "mask");
  expect_message([&] { grpo_loss(torch::zeros({6}), x, {}, a, x, options); }, "logp");
  GrpoLossOptions with_kl;
  with_kl.beta = 0.1;
  expect_message([&] { grpo_loss(x, x, torch::zeros({3, 2}), a, x, with_kl); }, "ref_logp");
}

// GSPO (TRL importance_sampling_level "sequence"): rho_i = exp(mean over row i's masked tokens of
// logp - old_logp), the same for each of its tokens. Ragged rows, eps = 0.2:
//   row 0, A = +1, 3 tokens, log-ratios {0.3, 0, -0.15}: mean 0.05, rho = e^0.05 = 1.051271,
//          inside the clip range: -1.051271 per token; d(-rho)/d logp_t = -rho / 3
//   row 1, A = -1, 2 tokens {-0.4, -0.2} (the third masked, its log-ratio 100): mean -0.3,
//          rho = e^-0.3 = 0.740818 < 0.8 with A < 0: clipped, 0.8 per token, no gradient
//   row 2, A = +1, no token: nothing
struct SequenceCase {
  torch::Tensor logp = matrix({{0.3, 0.0, -0.15}, {-0.4, -0.2, 50.0}, {1.0, 2.0, 3.0}});
  torch::Tensor old_logp = matrix({{0, 0, 0}, {0, 0, -50.0}, {0, 0, 0}});
  torch::Tensor advantages = torch::tensor({1.0, -1.0, 1.0}, torch::kFloat32);
  torch::Tensor mask = matrix({{1, 1, 1}, {1, 1, 0}, {0, 0, 0}});
  SequenceCase() { logp.requires_grad_(true); }
  GrpoLoss run(Aggregation aggregation) {
    GrpoLossOptions options;
    options.aggregation = aggregation;
    options.sequence_level = true;
    return grpo_loss(logp, old_logp, torch::Tensor(), advantages, mask, options);
  }
};

TEST(GrpoLoss, SequenceLevelRatioRaggedHandWorked) {
  const double s0 = std::exp(0.05);
  SequenceCase c;
  GrpoLoss out = c.run(Aggregation::kSeqMeanTokenMean);
  expect_matrix(out.sequence_ratio.unsqueeze(1), {{s0}, {std::exp(-0.3)}, {1.0}});
  expect_matrix(out.per_token, {{-s0, -s0, -s0}, {0.8, 0.8, 0.0}, {0, 0, 0}});
  EXPECT_NEAR(out.loss.item<double>(), (-s0 + 0.8) / 2.0, 1e-6);
  EXPECT_NEAR(out.clip_low, 2.0 / 5.0, 1e-9);
  out.loss.backward();
  // Two rows with tokens; row 0's mean over its 3 tokens is -rho, whose derivative in each
  // logp_t is -rho / 3.
  expect_matrix(c.logp.grad(), {{-s0 / 6, -s0 / 6, -s0 / 6}, {0, 0, 0}, {0, 0, 0}});

  SequenceCase d;  // token sum over the 5 tokens (DAPO)
  out = d.run(Aggregation::kTokenMean);
  EXPECT_NEAR(out.loss.item<double>(), (-3 * s0 + 1.6) / 5.0, 1e-6);
  out.loss.backward();
  expect_matrix(d.logp.grad(), {{-s0 / 5, -s0 / 5, -s0 / 5}, {0, 0, 0}, {0, 0, 0}});
}

TEST(GrpoLoss, SequenceLevelEqualsTokenLevelForOneTokenRows) {
  HandCase c;
  c.mask = torch::tensor({1, 0, 0, 1, 0, 0}, torch::kBool).reshape({2, 3});
  const double token = c.run(Aggregation::kTokenMean).loss.item<double>();
  GrpoLossOptions options;
  options.aggregation = Aggregation::kTokenMean;
  options.sequence_level = true;
  EXPECT_NEAR(grpo_loss(c.logp, c.old_logp, torch::Tensor(), c.advantages, c.mask, options)
                  .loss.item<double>(),
              token, 1e-6);
}

// On policy (old_logp = logp: the only update of a batch at num_iterations 1) every ratio is 1,
// and the sequence-level gradient, sum_t (rho_i / |y_i|) A_i d logp_it spread back over the
// rollout's tokens by each aggregation, equals the token-level one: per token -A_i m_it / D,
// D = T (dapo), |y_i| N (grpo), L N (Dr.GRPO). Ragged rows.
TEST(GrpoLoss, SequenceLevelGradientEqualsTokenLevelOnPolicy) {
  const auto mask = matrix({{1, 1, 1}, {1, 1, 0}, {1, 1, 0}, {1, 0, 0}});
  const std::vector<double> a = {1.0, -2.0, 0.5, 3.0};
  const std::vector<double> lengths = {3, 2, 2, 1};
  const double tokens = 8, rollouts = 4, budget = 3;
  for (const auto aggregation : {Aggregation::kTokenMean, Aggregation::kSeqMeanTokenMean,
                                 Aggregation::kSeqMeanTokenSumNorm}) {
    std::vector<std::vector<double>> expected(4, std::vector<double>(3, 0.0));
    for (int i = 0; i < 4; ++i) {
      for (int t = 0; t < lengths[i]; ++t) {
        const double divisor = aggregation == Aggregation::kTokenMean ? tokens
                               : aggregation == Aggregation::kSeqMeanTokenMean
                                   ? lengths[i] * rollouts
                                   : budget * rollouts;
        expected[i][t] = -a[i] / divisor;
      }
    }
    for (const bool sequence : {false, true}) {
      auto logp =
          matrix({{-0.3, -1.2, -0.7}, {-2.0, -0.1, -0.5}, {-1.0, -1.5, -1.0}, {-0.9, 0.0, 0.0}});
      const auto old_logp = logp.clone();
      logp.requires_grad_(true);
      GrpoLossOptions options;
      options.aggregation = aggregation;
      options.max_completion_length = 3;
      options.sequence_level = sequence;
      const auto out = grpo_loss(logp, old_logp, torch::Tensor(),
                                 torch::tensor(a, torch::kFloat64).to(torch::kFloat32), mask,
                                 options);
      out.loss.backward();
      expect_matrix(logp.grad(), expected);
    }
  }
}

TEST(GrpoLoss, AllTokensMaskedIsZeroAndFinite) {
  for (const bool sequence : {false, true}) {
    SequenceCase c;
    c.mask = torch::zeros({3, 3});
    GrpoLossOptions options;
    options.aggregation = Aggregation::kTokenMean;
    options.sequence_level = sequence;
    options.policy_weight = torch::zeros({3, 3});
    const GrpoLoss out =
        grpo_loss(c.logp, c.old_logp, torch::Tensor(), c.advantages, c.mask, options);
    EXPECT_EQ(out.loss.item<double>(), 0.0);
    EXPECT_EQ(out.tokens, 0);
    out.loss.backward();
    EXPECT_TRUE(torch::isfinite(c.logp.grad()).all().item<bool>());
    EXPECT_EQ(c.logp.grad().abs().sum().item<double>(), 0.0);
  }
}

// The policy weight multiplies the clipped surrogate (TRL: per_token_loss x entropy_mask x
// importance_sampling_ratio) but not the KL, and leaves the token counts alone. HandCase's
// per-token losses {-1, -1.2, -0.5; 1.6, 3, -} weighed {1, 0, 2; 0.5, 1, 1}: sum 1.8 over the
// same 5 tokens.
TEST(GrpoLoss, PolicyWeightHandWorked) {
  HandCase c;
  GrpoLossOptions options;
  options.aggregation = Aggregation::kTokenMean;
  options.policy_weight = matrix({{1, 0, 2}, {0.5, 1, 1}});
  GrpoLoss out = grpo_loss(c.logp, c.old_logp, torch::Tensor(), c.advantages, c.mask, options);
  expect_matrix(out.per_token, {{-1.0, 0.0, -1.0}, {0.8, 3.0, 0.0}});
  EXPECT_NEAR(out.loss.item<double>(), 1.8 / 5.0, 1e-6);
  EXPECT_EQ(out.tokens, 5);
  out.loss.backward();
  expect_matrix(c.logp.grad(), {{-1.0 / 5, 0.0, -1.0 / 5}, {0.0, 3.0 / 5, 0.0}});

  // A [B, 1] weight (a sequence-level correction) broadcasts over the row's tokens.
  HandCase d;
  options.policy_weight = matrix({{0.5}, {2.0}});
  out = grpo_loss(d.logp, d.old_logp, torch::Tensor(), d.advantages, d.mask, options);
  expect_matrix(out.per_token, {{-0.5, -0.6, -0.25}, {3.2, 6.0, 0.0}});

  // KL stays whole where the policy term is weighed 0: logp = old, ref - logp = 0.5.
  const auto logp = torch::zeros({1, 2});
  options.beta = 0.1;
  options.policy_weight = torch::zeros({1, 2});
  out = grpo_loss(logp, logp, torch::full({1, 2}, 0.5), torch::ones({1}), torch::ones({1, 2}),
                  options);
  EXPECT_NEAR(out.loss.item<double>(), 0.1 * (std::exp(0.5) - 1.5), 1e-6);
  options.policy_weight = torch::zeros({2, 2});
  EXPECT_THROW(grpo_loss(logp, logp, torch::full({1, 2}, 0.5), torch::ones({1}),
                         torch::ones({1, 2}), options),
               std::invalid_argument);
}

}  // namespace
}  // namespace corl::ops
