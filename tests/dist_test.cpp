// The data-parallel pieces that need no second process: how a global batch is shared between
// ranks, per-group sampling, the launcher's environment, a world of one and a one-rank Gloo
// group. Several ranks are checked by tests/dist_test.sh (dist_check), grpo_update_test (a
// step's gradient over two Gloo ranks) and tests/cli_test.sh (GRPO, 2 ranks vs 1).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <numeric>
#include <random>
#include <set>

#include "corl/dist/data_parallel.h"
#include "corl/dist/launch.h"
#include "corl/dist/process_group.h"
#include "corl/model/sampling.h"
#include "corl/util/error.h"

namespace corl::dist {
namespace {

TEST(DataParallel, RanksShareTheGlobalBatchRoundRobin) {
  for (int world : {1, 2, 3, 8}) {
    for (int64_t per_rank : {1, 2, 5}) {
      std::set<int64_t> seen;
      for (int r = 0; r < world; ++r) {
        const auto groups = rank_groups(per_rank, r, world);
        ASSERT_EQ(static_cast<int64_t>(groups.size()), per_rank);
        for (int64_t g : groups) {
          EXPECT_EQ(g % world, r);
          EXPECT_TRUE(seen.insert(g).second) << "group " << g << " on two ranks";
        }
      }
      EXPECT_EQ(static_cast<int64_t>(seen.size()), per_rank * world);
      EXPECT_EQ(*seen.rbegin(), per_rank * world - 1);
    }
  }
}

// The single process's rule, as the GRPO stage wrote it before data parallelism: M =
// min(accumulation, kept) micro-batches, micro m = kept groups [n m / M, n (m + 1) / M).
TEST(DataParallel, MicroBatchesAreTheSingleProcessSplit) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t groups = 1 + rng() % 12;
    const int accumulation = 1 + rng() % 5;
    std::vector<int64_t> kept(groups);
    for (auto& k : kept) k = rng() % 3 != 0;
    std::vector<int64_t> kept_index;
    for (int64_t g = 0; g < groups; ++g) {
      if (kept[g]) kept_index.push_back(g);
    }
    const int64_t n = static_cast<int64_t>(kept_index.size());
    const int64_t count = std::min<int64_t>(accumulation, n);
    const auto micro = micro_batches(kept, accumulation);
    ASSERT_EQ(static_cast<int64_t>(micro.size()), count);
    for (int64_t m = 0; m < count; ++m) {
      const std::vector<int64_t> expected(kept_index.begin() + n * m / count,
                                          kept_index.begin() + n * (m + 1) / count);
      EXPECT_EQ(micro[m], expected) << "trial " << trial << " micro " << m;
    }
  }
}

// A block's tokens come from its own generator alone: sampling it with the rest of a batch or by
// itself, from a generator of the same seed, draws the same tokens.
TEST(DataParallel, BlockGeneratorsMakeSamplingIndependentOfTheBatch) {
  torch::manual_seed(5);
  const auto logits = torch::randn({12, 50});
  model::SamplingOptions options;
  options.temperature = 1.3;
  std::vector<at::Generator> generators;
  for (int k = 0; k < 4; ++k)
    generators.push_back(at::make_generator<at::CPUGeneratorImpl>(100 + k));
  std::vector<torch::Tensor> together;
  for (int step = 0; step < 3; ++step) {
    together.push_back(model::sample_tokens(logits * (step + 1), options, generators));
  }
  for (int k = 0; k < 4; ++k) {
    auto alone = at::make_generator<at::CPUGeneratorImpl>(100 + k);
    for (int step = 0; step < 3; ++step) {
      const auto mine =
          model::sample_tokens(logits.narrow(0, 3 * k, 3) * (step + 1), options, alone);
      EXPECT_TRUE(torch::equal(mine, together[step].narrow(0, 3 * k, 3)))
          << "block " << k << " step " << step;
    }
  }
}

class Environment : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) {
      ::unsetenv(name);
    }
  }
};

TEST_F(Environment, TorchrunVariables) {
  EXPECT_FALSE(rank_env().launched);
  EXPECT_EQ(rank_env().world_size, 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "2", 1);
  ::setenv("LOCAL_RANK", "0", 1);
  ::setenv("MASTER_ADDR", "node7", 1);
  ::setenv("MASTER_PORT", "29600", 1);
  const auto env = rank_env();
  EXPECT_TRUE(env.launched);
  EXPECT_EQ(env.rank, 2);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 0);
  EXPECT_EQ(env.master_addr, "node7");
  EXPECT_EQ(env.master_port, 29600);
}

TEST_F(Environment, BadVariablesAreNamed) {
  auto message = [] {
    try {
      rank_env();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  ::setenv("RANK", "0", 1);
  EXPECT_NE(message().find("WORLD_SIZE is not"), std::string::npos) << message();
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "2", 1);
  EXPECT_NE(message().find("RANK=2"), std::string::npos) << message();
  ::setenv("RANK", "1", 1);
  EXPECT_NE(message().find("MASTER_ADDR"), std::string::npos) << message();
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", "http", 1);
  EXPECT_NE(message().find("MASTER_PORT=http"), std::string::npos) << message();
}

TEST(Launcher, DropsItsOwnFlag) {
  EXPECT_EQ(without_nproc({"train", "--nproc", "2", "--set", "a=1", "--nproc=3", "--resume"}),
            (std::vector<std::string>{"train", "--set", "a=1", "--resume"}));
  const int port = free_port();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

// One rank: the collectives are the identity and the gradients come back unchanged.
void check_world_of_one(ProcessGroup& group) {
  EXPECT_EQ(group.world_size(), 1);
  EXPECT_EQ(group.rank(), 0);
  std::vector<torch::Tensor> t{torch::arange(6, torch::kFloat32)};
  group.all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t[0], torch::arange(6, torch::kFloat32)));
  const auto g = group.all_gather(torch::ones({2, 3}));
  EXPECT_EQ(g.sizes(), (std::vector<int64_t>{1, 2, 3}));

  torch::manual_seed(2);
  auto a = torch::randn({300}, torch::requires_grad());
  auto b = torch::randn({4, 5}, torch::requires_grad());
  auto unused = torch::randn({3}, torch::requires_grad());
  (a.sum() * 2 + (b * b).sum()).backward();
  const auto grad_a = a.grad().clone();
  const auto grad_b = b.grad().clone();
  all_reduce_gradients(group, {a, b, unused}, /*bucket_bytes=*/256);  // several buckets
  EXPECT_TRUE(torch::equal(a.grad(), grad_a));
  EXPECT_TRUE(torch::equal(b.grad(), grad_b));
  EXPECT_FALSE(unused.grad().defined()) << "no rank has it: it stays undefined";
  EXPECT_EQ(first_differing_parameter(group, {a, b}), -1);
}

TEST(ProcessGroup, AWorldOfOneIsTheIdentity) {
  ProcessGroup group;
  check_world_of_one(group);
}

TEST(ProcessGroup, OneGlooRankIsTheIdentity) {
  if (!backend_built("gloo")) GTEST_SKIP() << "built without Gloo's headers";
  RankEnv env;
  env.world_size = 1;
  env.master_port = free_port();
  ProcessGroup group(env, "gloo", std::chrono::seconds(20));
  check_world_of_one(group);
}

}  // namespace
}  // namespace corl::dist
