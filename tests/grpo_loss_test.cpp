// How a GRPO step's loss is divided over micro-batches and ranks (grpo/loss.h): the divisors by
// hand, and the shares' sum against TRL's GRPOTrainer as TRL computes it, one micro-batch of one
// rank at a time (trl/trainer/grpo_trainer.py, _compute_loss), written here from its code with
// plain LibTorch: equal to it wherever TRL can cut the step (every share of every micro-batch
// as large), and for bnpo and dapo also where the step is cut unevenly. grpo and dr_grpo keep
// corl's rule there: the step's loss does not depend on the cut.
#include <gtest/gtest.h>

#include <vector>

#include "corl/grpo/loss.h"

namespace corl::grpo {
namespace {

TEST(LossDivisor, HandWorked) {
  // Micro-batch 0: 3 rollouts, 10 tokens; micro-batch 1: 2 rollouts, 4 tokens. Length 7. This
  // rank's share of the micro-batch: 1 rollout of 6 tokens, of 2 ranks.
  const std::vector<TokenCounts> micro{{3, 10}, {2, 4}};
  const TokenCounts local{1, 6};
  EXPECT_EQ(loss_divisor(LossType::kGrpo, micro, 7, local, 2), 5.0);
  EXPECT_EQ(loss_divisor(LossType::kDrGrpo, micro, 7, local, 2), 35.0);
  EXPECT_EQ(loss_divisor(LossType::kDapo, micro, 7, local, 2), 14.0);
  // bnpo: its own 6 tokens x 2 micro-batches x 2 ranks.
  EXPECT_EQ(loss_divisor(LossType::kBnpo, micro, 7, local, 2), 24.0);
  EXPECT_EQ(loss_divisor(LossType::kBnpo, micro, 7, {0, 0}, 2), 4.0);  // an empty share: sum 0
  EXPECT_EQ(loss_divisor(LossType::kDapo, {{0, 0}}, 7, {0, 0}, 1), 1.0);  // an empty step
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

// Row indices of each rank's share of each micro-batch: shares[m][r].
using Shares = std::vector<std::vector<std::vector<int64_t>>>;

// TRL's loss of one step, as its ranks compute it: each rank's _compute_loss on each of its
// micro-batches (its local rows only),
//   grpo     ((l m).sum(-1) / m.sum(-1).clamp(min=1)).mean() / gradient_accumulation_steps
//   bnpo     (l m).sum() / m.sum().clamp(min=1) / gradient_accumulation_steps
//   dr_grpo  (l m).sum() / (rows x max_completion_length) / gradient_accumulation_steps
//   dapo     (l m).sum() / (num_items_in_batch / num_processes x gradient_accumulation_steps /
//            steps_per_generation), num_items_in_batch the generation batch's tokens over every
//            process, steps_per_generation its default, gradient_accumulation_steps,
// summed over the accumulation steps; DDP then averages the ranks' gradients, so the step's
// loss is the ranks' mean.
torch::Tensor trl_step_loss(LossType type, const torch::Tensor& l, const torch::Tensor& m,
                            const Shares& shares, int64_t length) {
  const double accumulation = static_cast<double>(shares.size());
  const double ranks = static_cast<double>(shares.at(0).size());
  const double steps_per_generation = accumulation;
  const auto num_items_in_batch = m.sum().clamp_min(1.0);
  torch::Tensor total = torch::zeros({}, l.options());
  for (const auto& micro : shares) {
    for (const auto& rows : micro) {
      const auto index = torch::tensor(rows, torch::kInt64);
      const auto lr = l.index_select(0, index);
      const auto mr = m.index_select(0, index);
      torch::Tensor loss;
      switch (type) {
        case LossType::kGrpo:
          loss = ((lr * mr).sum(-1) / mr.sum(-1).clamp_min(1.0)).mean() / accumulation;
          break;
        case LossType::kBnpo:
          loss = (lr * mr).sum() / mr.sum().clamp_min(1.0) / accumulation;
          break;
        case LossType::kDrGrpo:
          loss = (lr * mr).sum() / static_cast<double>(lr.size(0) * length) / accumulation;
          break;
        case LossType::kDapo:
          loss = (lr * mr).sum() /
                 (num_items_in_batch / ranks * accumulation / steps_per_generation);
          break;
      }
      total = total + loss;
    }
  }
  return total / ranks;
}

// The step's loss as corl's shares (ops::grpo_loss with loss_divisor) add it up, and its
// gradient with respect to `logp`.
std::pair<double, torch::Tensor> corl_step(LossType type, const torch::Tensor& start,
                                           const torch::Tensor& old, const torch::Tensor& ref,
                                           const torch::Tensor& adv, const torch::Tensor& mask,
                                           const Shares& shares, int64_t length) {
  const auto counts_of = [&](const std::vector<int64_t>& rows) {
    TokenCounts c;
    for (int64_t i : rows) {
      c.rollouts += 1;
      c.tokens += mask[i].sum().item<double>();
    }
    return c;
  };
  std::vector<TokenCounts> step;
  for (const auto& micro : shares) {
    TokenCounts c;
    for (const auto& rows : micro) {
      c.rollouts += counts_of(rows).rollouts;
      c.tokens += counts_of(rows).tokens;
    }
    step.push_back(c);
  }
  const int ranks = static_cast<int>(shares.at(0).size());
  auto logp = start.clone().requires_grad_();
  double sum = 0.0;
  for (const auto& micro : shares) {
    for (const auto& rows : micro) {
      if (rows.empty()) continue;
      const auto index = torch::tensor(rows, torch::kInt64);
      ops::GrpoLossOptions options;
      options.epsilon_low = 0.2;
      options.epsilon_high = 0.28;
      options.beta = 0.05;
      options.aggregation = numerator_of(type);
      options.normaliser = loss_divisor(type, step, length, counts_of(rows), ranks);
      const auto l = ops::grpo_loss(logp.index_select(0, index), old.index_select(0, index),
                                    ref.index_select(0, index), adv.index_select(0, index),
                                    mask.index_select(0, index), options);
      l.loss.backward();
      sum += l.loss.item<double>();
    }
  }
  return {sum, logp.grad()};
}

struct Step {
  torch::Tensor old, ref, adv, mask, start;
};

Step random_step(int64_t N, int64_t T) {
  torch::manual_seed(5);
  Step s;
  s.old = -torch::rand({N, T}, torch::kFloat64) * 2;
  s.ref = -torch::rand({N, T}, torch::kFloat64) * 2;
  s.adv = torch::randn({N}, torch::kFloat64);
  s.mask = torch::ones({N, T}, torch::kFloat64);
  // Ragged completions: rows of 2, 1, 3, 5 and 4 tokens among full ones.
  s.mask[1].narrow(0, 2, T - 2).zero_();
  s.mask[4].narrow(0, 1, T - 1).zero_();
  s.mask[6].narrow(0, 3, T - 3).zero_();
  if (N > 7) s.mask[7].narrow(0, 5, T - 5).zero_();
  if (N > 8) s.mask[N - 1].narrow(0, 4, T - 4).zero_();
  s.start = (s.old + 0.3 * torch::randn({N, T}, torch::kFloat64)).detach();
  return s;
}

constexpr LossType kTypes[] = {LossType::kGrpo, LossType::kBnpo, LossType::kDrGrpo,
                               LossType::kDapo};

TEST(LossDivisor, SharesSumToTrlsLossWhereTrlCanCutTheStep) {
  // 12 rollouts, 3 micro-batches (accumulation 3) over 2 ranks, 2 rollouts in every share.
  const int64_t T = 6, length = 9;
  const auto s = random_step(12, T);
  const Shares shares{{{0, 1}, {2, 3}}, {{4, 5}, {6, 7}}, {{8, 9}, {10, 11}}};
  for (LossType type : kTypes) {
    SCOPED_TRACE(static_cast<int>(type));
    auto whole = s.start.clone().requires_grad_();
    const auto want =
        trl_step_loss(type, per_token(whole, s.old, s.ref, s.adv, 0.05), s.mask, shares, length);
    want.backward();
    const auto [sum, grad] = corl_step(type, s.start, s.old, s.ref, s.adv, s.mask, shares, length);
    EXPECT_NEAR(sum, want.item<double>(), 1e-12);
    EXPECT_LT((grad - whole.grad()).abs().max().item<double>(), 1e-12);
  }
}

TEST(LossDivisor, UnevenCutsAreTrlsForBnpoAndDapoAndCutFreeForGrpoAndDrGrpo) {
  // Uneven micro-batches (3, 2 and 2 rollouts), each split over two ranks, unevenly in the
  // first.
  const int64_t T = 6, length = 9;
  const auto s = random_step(7, T);
  const Shares shares{{{0, 1}, {2}}, {{3}, {4}}, {{5}, {6}}};
  const Shares one_share{{{0, 1, 2, 3, 4, 5, 6}}};
  for (LossType type : kTypes) {
    SCOPED_TRACE(static_cast<int>(type));
    const auto [sum, grad] = corl_step(type, s.start, s.old, s.ref, s.adv, s.mask, shares, length);
    auto whole = s.start.clone().requires_grad_();
    const auto l = per_token(whole, s.old, s.ref, s.adv, 0.05);
    if (type == LossType::kBnpo || type == LossType::kDapo) {
      const auto want = trl_step_loss(type, l, s.mask, shares, length);
      want.backward();
      EXPECT_NEAR(sum, want.item<double>(), 1e-12);
      EXPECT_LT((grad - whole.grad()).abs().max().item<double>(), 1e-12);
      continue;
    }
    // grpo, dr_grpo: the step's loss is TRL's for the whole step in one micro-batch on one
    // rank (each rollout weighs 1 / N), whatever the cut ...
    const auto want = trl_step_loss(type, l, s.mask, one_share, length);
    want.backward();
    EXPECT_NEAR(sum, want.item<double>(), 1e-12);
    EXPECT_LT((grad - whole.grad()).abs().max().item<double>(), 1e-12);
    // ... where TRL's per-share means would weigh the rollouts of the smaller shares more.
    torch::NoGradGuard no_grad;
    const auto trl = trl_step_loss(type, l, s.mask, shares, length).item<double>();
    EXPECT_GT(std::abs(trl - sum), 1e-3);
  }
}

}  // namespace
}  // namespace corl::grpo
