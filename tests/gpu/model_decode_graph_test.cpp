// Decoding steps captured as a CUDA graph and replayed, against the same steps run eagerly on the
// same device (both read the whole static cache under its key mask, so they compute the same
// operators on the same shapes): the same codes and tokens, logits to the device's rounding.
// Skipped, with a message, where no CUDA device is visible.
#include <gtest/gtest.h>

#include "corl/model/decode_graph.h"
#include "corl/model/sampling.h"
#include "../tiny_model.h"

namespace corl::model {
namespace {

#define SKIP_WITHOUT_CUDA_GRAPHS()                                                          \
  do {                                                                                      \
    if (!cuda_graphs_built()) GTEST_SKIP() << "this build has no CUDA graph support";       \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible: GPU check"; \
  } while (0)

const torch::Device kCuda(torch::kCUDA, 0);

TEST(DecodeGraphGpu, ReplaysTheCapturedStep) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  auto count = torch::zeros({1}, torch::TensorOptions().dtype(torch::kInt64).device(kCuda));
  {
    StepRunner run(plan_decode(kCuda, true, true), "test");
    for (int i = 0; i < 6; ++i) run([&] { count.add_(1); });
    EXPECT_TRUE(run.replaying());
  }
  EXPECT_EQ(count.item<int64_t>(), 6);  // one eager, one captured and replayed, four replays
}

TEST(DecodeGraphGpu, GraphedSamplingEqualsEagerSampling) {
  SKIP_WITHOUT_CUDA_GRAPHS();
  auto model = corl::testing::tiny_model();
  model->to(kCuda);
  SequenceBuilder builder(corl::testing::tokenizer(), model->config);
  ImageSamplingOptions images;
  images.cfg_weight = 5.0;
  images.keep_logits = true;
  images.keep_logp = true;
  const std::vector<std::string> prompts = {"a photo of a red circle", "a photo of a blue square"};
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(1);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(1);
  images.cuda_graphs = true;
  const auto graphed = generate_images(model, builder, prompts, images, g1);
  images.cuda_graphs = false;
  const auto eager = generate_images(model, builder, prompts, images, g2);
  EXPECT_TRUE(torch::equal(graphed.codes, eager.codes));
  EXPECT_TRUE(torch::allclose(graphed.logits.cpu(), eager.logits.cpu(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(graphed.logp, eager.logp, 1e-5, 1e-5));

  SamplingOptions text;
  text.max_new_tokens = 20;  // past two end checks
  text.continuations = 3;
  text.keep_logp = true;
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(corl::testing::random_image(16, 2), "What color is the circle?"),
      builder.image_to_text(corl::testing::random_image(16, 3), "What color is the square?")};
  auto t1 = at::make_generator<at::CPUGeneratorImpl>(2);
  auto t2 = at::make_generator<at::CPUGeneratorImpl>(2);
  text.cuda_graphs = true;
  const auto a = generate_text(model, builder, prefixes, text, t1);
  text.cuda_graphs = false;
  const auto b = generate_text(model, builder, prefixes, text, t2);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_TRUE(torch::allclose(a.logp, b.logp, 1e-5, 1e-5));
}

}  // namespace
}  // namespace corl::model
