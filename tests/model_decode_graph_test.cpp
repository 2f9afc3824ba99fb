// When decoding runs as a CUDA graph and when it falls back to eager steps, as far as the host
// shows it: the plan's decision and reasons, the runner's eager path, the log-once rule, and
// sampling with graphs asked for on the host (the fallback) equal to sampling without.
// tests/gpu/model_decode_graph_test.cpp replays captured steps on a GPU.
#include <gtest/gtest.h>

#include "corl/model/decode_graph.h"
#include "corl/model/sampling.h"
#include "tiny_model.h"

namespace corl::model {
namespace {

const torch::Device kCuda(torch::kCUDA, 0);

TEST(DecodePlan, GraphsOnlyOnACudaDeviceThroughTheCache) {
  const auto host = plan_decode(torch::kCPU, true, true);
  EXPECT_FALSE(host.graph);
  EXPECT_FALSE(host.on_cuda);  // nothing to log on the host
  EXPECT_NE(host.reason.find("cpu"), std::string::npos) << host.reason;

  const auto device = plan_decode(kCuda, true, true);
  EXPECT_EQ(device.graph, cuda_graphs_built());
  EXPECT_TRUE(device.on_cuda);
  if (!cuda_graphs_built()) {
    EXPECT_NE(device.reason.find("no CUDA graph"), std::string::npos);
  }

  const auto off = plan_decode(kCuda, false, true);
  EXPECT_FALSE(off.graph);
  EXPECT_TRUE(off.on_cuda);
  EXPECT_NE(off.reason.find("off"), std::string::npos) << off.reason;

  const auto recomputed = plan_decode(kCuda, true, false);
  EXPECT_FALSE(recomputed.graph);
  EXPECT_NE(recomputed.reason.find("recomputes"), std::string::npos) << recomputed.reason;
}

// This build compiles the graph code wherever its LibTorch has CUDA, as the PyPI wheel does.
TEST(DecodePlan, BuiltWithTheWheelsCudaPart) {
#ifdef CORL_EXPECT_CUDA_GRAPHS
  EXPECT_TRUE(cuda_graphs_built());
#else
  GTEST_SKIP() << "LibTorch without CUDA";
#endif
}

TEST(DecodePlan, ReasonsAreLoggedOnce) {
  const std::string message = "decode graph test: a reason given twice";
  EXPECT_TRUE(log_once(message));
  EXPECT_FALSE(log_once(message));
  EXPECT_TRUE(log_once(message + ", and another"));
}

TEST(StepRunner, WithoutAGraphRunsEveryStepEagerly) {
  StepRunner run(plan_decode(torch::kCPU, true, true), "test");
  auto count = torch::zeros({1}, torch::kInt64);
  for (int i = 0; i < 5; ++i) run([&] { count.add_(1); });
  EXPECT_EQ(count.item<int64_t>(), 5);
  EXPECT_FALSE(run.replaying());
}

// Asking for graphs on the host is the fallback: the same codes, tokens and logits as not asking.
TEST(StepRunner, GraphsAskedForOnTheHostSampleAsWithout) {
  auto model = corl::testing::tiny_model();
  SequenceBuilder builder(corl::testing::tokenizer(), model->config);
  ImageSamplingOptions images;
  images.cfg_weight = 5.0;
  images.keep_logits = true;
  const std::vector<std::string> prompts = {"a photo of a red circle", "a photo of a blue square"};
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(1);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(1);
  images.cuda_graphs = true;
  const auto with = generate_images(model, builder, prompts, images, g1);
  images.cuda_graphs = false;
  const auto without = generate_images(model, builder, prompts, images, g2);
  EXPECT_TRUE(torch::equal(with.codes, without.codes));
  EXPECT_TRUE(torch::equal(with.logits, without.logits));

  SamplingOptions text;
  text.max_new_tokens = 10;
  text.continuations = 2;
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(corl::testing::random_image(16, 2), "What color is the circle?")};
  auto t1 = at::make_generator<at::CPUGeneratorImpl>(2);
  auto t2 = at::make_generator<at::CPUGeneratorImpl>(2);
  text.cuda_graphs = true;
  const auto a = generate_text(model, builder, prefixes, text, t1);
  text.cuda_graphs = false;
  const auto b = generate_text(model, builder, prefixes, text, t2);
  EXPECT_EQ(a.tokens, b.tokens);
}

}  // namespace
}  // namespace corl::model
