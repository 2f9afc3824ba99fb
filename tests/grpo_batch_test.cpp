// A GRPO step's collectives (grpo/batch.cpp, grpo/metrics.cpp, grpo/update.cpp, dist/zero.cpp)
// reach the backend on the device it needs, through the process group alone. NCCL takes CUDA
// tensors only while the step keeps its rewards, counts and flags on the CPU; here, on a CPU
// machine, a 2-rank Gloo group stands for it with a backend that takes tensors on LibTorch's
// lazy device only (a device other than the CPU that still holds data) and records every tensor
// that reaches it anywhere else.
#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>  // defines: c10d::Backend, Work
#include <torch/csrc/lazy/ts_backend/ts_backend_impl.h>  // defines: InitTorchScriptBackend

#include <mutex>
#include <opencv2/core.hpp>
#include <thread>

#include "corl/dist/launch.h"
#include "corl/dist/zero.h"
#include "corl/grpo/batch.h"
#include "corl/grpo/metrics.h"
#include "corl/grpo/update.h"
#include "corl/train/optimizer.h"
#include "tiny_model.h"

namespace corl::grpo {
namespace {

using corl::testing::tiny_config;
using corl::testing::tiny_model;
using corl::testing::tokenizer;

const torch::Device kLazy(torch::kLazy, 0);

// Passes every collective on to `inner` (Gloo, on CPU copies) and records each tensor that does
// not arrive on `device`: what NCCL would refuse were `device` a GPU.
class DeviceCheckingBackend : public c10d::Backend {
 public:
  DeviceCheckingBackend(c10::intrusive_ptr<c10d::Backend> inner, torch::Device device)
      : c10d::Backend(inner->getRank(), inner->getSize()), inner_(std::move(inner)),
        device_(device) {}

  std::vector<std::string> off_device;  // "collective: device" of each tensor that was not
  int collectives = 0;

  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions& options) override {
    auto cpu = arrive("all-reduce", tensors);
    return leave(inner_->allreduce(cpu, options), cpu, tensors);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& options) override {
    auto cpu = arrive("broadcast", tensors);
    return leave(inner_->broadcast(cpu, options), cpu, tensors);
  }
  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs,
                                           const c10d::AllgatherOptions& options) override {
    auto in = arrive("all-gather", inputs);
    std::vector<std::vector<at::Tensor>> out{arrive("all-gather", outputs[0])};
    return leave(inner_->allgather(out, in, options), out[0], outputs[0]);
  }
  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& output, at::Tensor& input,
                                                 const c10d::AllgatherOptions& options) override {
    std::vector<at::Tensor> outputs{output}, inputs{input};
    auto in = arrive("all-gather-base", inputs);
    auto out = arrive("all-gather-base", outputs);
    return leave(inner_->_allgather_base(out[0], in[0], options), out, outputs);
  }
  c10::intrusive_ptr<c10d::Work> _reduce_scatter_base(
      at::Tensor& output, at::Tensor& input, const c10d::ReduceScatterOptions& options) override {
    std::vector<at::Tensor> outputs{output}, inputs{input};
    auto in = arrive("reduce-scatter", inputs);
    auto out = arrive("reduce-scatter", outputs);
    return leave(inner_->_reduce_scatter_base(out[0], in[0], options), out, outputs);
  }
  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions& options) override {
    ++collectives;
    return inner_->barrier(options);
  }
  void shutdown() override { inner_->shutdown(); }

 private:
  // CPU tensors for Gloo: the caller's own when they are on the CPU already.
  std::vector<at::Tensor> arrive(const char* what, const std::vector<at::Tensor>& tensors) {
    ++collectives;
    std::vector<at::Tensor> cpu;
    for (const auto& t : tensors) {
      if (t.device() != device_) off_device.push_back(std::string(what) + ": " + t.device().str());
      cpu.push_back(t.device().is_cpu() ? t : t.cpu());
    }
    return cpu;
  }
  // Waits for Gloo and copies its results back into the tensors the caller handed in.
  c10::intrusive_ptr<c10d::Work> leave(c10::intrusive_ptr<c10d::Work> work,
                                       const std::vector<at::Tensor>& cpu,
                                       std::vector<at::Tensor>& given) {
    work->wait();
    for (size_t i = 0; i < given.size(); ++i) {
      if (!cpu[i].is_same(given[i])) given[i].copy_(cpu[i]);
    }
    return work;
  }

  c10::intrusive_ptr<c10d::Backend> inner_;
  torch::Device device_;
};

GrpoRecipe stage_recipe() {
  GrpoRecipe r;
  r.task = "unified";
  r.grpo.num_generations = 3;
  r.grpo.per_device_train_batch_size = 3;  // 2 groups of 3 a rank over 2 micro-steps
  r.grpo.max_completion_length = 6;
  r.grpo.cfg_weight = 1.0;
  r.grpo.beta = 0.04;  // the reference's log-probs
  r.grpo.num_iterations = 2;
  r.grpo.scale_rewards = "batch";
  r.grpo.top_entropy_quantile = 0.5;  // the entropies' pooled quantile
  r.grpo.importance_sampling_correction = true;
  r.grpo.mask_truncated_completions = true;
  r.grpo.reward_funcs = {"tim", "accuracy", "format"};
  r.grpo.reward_weights = {1.0, 1.0, 0.5};
  r.optim.gradient_accumulation_steps = 2;
  return r;
}

tokenize::VQConfig tiny_vq_config() {
  tokenize::VQConfig c;
  c.image_size = 24;  // 3 x 3 codes: tiny_config's image_tokens
  c.channels = 8;
  c.z_channels = 8;
  c.codebook_size = static_cast<int>(tiny_config().image_vocab_size);
  c.codebook_dim = 4;
  c.norm_groups = 4;
  return c;
}

// Everything a rank's stage holds, made before the ranks' threads start (the models draw from
// the global generator).
StageInputs stage_inputs(const GrpoRecipe& recipe) {
  StageInputs in;
  in.policy.model = tiny_model();
  in.reference = tiny_model();
  in.reference->eval();
  for (auto& p : in.reference->parameters()) p.set_requires_grad(false);
  torch::manual_seed(2);
  in.policy.vq = tokenize::VQModel(tiny_vq_config());
  in.policy.vq->eval();
  in.builder = std::make_unique<model::SequenceBuilder>(tokenizer(), tiny_config());
  const auto options = reward_options_of(recipe);
  auto tim = reward::make_image_reward("tim", options);
  in.need_hidden = tim->needs_hidden();
  in.image_rewards.push_back({"tim", 1.0, std::move(tim)});
  in.answer_rewards.push_back({"accuracy", 1.0, reward::make_answer_reward("accuracy", options)});
  in.answer_rewards.push_back({"format", 0.5, reward::make_answer_reward("format", options)});
  const std::vector<std::string> colors{"red", "blue", "green", "yellow"};
  cv::RNG rng(7);
  for (int k = 0; k < 4; ++k) {
    data::Record row;
    row.prompt = "a photo of a " + colors[k] + " circle";
    row.image = cv::Mat(16, 16, CV_8UC3);
    rng.fill(row.image, cv::RNG::UNIFORM, 0, 256);
    row.qa_problem = "What color is the circle?";
    row.qa_solution = "<think>The circle is " + colors[k] + ".</think><answer>" + colors[k] +
                      "</answer>";
    row.qa_type = "OE";
    row.line = k + 1;
    in.rows.push_back(row);
  }
  return in;
}

TEST(GrpoBatch, EveryCollectiveOfAStepReachesTheBackendOnItsDevice) {
  if (!dist::backend_built("gloo")) GTEST_SKIP() << "built without Gloo's headers";
  static std::once_flag lazy;
  std::call_once(lazy, [] {
    torch::lazy::InitTorchScriptBackend();
    // The lazy device's eager fallback counts each op it runs in a map it does not lock, adding
    // an op's entry the first time; the ranks' threads would add aten::copy's at once (a crash
    // one run in seven). Copying into a lazy tensor here, on one thread, adds it first.
    torch::zeros({1}).to(kLazy).copy_(torch::ones({1}));
  });
  at::set_num_threads(1);
  auto recipe = stage_recipe();
  std::vector<StageInputs> inputs;
  for (int rank = 0; rank < 2; ++rank) inputs.push_back(stage_inputs(recipe));
  std::vector<c10::intrusive_ptr<DeviceCheckingBackend>> checks(2);
  std::vector<nlohmann::json> metrics(2);
  const int port = dist::free_port();
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.emplace_back([&, rank] {
      dist::RankEnv env;
      env.rank = rank;
      env.world_size = 2;
      env.master_port = port;
      dist::ProcessGroup group(env, "gloo", std::chrono::seconds(60));
      group.wrap_backend(
          [&](c10::intrusive_ptr<c10d::Backend> inner) {
            checks[rank] = c10::make_intrusive<DeviceCheckingBackend>(inner, kLazy);
            return checks[rank];
          },
          kLazy);
      // The stage's loop (grpo/stage.cpp), each collective of it: the starting weights, the
      // batch, its metrics, two updates under ZeRO stage 2 and the weights' check.
      auto& in = inputs[rank];
      auto& model = in.policy.model;
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) group.broadcast(p, 0);
      auto optimizer = train::make_optimizer(*model, recipe.optim);
      dist::ShardedAdamW sharded(group, *optimizer, 2, 1 << 12);
      const StepBatch batch = make_step_batch(in, recipe, 0, group);
      metrics[rank] = batch_metrics(batch, recipe, group);
      // Update 1 as dist.zero_stage 0 steps, update 2 as stage 2.
      for (int iteration = 0; iteration < recipe.grpo.num_iterations; ++iteration) {
        torch::AutoGradMode grad(true);
        optimizer->zero_grad();
        const auto update = accumulate_gradients(in, recipe, batch, 0, iteration == 0, group);
        metrics[rank].update(update.stats);
        EXPECT_TRUE(update.finite);
        if (iteration == 0) {
          dist::all_reduce_gradients(group, model->parameters(), 1 << 12);
          EXPECT_TRUE(std::isfinite(clip_gradients(model->parameters(), 1.0)));
          optimizer->step();
        } else {
          EXPECT_TRUE(std::isfinite(sharded.reduce_gradients(1.0)));
          sharded.step(1e-3);
        }
        EXPECT_EQ(dist::first_differing_parameter(group, model->parameters()), -1);
      }
      sharded.gather_state();
    });
  }
  for (auto& t : ranks) t.join();
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(checks[rank]);
    EXPECT_GT(checks[rank]->collectives, 20) << "rank " << rank;
    std::string where;
    for (const auto& w : checks[rank]->off_device) where += "\n  " + w;
    EXPECT_TRUE(checks[rank]->off_device.empty())
        << "rank " << rank << ": " << checks[rank]->off_device.size()
        << " tensors reached the backend off its device:" << where;
  }
  // The ranks logged the same step (rank 0 writes it).
  EXPECT_EQ(metrics[0].at("reward_t2i"), metrics[1].at("reward_t2i"));
  EXPECT_EQ(metrics[0].at("loss"), metrics[1].at("loss"));
}

}  // namespace
}  // namespace corl::grpo
