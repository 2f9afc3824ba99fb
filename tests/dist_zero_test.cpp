// ZeRO stages 1 and 2 (dist/zero.h) against stage 0, the replicated AdamW every rank steps
// alike: two Gloo ranks (threads of this test) train a small network whose parameters the
// shards cut through, a part of it reached by one rank only, one part by none and one frozen.
// The weights after several clipped AdamW steps, the gathered AdamW state, and runs resumed
// from a sharded checkpoint under another stage or another number of ranks must all be stage
// 0's up to float error.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <thread>

#include "corl/dist/launch.h"  // defines: free_port
#include "corl/dist/process_group.h"
#include "corl/dist/zero.h"
#include "corl/train/checkpoint.h"  // defines: load_optimizer
#include "corl/train/optimizer.h"   // defines: make_optimizer
#include "corl/util/error.h"
#include "corl/util/fs.h"  // defines: remove_tree

namespace corl::dist {
namespace {

namespace fs = std::filesystem;

constexpr int kSteps = 5;
constexpr int kResumeAt = 3;
constexpr double kLearningRate = 0.01;
constexpr double kMaxNorm = 0.5;       // below the first steps' norms: clipping is exercised
constexpr int64_t kBucketBytes = 256;  // 64 floats: several buckets, shards that cut parameters

struct NetImpl : torch::nn::Module {
  NetImpl() {
    first = register_module("first", torch::nn::Linear(7, 33));
    second = register_module("second", torch::nn::Linear(33, 5));
    table = register_module("table_embed", torch::nn::Embedding(11, 5));  // no weight decay
    rank0_only = register_module("rank0_only", torch::nn::Linear(5, 5));
    unused = register_module("unused", torch::nn::Linear(3, 3));  // no rank's gradient
    frozen = register_module("frozen", torch::nn::Linear(7, 5));
    for (auto& p : frozen->parameters()) p.set_requires_grad(false);
  }
  torch::nn::Linear first{nullptr}, second{nullptr}, rank0_only{nullptr}, unused{nullptr},
      frozen{nullptr};
  torch::nn::Embedding table{nullptr};
};
TORCH_MODULE(Net);

struct Shard {  // one rank's samples
  torch::Tensor x, ids, y;
};
constexpr double kSamples = 12.0;  // both ranks' together: each loss is normalised by it

torch::Tensor loss(Net& net, const Shard& s, bool rank0) {
  auto out = net->second(torch::tanh(net->first(s.x))) + net->table(s.ids) + net->frozen(s.x);
  if (rank0) out = net->rank0_only(out);
  return (out - s.y).pow(2).sum() / kSamples;
}

struct Data {
  std::vector<torch::Tensor> initial;  // the network's starting weights
  std::vector<Shard> shards;           // rank r's samples
};

// Made before any thread starts: the threads must not draw from the global generator.
Data make_data() {
  torch::manual_seed(7);
  Data d;
  Net net;
  for (const auto& p : net->parameters()) d.initial.push_back(p.detach().clone() * 3.0);
  for (int r = 0; r < 2; ++r) {
    d.shards.push_back({torch::randn({6, 7}), torch::randint(0, 11, {6}), torch::randn({6, 5})});
  }
  return d;
}

Net make_net(const std::vector<torch::Tensor>& weights) {
  Net net;
  torch::NoGradGuard no_grad;
  const auto params = net->parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(weights[i]);
  return net;
}

std::vector<torch::Tensor> weights_of(Net& net) {
  std::vector<torch::Tensor> out;
  for (const auto& p : net->parameters()) out.push_back(p.detach().clone());
  return out;
}

train::OptimizerSection optim() {
  train::OptimizerSection o;
  o.learning_rate = kLearningRate;
  o.weight_decay = 0.1;
  return o;
}

// A trainer as the GRPO stage runs one: this process's ranks' losses, then stage 0's
// all-reduce + clip_grad_norm_ + AdamW, or ZeRO's reduce + sharded step. `ranks` lists the
// shards this process trains on (a world of one trains on both, in rank order, so that its
// gradient is the two ranks' sum computed in the same order).
struct Trainer {
  Trainer(ProcessGroup& group, const std::vector<torch::Tensor>& weights, int stage)
      : net(make_net(weights)), full(train::make_optimizer(*net, optim())), stage(stage) {
    if (stage > 0) sharded = std::make_unique<ShardedAdamW>(group, *full, stage, kBucketBytes);
  }
  double step(ProcessGroup& group, const Data& d, const std::vector<int>& ranks) {
    full->zero_grad();
    for (int r : ranks) loss(net, d.shards[r], r == 0).backward();
    if (sharded) {
      const double norm = sharded->reduce_gradients(kMaxNorm);
      sharded->step(kLearningRate);
      return norm;
    }
    const auto params = net->parameters();
    all_reduce_gradients(group, params, kBucketBytes);
    const double norm = torch::nn::utils::clip_grad_norm_(params, kMaxNorm);
    full->step();
    return norm;
  }
  Net net;
  std::unique_ptr<torch::optim::AdamW> full;
  std::unique_ptr<ShardedAdamW> sharded;
  int stage;
};

// What separates the runs is rounding alone: at two ranks the gradient sum a + b is exact in
// any order, so only clip_grad_norm_'s float32 norm against the shards' float64 one differs
// (a relative ~eps in the clipping factor), and each step rounds every weight update afresh
// (a few operations, each within eps of |w| or of lr x |AdamW's step|, the latter below 3 here).
// 64 eps per step and weight covers that with room; a wrong shard boundary, a moment of the
// wrong element or a missed update is off by about lr.
double tolerance(const std::vector<torch::Tensor>& weights, int steps) {
  double largest = 0.0;
  for (const auto& w : weights) largest = std::max(largest, w.abs().max().item<double>());
  return 64.0 * steps * std::numeric_limits<float>::epsilon() * (largest + 3.0 * kLearningRate);
}

void expect_near(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                 double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double difference = (got[i] - want[i]).abs().max().item<double>();
    EXPECT_LE(difference, tol) << what << ", parameter " << i;
    worst = std::max(worst, difference);
  }
  std::printf("%s: largest |w - w_stage0| %.3g (allowed %.3g)\n", what.c_str(), worst, tol);
}

struct Results {
  std::vector<torch::Tensor> stage0, stage1, stage2, resumed_stage1;
  std::vector<torch::Tensor> at_resume;  // weights after kResumeAt steps of stage 2
  std::vector<double> norms0, norms2;
  int64_t differing[3] = {-2, -2, -2};
  std::vector<torch::Tensor> moments0, moments2;  // exp_avg, exp_avg_sq of every parameter
};

std::vector<torch::Tensor> moments(torch::optim::AdamW& full, Net& net) {
  std::vector<torch::Tensor> out;
  for (const auto& p : net->parameters()) {
    if (!p.requires_grad()) continue;
    auto it = full.state().find(p.unsafeGetTensorImpl());
    if (it == full.state().end()) continue;
    const auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    out.push_back(s.exp_avg().clone());
    out.push_back(s.exp_avg_sq().clone());
  }
  return out;
}

class Zero : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!backend_built("gloo")) GTEST_SKIP() << "built without Gloo's headers";
    at::set_num_threads(1);
    dir_ = fs::temp_directory_path() / ("corl_zero_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { util::remove_tree(dir_.string()); }
  fs::path dir_;
};

TEST_F(Zero, StagesOneAndTwoTrainAsStageZeroAndResumeAcrossStagesAndWorlds) {
  const Data d = make_data();
  std::vector<Results> results(2);
  const int port = free_port();
  std::vector<std::thread> threads;
  threads.reserve(2);
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      RankEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.master_port = port;
      ProcessGroup group(env, "gloo", std::chrono::seconds(60));
      Results& out = results[rank];
      for (int stage : {0, 1, 2}) {
        Trainer t(group, d.initial, stage);
        for (int s = 0; s < kSteps; ++s) {
          const double norm = t.step(group, d, {rank});
          if (stage == 0) out.norms0.push_back(norm);
          if (stage == 2) out.norms2.push_back(norm);
        }
        out.differing[stage] = first_differing_parameter(group, t.net->parameters());
        auto weights = weights_of(t.net);
        if (stage == 0) {
          out.stage0 = weights;
          out.moments0 = moments(*t.full, t.net);
        } else if (stage == 1) {
          out.stage1 = weights;
        } else {
          out.stage2 = weights;
          t.sharded->gather_state();
          if (rank == 0) out.moments2 = moments(*t.full, t.net);
        }
      }
      // Stage 2 checkpointed after kResumeAt steps (rank 0 writes the gathered state), then
      // resumed by stage 1 on the same two ranks.
      {
        Trainer t(group, d.initial, 2);
        for (int s = 0; s < kResumeAt; ++s) t.step(group, d, {rank});
        t.sharded->gather_state();
        if (rank == 0) {
          torch::save(*t.full, (dir_ / "optimizer.pt").string());
          out.at_resume = weights_of(t.net);
        }
        group.barrier();
        std::vector<torch::Tensor> weights = weights_of(t.net);
        Trainer resumed(group, weights, 0);  // its AdamW reads the file, then is sharded
        train::load_optimizer(dir_.string(), *resumed.full);
        resumed.sharded = std::make_unique<ShardedAdamW>(group, *resumed.full, 1, kBucketBytes);
        resumed.sharded->scatter_state();
        resumed.full->state().clear();
        for (int s = kResumeAt; s < kSteps; ++s) resumed.step(group, d, {rank});
        out.resumed_stage1 = weights_of(resumed.net);
      }
    });
  }
  for (auto& t : threads) t.join();

  const auto& want = results[0].stage0;
  const double tol = tolerance(want, kSteps);
  bool clipped = false;
  for (double n : results[0].norms0) clipped = clipped || n > kMaxNorm;
  EXPECT_TRUE(clipped) << "the test must exercise clipping";
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE("rank " + std::to_string(rank));
    for (int stage = 0; stage < 3; ++stage) EXPECT_EQ(results[rank].differing[stage], -1);
    expect_near(results[rank].stage1, want, tol, "stage 1");
    expect_near(results[rank].stage2, want, tol, "stage 2");
    expect_near(results[rank].resumed_stage1, want, tol, "stage 2 resumed as stage 1");
    for (int s = 0; s < kSteps; ++s) {
      EXPECT_NEAR(results[rank].norms2[s], results[0].norms0[s], 1e-5 * results[0].norms0[s]);
    }
  }
  // The gathered state is stage 0's: the same moments of the same parameters (the unused one,
  // which no rank trained, has none in either).
  ASSERT_EQ(results[0].moments2.size(), results[0].moments0.size());
  for (size_t i = 0; i < results[0].moments0.size(); ++i) {
    const auto& m = results[0].moments0[i];
    EXPECT_LE((results[0].moments2[i] - m).abs().max().item<double>(),
              64.0 * kSteps * std::numeric_limits<float>::epsilon() * m.abs().max().item<double>())
        << "moment " << i;
  }

  // The same checkpoint resumed by a world of one, under stage 0 (the file is stage 0's
  // optimizer.pt) and under ZeRO with W = 1, training on both ranks' samples.
  for (int stage : {0, 2}) {
    SCOPED_TRACE("world of one, stage " + std::to_string(stage));
    ProcessGroup alone;
    Trainer t(alone, results[0].at_resume, 0);
    train::load_optimizer(dir_.string(), *t.full);
    if (stage > 0) {
      t.sharded = std::make_unique<ShardedAdamW>(alone, *t.full, stage, kBucketBytes);
      t.sharded->scatter_state();
      t.full->state().clear();
    }
    for (int s = kResumeAt; s < kSteps; ++s) t.step(alone, d, {0, 1});
    expect_near(weights_of(t.net), want, tol, "resumed alone");
  }
}

// A checkpoint's optimizer state for other trained parameters is refused with the file named.
TEST_F(Zero, OptimizerStateOfAnotherLayoutIsRefused) {
  auto a = torch::randn({3, 4}, torch::requires_grad());
  torch::optim::AdamW written({a}, torch::optim::AdamWOptions(0.1));
  a.mutable_grad() = torch::ones({3, 4});
  written.step();
  torch::save(written, (dir_ / "optimizer.pt").string());
  auto message = [&](const std::vector<torch::Tensor>& params) {
    torch::optim::AdamW reading(params, torch::optim::AdamWOptions(0.1));
    try {
      train::load_optimizer(dir_.string(), reading);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto shape = message({torch::zeros({4, 3}, torch::requires_grad())});
  EXPECT_NE(shape.find("optimizer.pt: holds AdamW moments of shape [3, 4]"), std::string::npos)
      << shape;
  const auto count = message(
      {torch::zeros({3, 4}, torch::requires_grad()), torch::zeros({2}, torch::requires_grad())});
  EXPECT_NE(count.find("optimizer.pt"), std::string::npos) << count;
  EXPECT_EQ(count.find("no error"), std::string::npos) << count;
}

}  // namespace
}  // namespace corl::dist
