// How a GRPO step's loss is divided over micro-batches and ranks (grpo/loss.h): the divisors by
// hand, and shares that sum to the step's loss as TRL's GRPOTrainer defines it for each
// loss_type, written here from TRL's formulas with plain LibTorch.
#include <gtest/gtest.h>

#include <vector>

#include "corl/grpo/loss.h"

namespace corl::grpo {
namespace {

TEST(LossDivisor, HandWorked) {
  // Micro-batch 0: 3 rollouts, 10 tokens; micro-batch 1: 2 rollouts, 4 tokens. Length 7.
  const std::vector<TokenCounts> micro{{3, 10}, {2, 4}};
  EXPECT_EQ(loss_divisor(LossType::kGrpo, micro, 0, 7), 5.0);
  EXPECT_EQ(loss_divisor(LossType::kGrpo, micro, 1, 7), 5.0);
  EXPECT_EQ(loss_divisor(LossType::kDrGrpo, micro, 1, 7), 35.0);
  EXPECT_EQ(loss_divisor(LossType::kDapo, micro, 0, 7), 14.0);
  EXPECT_EQ(loss_divisor(LossType::kBnpo, micro, 0, 7), 20.0);  // its 10 tokens x 2 micro-batches
  EXPECT_EQ(loss_divisor(LossType::kBnpo, micro, 1, 7), 8.0);
  EXPECT_EQ(loss_divisor(LossType::kDapo, {{0, 0}}, 0, 7), 1.0);  // an empty step sums to 0
  EXPECT_EQ(numerator_of(LossType::kGrpo), ops::Aggregation::kSeqMeanTokenMean);
  EXPECT_EQ(numerator_of(LossType::kDapo), ops::Aggregation::kTokenMean);
  EXPECT_THROW(loss_type_of("dpo"), std::exception);
}

// DESIGN section 4's per-token loss, from its equation.
torch::Tensor per_token(const torch::Tensor& logp, const torch::Tensor& old,
                        const torch::Tensor& ref, const torch::Tensor& adv, double beta) {
  const auto ratio = torch::exp(logp - old);
  const auto a = adv.unsqueeze(1);
  const auto surrogate = -torch::min(ratio * a, ratio.clamp(0.8, 1.28) * a);
  const auto d = ref - logp;
  return surrogate + beta * (torch::exp(d) - d - 1.0);
}

// TRL's _compute_loss over the whole step (trl/trainer/grpo_trainer.py), every micro-batch of
// every rank together: grpo ((l m).sum(-1) / m.sum(-1).clamp(1)).mean(); dr_grpo (l m).sum() /
// (rows x max_completion_length); dapo (l m).sum() / num_items_in_batch; bnpo each micro-batch's
// (l m).sum() / m.sum() over the gradient accumulation steps.
torch::Tensor trl_step_loss(LossType type, const torch::Tensor& l, const torch::Tensor& m,
                            const std::vector<std::vector<int64_t>>& micro, int64_t length) {
  switch (type) {
    case LossType::kGrpo:
      return ((l * m).sum(1) / m.sum(1).clamp_min(1.0)).mean();
    case LossType::kDrGrpo:
      return (l * m).sum() / static_cast<double>(l.size(0) * length);
    case LossType::kDapo:
      return (l * m).sum() / m.sum();
    case LossType::kBnpo: {
      torch::Tensor total = torch::zeros({}, l.options());
      for (const auto& rows : micro) {
        const auto index = torch::tensor(rows, torch::kInt64);
        const auto lm = l.index_select(0, index) * m.index_select(0, index);
        total = total + lm.sum() / m.index_select(0, index).sum().clamp_min(1.0);
      }
      return total / static_cast<double>(micro.size());
    }
  }
  return {};
}

TEST(LossDivisor, SharesSumToTrlsStepLossAndGradient) {
  torch::manual_seed(5);
  const int64_t N = 7, T = 6, length = 9;
  const auto old = -torch::rand({N, T}, torch::kFloat64) * 2;
  const auto ref = -torch::rand({N, T}, torch::kFloat64) * 2;
  const auto adv = torch::randn({N}, torch::kFloat64);
  auto mask = torch::ones({N, T}, torch::kFloat64);
  mask[1].narrow(0, 2, 4).zero_();
  mask[4].narrow(0, 1, 5).zero_();
  mask[6].narrow(0, 3, 3).zero_();
  const auto start = (old + 0.3 * torch::randn({N, T}, torch::kFloat64)).detach();
  // Uneven micro-batches, each split over two "ranks" as the stage splits them.
  const std::vector<std::vector<int64_t>> micro{{0, 1, 2, 3}, {4}, {5, 6}};
  const std::vector<std::vector<std::vector<int64_t>>> shares{{{0, 2}, {1, 3}}, {{4}}, {{5}, {6}}};

  for (LossType type : {LossType::kGrpo, LossType::kBnpo, LossType::kDrGrpo, LossType::kDapo}) {
    SCOPED_TRACE(static_cast<int>(type));
    auto whole = start.clone().requires_grad_();
    const auto expected =
        trl_step_loss(type, per_token(whole, old, ref, adv, 0.05), mask, micro, length);
    expected.backward();

    std::vector<TokenCounts> counts;
    for (const auto& rows : micro) {
      TokenCounts c;
      for (int64_t i : rows) {
        c.rollouts += 1;
        c.tokens += mask[i].sum().item<double>();
      }
      counts.push_back(c);
    }
    auto parts = start.clone().requires_grad_();
    double sum = 0.0;
    for (size_t m = 0; m < micro.size(); ++m) {
      for (const auto& rows : shares[m]) {
        const auto index = torch::tensor(rows, torch::kInt64);
        ops::GrpoLossOptions options;
        options.epsilon_low = 0.2;
        options.epsilon_high = 0.28;
        options.beta = 0.05;
        options.aggregation = numerator_of(type);
        options.normaliser = loss_divisor(type, counts, m, length);
        const auto l = ops::grpo_loss(parts.index_select(0, index), old.index_select(0, index),
                                      ref.index_select(0, index), adv.index_select(0, index),
                                      mask.index_select(0, index), options);
        l.loss.backward();
        sum += l.loss.item<double>();
      }
    }
    EXPECT_NEAR(sum, expected.item<double>(), 1e-12);
    EXPECT_LT((parts.grad() - whole.grad()).abs().max().item<double>(), 1e-12);
  }
}

}  // namespace
}  // namespace corl::grpo
