// The CUDA kernels (kernels/) against the reference paths of the ops, on a GPU. Each kernel's
// error against a float64 reference must be at most twice the error of LibTorch's own bfloat16
// computation of the same quantity (flash-attention's rule), values and gradients alike.
// Skipped, with a message, where no CUDA device is visible.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "corl/ops/group_advantages.h"
#include "corl/ops/grpo_loss.h"
#include "corl/ops/token_logprobs.h"

namespace corl::ops {
namespace {

constexpr int64_t kIgnore = -100;  // model::kIgnore

#define SKIP_WITHOUT_CUDA()                                                                \
  do {                                                                                     \
    if (!cuda_kernels_built()) GTEST_SKIP() << "this build has no CUDA kernels (no nvcc)"; \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible: GPU check"; \
  } while (0)

const torch::Device kCuda(torch::kCUDA, 0);

double max_error(const torch::Tensor& value, const torch::Tensor& truth) {
  return (value.detach().to(torch::kCPU, torch::kFloat64) - truth.to(torch::kCPU, torch::kFloat64))
      .abs()
      .max()
      .item<double>();
}

// Random targets in [0, vocab) with every fifth position ignored.
torch::Tensor random_targets(int64_t rows, int64_t vocab) {
  torch::Tensor targets = torch::randint(vocab, {rows}, torch::kInt64);
  targets.index_put_({torch::arange(0, rows, 5)}, kIgnore);
  return targets;
}

// The plain definition in LibTorch: log-softmax over the vocabulary and a gather, in the
// logits' own precision.
torch::Tensor eager_logprobs(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::log_softmax(logits, -1)
      .gather(-1, targets.clamp_min(0).unsqueeze(-1))
      .squeeze(-1)
      .masked_fill(targets.lt(0), 0.0);
}

struct LogprobCase {
  torch::ScalarType dtype;
  int64_t rows;
  int64_t vocab;
};

// Values and gradients of sum(g * logp) against float64 truth, beside LibTorch's bfloat16.
void check_logprobs(const LogprobCase& c) {
  const auto [dtype, rows, vocab] = c;
  SCOPED_TRACE(std::string(c10::toString(dtype)) + " rows " + std::to_string(rows) + " vocab " +
               std::to_string(vocab));
  torch::manual_seed(7);
  const torch::Tensor values = (4.0 * torch::randn({rows, vocab})).to(dtype);
  const torch::Tensor targets = random_targets(rows, vocab);
  const torch::Tensor upstream = torch::randn({rows});

  // Truth: the exact inputs (as rounded to dtype) in float64, through the reference path.
  torch::Tensor truth_logits = values.to(torch::kFloat64).requires_grad_(true);
  const torch::Tensor truth = token_logprobs(truth_logits, targets);
  (truth * upstream.to(torch::kFloat64)).sum().backward();

  torch::Tensor logits = values.to(kCuda).requires_grad_(true);
  const torch::Tensor logp = token_logprobs(logits, targets.to(kCuda));
  ASSERT_EQ(logp.scalar_type(), torch::kFloat32);
  (logp * upstream.to(kCuda)).sum().backward();
  ASSERT_EQ(logits.grad().scalar_type(), dtype);

  // LibTorch's own bfloat16 computation of both.
  torch::Tensor bf16_logits = values.to(kCuda, torch::kBFloat16).requires_grad_(true);
  const torch::Tensor bf16 = eager_logprobs(bf16_logits, targets.to(kCuda));
  (bf16 * upstream.to(kCuda, torch::kBFloat16)).sum().backward();

  const double bf16_error = max_error(bf16, truth);
  const double bf16_grad_error = max_error(bf16_logits.grad(), truth_logits.grad());
  ASSERT_GT(bf16_error, 0.0);
  EXPECT_LE(max_error(logp, truth), 2.0 * bf16_error);
  EXPECT_LE(max_error(logits.grad(), truth_logits.grad()), 2.0 * bf16_grad_error);
  // Ignored targets score 0 and pass no gradient.
  const torch::Tensor ignored = targets.lt(0);
  EXPECT_TRUE(logp.cpu().masked_select(ignored).eq(0).all().item<bool>());
  EXPECT_TRUE(logits.grad().cpu().index({ignored}).eq(0).all().item<bool>());
}

TEST(TokenLogprobsKernel, ErrorWithinTwiceLibTorchBf16) {
  SKIP_WITHOUT_CUDA();
  for (const LogprobCase& c :
       {LogprobCase{torch::kFloat32, 64, 16384}, LogprobCase{torch::kBFloat16, 64, 16384},
        LogprobCase{torch::kFloat16, 64, 16384}, LogprobCase{torch::kBFloat16, 16, 102400},
        // No multiple of the vector width: the tail path.
        LogprobCase{torch::kBFloat16, 33, 1001}, LogprobCase{torch::kFloat32, 33, 7}}) {
    check_logprobs(c);
  }
}

// Strided rows (a slice of wider logits) and a misaligned start take other load paths; the
// gradient written over the logits' own buffer equals the allocated one.
TEST(TokenLogprobsKernelLayout, StridedMisalignedAndInPlaceAgree) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(8);
  const int64_t rows = 40;
  const int64_t vocab = 4096;
  const torch::Tensor wide = torch::randn({rows, vocab + 24}, torch::kBFloat16).to(kCuda);
  const torch::Tensor targets = random_targets(rows, vocab).to(kCuda);
  const torch::Tensor contiguous = wide.narrow(1, 0, vocab).contiguous();
  const torch::Tensor expected = token_logprobs(contiguous, targets);

  const torch::Tensor strided = wide.narrow(1, 0, vocab);  // row stride vocab + 24
  EXPECT_TRUE(torch::equal(token_logprobs(strided, targets), expected));
  const torch::Tensor misaligned = wide.narrow(1, 1, vocab);  // starts 2 bytes off 16
  const torch::Tensor shifted_expected = token_logprobs(misaligned.contiguous(), targets);
  EXPECT_TRUE(torch::allclose(token_logprobs(misaligned, targets), shifted_expected, 0, 1e-6));

  const torch::Tensor upstream = torch::randn({rows}, kCuda);
  torch::Tensor a = contiguous.clone().requires_grad_(true);
  (token_logprobs(a, targets) * upstream).sum().backward();
  torch::Tensor buffer = contiguous.clone();
  torch::Tensor b = buffer.detach().requires_grad_(true);
  (token_logprobs(b, targets, 2048, /*reuse_logits_for_grad=*/true) * upstream).sum().backward();
  EXPECT_TRUE(torch::equal(b.grad(), a.grad()));
  EXPECT_TRUE(torch::equal(buffer, a.grad()));  // written over the logits' own buffer
}

TEST(TokenLogprobsKernelErrors, TargetBeyondVocabularyIsReportedNotAFault) {
  SKIP_WITHOUT_CUDA();
  const torch::Tensor logits = torch::randn({8, 100}, kCuda);
  torch::Tensor targets = torch::randint(100, {8}, torch::kInt64);
  targets[5] = 100;
  try {
    token_logprobs(logits, targets.to(kCuda));
    FAIL() << "a target beyond the vocabulary was accepted";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("row 5"), std::string::npos) << e.what();
  }
  // The device is still usable: the kernel did not fault.
  targets[5] = 3;
  const torch::Tensor logp = token_logprobs(logits, targets.to(kCuda));
  EXPECT_TRUE(torch::isfinite(logp).all().item<bool>());
}

TEST(GroupAdvantagesKernel, MatchesReferenceForAnyGroupSize) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(9);
  for (int64_t group : {1, 2, 3, 8, 33, 100}) {
    torch::Tensor rewards = torch::rand({group * 7}, torch::kFloat64);
    rewards.narrow(0, 0, group).fill_(0.25);  // an equal-reward group: exactly 0
    for (const RewardScale scale : {RewardScale::kGroup, RewardScale::kNone}) {
      for (double eps : {0.0, 1e-4}) {
        const torch::Tensor expected = group_advantages(rewards, group, scale, eps);
        const torch::Tensor got = group_advantages(rewards.to(kCuda), group, scale, eps).cpu();
        ASSERT_EQ(got.scalar_type(), torch::kFloat32);
        EXPECT_TRUE(torch::allclose(got, expected, 1e-6, 1e-6))
            << "group " << group << " eps " << eps << " max error " << max_error(got, expected);
        EXPECT_TRUE(got.narrow(0, 0, group).eq(0).all().item<bool>()) << "group " << group;
      }
    }
  }
}

// Loss, per-token losses, statistics and gradient against float64 truth, beside LibTorch's
// bfloat16 run of the same reference path.
void check_grpo_loss(Aggregation aggregation, double beta, double normaliser) {
  SCOPED_TRACE("aggregation " + std::to_string(static_cast<int>(aggregation)) + " beta " +
               std::to_string(beta) + " normaliser " + std::to_string(normaliser));
  torch::manual_seed(10);
  const int64_t rows = 48;
  const int64_t tokens = 300;
  const torch::Tensor logp = -torch::rand({rows, tokens}, torch::kFloat64) * 5.0;
  const torch::Tensor old_logp = logp + 0.3 * torch::randn({rows, tokens}, torch::kFloat64);
  const torch::Tensor ref_logp = logp + 0.3 * torch::randn({rows, tokens}, torch::kFloat64);
  const torch::Tensor advantages = torch::randn({rows}, torch::kFloat64);
  torch::Tensor mask = torch::rand({rows, tokens}).lt(0.8).to(torch::kFloat64);
  mask[3].zero_();  // a row without tokens contributes nothing

  GrpoLossOptions options;
  options.epsilon_low = 0.2;
  options.epsilon_high = 0.28;
  options.beta = beta;
  options.aggregation = aggregation;
  options.max_completion_length = 512;
  options.normaliser = normaliser;

  auto run = [&](torch::ScalarType dtype, torch::Device device, torch::Tensor& grad) {
    // A copy even where device and dtype match: a leaf of its own, never logp itself.
    torch::Tensor x =
        logp.to(device, dtype, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true);
    GrpoLoss out = grpo_loss(x, old_logp.to(device, dtype), ref_logp.to(device, dtype),
                             advantages.to(device, dtype), mask.to(device, dtype), options);
    out.loss.backward();
    grad = x.grad();
    return out;
  };
  torch::Tensor truth_grad, kernel_grad, bf16_grad;
  const GrpoLoss truth = run(torch::kFloat64, torch::kCPU, truth_grad);
  const GrpoLoss kernel = run(torch::kFloat32, kCuda, kernel_grad);
  const GrpoLoss bf16 = run(torch::kBFloat16, kCuda, bf16_grad);

  const double bf16_loss_error = max_error(bf16.loss, truth.loss);
  ASSERT_GT(bf16_loss_error, 0.0);
  EXPECT_LE(max_error(kernel.loss, truth.loss), 2.0 * bf16_loss_error);
  EXPECT_LE(max_error(kernel.per_token, truth.per_token),
            2.0 * max_error(bf16.per_token, truth.per_token));
  EXPECT_LE(max_error(kernel_grad, truth_grad), 2.0 * max_error(bf16_grad, truth_grad));
  EXPECT_EQ(kernel.tokens, truth.tokens);
  EXPECT_NEAR(kernel.kl, truth.kl, 1e-5);
  // float32 may put a ratio within rounding of a trust-region bound on the other side of it.
  const double one_token = 1.5 / static_cast<double>(truth.tokens);
  EXPECT_NEAR(kernel.clip_low, truth.clip_low, one_token);
  EXPECT_NEAR(kernel.clip_high, truth.clip_high, one_token);
  EXPECT_NEAR(kernel.clip_fraction, truth.clip_fraction, one_token);
  EXPECT_TRUE(kernel_grad.cpu()[3].eq(0).all().item<bool>());
}

TEST(GrpoLossKernel, LossStatsAndGradientWithinTwiceLibTorchBf16) {
  SKIP_WITHOUT_CUDA();
  for (const Aggregation aggregation : {Aggregation::kTokenMean, Aggregation::kSeqMeanTokenMean,
                                        Aggregation::kSeqMeanTokenSumNorm}) {
    for (const double beta : {0.0, 0.04}) {
      // 0: the batch's own count; else a share of a larger step divides by the step's count.
      for (const double normaliser : {0.0, 1234.5}) check_grpo_loss(aggregation, beta, normaliser);
    }
  }
}

// GSPO's sequence-level ratio and the policy term's weights are not in the fused kernel: on CUDA
// they take the reference path, which must give the CPU's figures (float32 against float64).
TEST(GrpoLossKernel, SequenceLevelAndPolicyWeightTakeTheReferencePathOnCuda) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(11);
  const int64_t rows = 24;
  const int64_t tokens = 200;
  const torch::Tensor logp = -torch::rand({rows, tokens}, torch::kFloat64) * 5.0;
  const torch::Tensor old_logp = logp + 0.05 * torch::randn({rows, tokens}, torch::kFloat64);
  const torch::Tensor advantages = torch::randn({rows}, torch::kFloat64);
  torch::Tensor mask = torch::rand({rows, tokens}).lt(0.7).to(torch::kFloat64);
  mask[5].zero_();
  const torch::Tensor weight = torch::rand({rows, tokens}, torch::kFloat64);
  for (const bool sequence : {false, true}) {
    GrpoLossOptions options;
    options.aggregation = Aggregation::kSeqMeanTokenMean;
    options.sequence_level = sequence;
    options.policy_weight = sequence ? torch::Tensor() : weight;
    auto run = [&](torch::ScalarType dtype, torch::Device device, torch::Tensor& grad) {
      torch::Tensor x =
          logp.to(device, dtype, /*non_blocking=*/false, /*copy=*/true).requires_grad_(true);
      if (options.policy_weight.defined()) options.policy_weight = weight.to(device, dtype);
      GrpoLoss out = grpo_loss(x, old_logp.to(device, dtype), torch::Tensor(),
                               advantages.to(device, dtype), mask.to(device, dtype), options);
      out.loss.backward();
      grad = x.grad();
      return out;
    };
    torch::Tensor truth_grad, cuda_grad;
    const GrpoLoss truth = run(torch::kFloat64, torch::kCPU, truth_grad);
    const GrpoLoss cuda = run(torch::kFloat32, kCuda, cuda_grad);
    EXPECT_LE(max_error(cuda.loss, truth.loss), 1e-5) << "sequence " << sequence;
    EXPECT_LE(max_error(cuda_grad, truth_grad), 1e-6) << "sequence " << sequence;
    if (sequence) EXPECT_LE(max_error(cuda.sequence_ratio, truth.sequence_ratio), 1e-5);
  }
}

TEST(GroupAdvantagesKernel, BatchScaleTakesTheReferencePathOnCuda) {
  SKIP_WITHOUT_CUDA();
  const torch::Tensor rewards = torch::rand({24}, torch::kFloat64);
  const torch::Tensor expected = group_advantages(rewards, 4, RewardScale::kBatch);
  const torch::Tensor got = group_advantages(rewards.to(kCuda), 4, RewardScale::kBatch).cpu();
  EXPECT_TRUE(torch::allclose(got, expected, 1e-6, 1e-6));
}

}  // namespace
}  // namespace corl::ops
