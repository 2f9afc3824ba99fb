#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "corl/train/optimizer.h"

namespace corl::train {
namespace {

// Peak 2, a floor of a quarter of it (0.5), 4 warm-up steps of 12: the cosine runs over steps
// 4..12, so steps 6, 8 and 10 are a quarter, half and three quarters of the way, where
// 0.5 (1 + cos(pi t)) is (1 + sqrt(2)/2) / 2, 1/2 and (1 - sqrt(2)/2) / 2.
OptimizerSection schedule() {
  OptimizerSection o;
  o.learning_rate = 2.0;
  o.warmup_steps = 4;
  o.min_lr_ratio = 0.25;
  return o;
}

TEST(LearningRate, WarmsUpLinearlyToThePeak) {
  const auto o = schedule();
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 0, 12), 0.5);  // step 0 already trains: lr * 1/4
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 1, 12), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 2, 12), 1.5);
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 3, 12), 2.0);
}

TEST(LearningRate, CosineFromThePeakToTheFloor) {
  const auto o = schedule();
  const double half_root2 = std::sqrt(2.0) / 2.0;
  auto expected = [](double cosine) { return 2.0 * (0.25 + 0.75 * cosine); };
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 4, 12), 2.0);
  EXPECT_NEAR(learning_rate_at(o, 6, 12), expected((1.0 + half_root2) / 2.0), 1e-12);
  EXPECT_NEAR(learning_rate_at(o, 8, 12), 1.25, 1e-12);
  EXPECT_NEAR(learning_rate_at(o, 10, 12), expected((1.0 - half_root2) / 2.0), 1e-12);
  EXPECT_NEAR(learning_rate_at(o, 12, 12), 0.5, 1e-12);
  EXPECT_NEAR(learning_rate_at(o, 30, 12), 0.5, 1e-12);  // past the end: stays at the floor
}

TEST(LearningRate, WithoutWarmUpTheFirstStepTakesThePeak) {
  auto o = schedule();
  o.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 0, 12), 2.0);
  EXPECT_NEAR(learning_rate_at(o, 6, 12), 1.25, 1e-12);
}

TEST(LearningRate, NoStepsBeyondTheWarmUpMeansTheFloor) {
  const auto o = schedule();
  EXPECT_NEAR(learning_rate_at(o, 4, 4), 0.5, 1e-12);
}

struct Probe : torch::nn::Module {
  Probe() {
    proj = register_module("proj", torch::nn::Linear(3, 2));
    gen_embed = register_module("gen_embed", torch::nn::Embedding(5, 3));
    norm = register_parameter("norm", torch::ones({3}));
    frozen = register_parameter("frozen", torch::ones({2, 2}), /*requires_grad=*/false);
  }
  torch::nn::Linear proj{nullptr};
  torch::nn::Embedding gen_embed{nullptr};
  torch::Tensor norm, frozen;
};

TEST(MakeOptimizer, OnlyTrainableMatricesDecay) {
  Probe probe;
  auto o = schedule();
  o.weight_decay = 0.05;
  o.adam_beta1 = 0.8;
  o.adam_beta2 = 0.9;
  auto optimizer = make_optimizer(probe, o);
  auto& groups = optimizer->param_groups();
  ASSERT_EQ(groups.size(), 2u);
  ASSERT_EQ(groups[0].params().size(), 1u);
  EXPECT_TRUE(groups[0].params()[0].is_same(probe.proj->weight));
  EXPECT_EQ(groups[1].params().size(), 3u);  // bias, embedding table, norm; not the frozen one
  const auto& decay = static_cast<torch::optim::AdamWOptions&>(groups[0].options());
  const auto& none = static_cast<torch::optim::AdamWOptions&>(groups[1].options());
  EXPECT_DOUBLE_EQ(decay.weight_decay(), 0.05);
  EXPECT_DOUBLE_EQ(none.weight_decay(), 0.0);
  EXPECT_DOUBLE_EQ(std::get<0>(decay.betas()), 0.8);
  EXPECT_DOUBLE_EQ(std::get<1>(none.betas()), 0.9);

  set_learning_rate(*optimizer, 0.125);
  for (auto& group : groups) {
    EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamWOptions&>(group.options()).lr(), 0.125);
  }
}

}  // namespace
}  // namespace corl::train
