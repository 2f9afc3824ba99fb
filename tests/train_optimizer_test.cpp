#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "corl/train/optimizer.h"
#include "corl/util/error.h"  // defines: RecipeError
#include "corl/util/fs.h"     // defines: read_file

namespace corl::train {
namespace {

// Peak 2, a floor of a quarter of it (0.5), 4 warm-up updates of 12: update k < 4 trains at
// (k + 1)/4 of the peak (Hugging Face's warm-up one update ahead), and the cosine runs over updates
// 4..12, so updates 6, 8 and 10 are a quarter, half and three quarters of the way, where
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
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 0, 12), 0.5);
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

// ULM-R1's unified stage: peak 4e-6, no warm-up, 702 updates, Hugging Face's default linear
// schedule: update k trains at 4e-6 (702 - k) / 702, the last at 4e-6 / 702.
TEST(LearningRate, LinearFallsToZeroAtTheLastUpdate) {
  OptimizerSection o;
  o.lr_scheduler_type = "linear";
  o.learning_rate = 4e-6;
  o.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 0, 702), 4e-6);
  EXPECT_NEAR(learning_rate_at(o, 351, 702), 2e-6, 1e-18);
  EXPECT_NEAR(learning_rate_at(o, 701, 702), 4e-6 / 702, 1e-18);
  EXPECT_DOUBLE_EQ(learning_rate_at(o, 702, 702), 0.0);
  // 2 warm-up updates of 6: half the peak, the peak, then 4 updates down from the peak by a
  // quarter.
  o.learning_rate = 2.0;
  o.warmup_steps = 2;
  const std::vector<double> want{1.0, 2.0, 2.0, 1.5, 1.0, 0.5};
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(learning_rate_at(o, k, 6), want[k], 1e-12) << k;
}

TEST(LearningRate, ConstantIsThePeakAndRefusesAWarmUp) {
  OptimizerSection o;
  o.lr_scheduler_type = "constant";
  o.learning_rate = 3.0;
  o.warmup_steps = 0;
  EXPECT_NO_THROW(check_schedule(o));
  for (int k : {0, 5, 9}) EXPECT_DOUBLE_EQ(learning_rate_at(o, k, 10), 3.0);
  o.warmup_steps = 3;
  try {
    check_schedule(o);
    ADD_FAILURE() << "constant with a warm-up was accepted";
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("optim.warmup_steps: 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lr_scheduler_type constant"), std::string::npos);
  }
}

// Every schedule against transformers' own: get_scheduler by name, stepped as Hugging Face
// Trainer steps it (tests/lr_schedule_reference.py), rate by rate over whole runs. The warm-up
// is theirs one update ahead: update k < warmup_steps trains at their update k + 1's rate.
TEST(LearningRate, MatchesTransformersGetScheduler) {
  const std::string python = CORL_SOURCE_DIR "/.venv/bin/python";
  if (!std::filesystem::exists(python)) GTEST_SKIP() << python << " not found; scripts/setup.sh";
  const std::string out =
      std::string(CORL_BINARY_DIR) + "/lr_schedule_reference-" + std::to_string(::getpid());
  const int status = std::system(("'" + python + "' '" CORL_SOURCE_DIR
                                  "/tests/lr_schedule_reference.py' '" + out + ".json' > '" + out +
                                  ".log' 2>&1")
                                     .c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) GTEST_SKIP() << "transformers is not installed in .venv";
  ASSERT_EQ(code, 0) << util::read_file(out + ".log");
  const auto cases = nlohmann::json::parse(util::read_file(out + ".json"));
  std::filesystem::remove(out + ".json");
  std::filesystem::remove(out + ".log");
  ASSERT_GE(cases.size(), 9u);
  for (const auto& c : cases) {
    OptimizerSection o;
    o.lr_scheduler_type = c["lr_scheduler_type"].get<std::string>();
    o.warmup_steps = c["warmup_steps"].get<int>();
    o.min_lr_ratio = c["min_lr_ratio"].get<double>();
    o.learning_rate = c["learning_rate"].get<double>();
    const int total = c["total_steps"].get<int>();
    const auto& rates = c["rates"];
    ASSERT_EQ(static_cast<int>(rates.size()), total + 1);
    for (int k = 0; k < total; ++k) {
      const double theirs = rates[k < o.warmup_steps ? k + 1 : k].get<double>();
      ASSERT_NEAR(learning_rate_at(o, k, total), theirs, 1e-14 * o.learning_rate)
          << o.lr_scheduler_type << " warmup " << o.warmup_steps << " of " << total
          << " min_lr_ratio " << o.min_lr_ratio << ", update " << k;
    }
  }
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
