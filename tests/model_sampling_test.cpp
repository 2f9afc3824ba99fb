#include <gtest/gtest.h>

#include "corl/model/sampling.h"
#include "tiny_model.h"

namespace corl::model {
namespace {

// Worked by hand in binary; bf16 keeps 8 significant bits and rounds each op to nearest even.
struct GuidanceCase {
  float cond;
  float uncond;
  double weight;
  float fp32;  // uncond + weight * (cond - uncond), exact in float32
  float bf16;  // the same rounded to bf16 after each op
};

constexpr GuidanceCase kGuidanceCases[] = {
    // cond − uncond = 2^-7; · 1.5 = 3·2^-8 (exact); 1 + 3·2^-8 needs 9 bits: ties to 1 + 2^-6.
    {1.0078125f, 1.0f, 1.5, 1.01171875f, 1.015625f},
    // cond − uncond = 1.1111111b; · 5 = 1001.1111011b rounds down to 1001.1111b (9.9375); plus
    // 1.0078125 = 1010.1111001b rounds down to 10.9375, where float32 keeps 10.96875.
    {3.0f, 1.0078125f, 5.0, 10.96875f, 10.9375f},
    // Exact in both: guidance agrees wherever bf16 needs no rounding.
    {2.0f, 1.0f, 5.0, 6.0f, 6.0f},
};

TEST(GuidedLogits, CombinesBf16LogitsInFloat32) {
  for (const GuidanceCase& c : kGuidanceCases) {
    const auto cond = torch::tensor({c.cond}).to(torch::kBFloat16);
    const auto uncond = torch::tensor({c.uncond}).to(torch::kBFloat16);
    const auto guided = guided_logits(cond, uncond, c.weight);
    ASSERT_EQ(guided.scalar_type(), torch::kFloat32);
    EXPECT_EQ(guided.item<float>(), c.fp32) << c.cond << " " << c.uncond << " w " << c.weight;
    const auto c32 = cond.to(torch::kFloat32);
    const auto u32 = uncond.to(torch::kFloat32);
    EXPECT_TRUE(torch::equal(guided, u32 + c.weight * (c32 - u32)));
    // The hand-worked bf16 combine, which the guided logits must not be.
    EXPECT_EQ((uncond + c.weight * (cond - uncond)).item<float>(), c.bf16);
  }
  EXPECT_NE(kGuidanceCases[0].fp32, kGuidanceCases[0].bf16);
}

TEST(GuidedLogits, Float32InputsAreCombinedAsGiven) {
  const auto cond = torch::tensor({{0.5f, -1.25f}, {2.0f, 0.0f}});
  const auto uncond = torch::tensor({{0.25f, 0.75f}, {-1.0f, 0.0f}});
  EXPECT_TRUE(torch::equal(guided_logits(cond, uncond, 3.0),
                           torch::tensor({{1.0f, -5.25f}, {8.0f, 0.0f}})));
}

// The sampler draws from the float32 combine of a bf16 model's logits: its first step's guided
// logits, against the conditional and unconditional rows of the same (left-padded) forward pass.
TEST(GuidedLogits, SamplerCombinesABf16ModelsLogitsInFloat32) {
  const auto c = corl::testing::tiny_config();
  auto model = corl::testing::tiny_model();
  model->to(torch::kBFloat16);
  SequenceBuilder builder(corl::testing::tokenizer(), c);
  const std::vector<std::string> prompts = {"a photo of a red circle",
                                            "a photo of a blue square and a green diamond"};
  ImageSamplingOptions options;
  options.cfg_weight = 5.0;
  options.keep_logits = true;
  options.use_cache = false;  // the first step is then exactly the forward pass below
  auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto samples = generate_images(model, builder, prompts, options, generator);
  ASSERT_EQ(samples.logits.scalar_type(), torch::kFloat32);

  torch::NoGradGuard no_grad;
  std::vector<Sequence> sequences;
  for (const auto& p : prompts) sequences.push_back(builder.text_to_image(p));
  for (const auto& p : prompts) sequences.push_back(builder.text_to_image(p, {}, true));
  const auto batch = builder.collate(sequences, Padding::kLeft);
  const auto h =
      model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
  const auto logits = model->image_logits(h.select(1, h.size(1) - 1));
  ASSERT_EQ(logits.scalar_type(), torch::kBFloat16);
  const auto cond = logits.narrow(0, 0, 2).to(torch::kFloat32);
  const auto uncond = logits.narrow(0, 2, 2).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(samples.logits.select(1, 0), uncond + 5.0 * (cond - uncond)));
}

}  // namespace
}  // namespace corl::model
