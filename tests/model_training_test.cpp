// model.gradient_checkpointing and model.freeze (model/training.h): a checkpointed decoder gives
// the gradients of the plain one, also under the CPU's bf16 autocast (run.autocast: bf16), and
// frozen parts get no gradient and no optimizer state.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "corl/model/autocast.h"
#include "corl/model/training.h"
#include "corl/model/ulm.h"
#include "corl/train/optimizer.h"
#include "tiny_model.h"

namespace corl::model {
namespace {

using corl::testing::random_image;
using corl::testing::tiny_config;
using corl::testing::tiny_model;
using corl::testing::tokenizer;

// Both tasks and a padded row, as pretraining and the GRPO updates feed the model.
Batch mixed_batch(const ModelConfig& c) {
  SequenceBuilder builder(tokenizer(), c);
  torch::manual_seed(11);
  return builder.collate(
      {builder.text_to_image("a photo of a blue square", torch::randint(0, 40, {c.image_tokens})),
       builder.image_to_text(random_image(16, 1), "What color is the square?", "blue"),
       builder.text_to_image("a photo of a diamond", torch::randint(0, 40, {c.image_tokens}))},
      Padding::kRight);
}

// With bf16_forward the forward pass runs under CPU bf16 autocast and the backward pass after it,
// outside.
std::map<std::string, torch::Tensor> gradients(UnifiedModel& model, const Batch& batch,
                                               bool bf16_forward = false) {
  model->zero_grad();
  Losses losses;
  {
    const Autocast autocast(bf16_forward, at::kCPU);
    losses = supervised_losses(model, batch);
  }
  (losses.text + losses.image).backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& p : model->named_parameters()) {
    if (p.value().grad().defined()) grads[p.key()] = p.value().grad().clone();
  }
  return grads;
}

// The recomputed forward pass repeats the same operations on the same values, so the gradients
// can differ only where a sum is taken in another order: a few float32 roundings of the largest
// gradient element.
void expect_same_gradients(const std::map<std::string, torch::Tensor>& plain,
                           const std::map<std::string, torch::Tensor>& checkpointed) {
  ASSERT_EQ(plain.size(), checkpointed.size());
  for (const auto& [name, g] : plain) {
    ASSERT_TRUE(checkpointed.count(name)) << name << " lost its gradient";
    const double scale = g.abs().max().item<double>();
    const double tolerance = 16 * std::numeric_limits<float>::epsilon() * std::max(scale, 1e-30);
    EXPECT_LE((g - checkpointed.at(name)).abs().max().item<double>(), tolerance) << name;
  }
}

TEST(GradientCheckpointing, SameGradientsAsThePlainDecoder) {
  auto model = tiny_model();
  model->train();
  const auto batch = mixed_batch(tiny_config());
  const auto plain = gradients(model, batch);
  EXPECT_GT(plain.count("language_model.model.layers.0.self_attn.q_proj.weight"), 0u);
  TrainingSection training;
  training.gradient_checkpointing = true;
  apply_training(model, training);
  expect_same_gradients(plain, gradients(model, batch));
}

// With every part before the decoder frozen, the first layer's input needs no gradient; its
// weights must still get theirs (the classic pitfall of reentrant checkpointing).
TEST(GradientCheckpointing, TrainsLayersWhoseInputNeedsNoGradient) {
  auto model = tiny_model();
  model->train();
  TrainingSection training;
  training.freeze = freezable_parts();
  apply_training(model, training);
  model->language_model->model->embed_tokens->weight.set_requires_grad(false);
  const auto batch = mixed_batch(tiny_config());
  const auto plain = gradients(model, batch);
  training.gradient_checkpointing = true;
  apply_training(model, training);
  const auto checkpointed = gradients(model, batch);
  EXPECT_GT(checkpointed.count("language_model.model.layers.0.mlp.up_proj.weight"), 0u);
  expect_same_gradients(plain, checkpointed);
}

// Sampling with a KV cache under no_grad is untouched by the setting: same logits either way.
TEST(GradientCheckpointing, InferenceIsUnchanged) {
  auto model = tiny_model();
  const auto batch = mixed_batch(tiny_config());
  torch::NoGradGuard no_grad;
  const auto before =
      model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
  model->language_model->model->gradient_checkpointing = true;
  const auto after =
      model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
  EXPECT_TRUE(torch::equal(before, after));
}

// bf16 keeps 8 significant bits: a rounding moves a value by at most 2^-9 of it. Each product
// rounds its two inputs and its output, and the decoder chains a handful of products per layer,
// so the hidden states move by a few dozen such roundings of their largest value at most; float32
// rounding alone would move them by 2^-24 of it.
TEST(CpuAutocast, HiddenStatesAreFloat32sUpToBf16Rounding) {
  auto model = tiny_model();
  const auto batch = mixed_batch(tiny_config());
  torch::NoGradGuard no_grad;
  const auto exact =
      model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
  torch::Tensor mixed;
  {
    const Autocast autocast(true, at::kCPU);
    mixed = model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids)
                .to(torch::kFloat32);
  }
  const double scale = exact.abs().max().item<double>();
  const double moved = (mixed - exact).abs().max().item<double>();
  EXPECT_LE(moved, 32 * std::ldexp(1.0, -9) * scale);
  EXPECT_GT(moved, 64 * std::ldexp(1.0, -24) * scale) << "autocast changed nothing";
}

// Autocast is thread-local and may be off by the time the backward pass recomputes a checkpointed
// layer: the recompute must still run in the forward's precision, or the gradients would be those
// of another forward pass (off by bf16 roundings, far beyond the float32 tolerance).
TEST(CpuAutocast, CheckpointedGradientsMatchThePlainDecoders) {
  auto model = tiny_model();
  model->train();
  const auto batch = mixed_batch(tiny_config());
  const auto plain = gradients(model, batch, /*bf16_forward=*/true);
  TrainingSection training;
  training.gradient_checkpointing = true;
  apply_training(model, training);
  expect_same_gradients(plain, gradients(model, batch, /*bf16_forward=*/true));
}

// A scope spanning optimizer steps (a GRPO stage's) must see each step's weights: after
// refresh() its products are those of a new scope on the updated model, to the bit. Without it
// LibTorch would keep multiplying by the bf16 copies of the weights it cast first.
TEST(CpuAutocast, RefreshShowsAnInPlaceStepToTheProducts) {
  auto model = tiny_model();
  model->train();
  const auto batch = mixed_batch(tiny_config());
  const auto hidden = [&] {
    torch::NoGradGuard no_grad;
    return model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids)
        .to(torch::kFloat32);
  };
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.5));
  torch::Tensor before;
  torch::Tensor stale;
  torch::Tensor refreshed;
  {
    const Autocast autocast(true, at::kCPU);
    before = hidden();
    optimizer.zero_grad();
    const auto losses = supervised_losses(model, batch);
    (losses.text + losses.image).backward();
    optimizer.step();
    stale = hidden();
    autocast.refresh();
    refreshed = hidden();
  }
  torch::Tensor fresh;
  {
    const Autocast autocast(true, at::kCPU);
    fresh = hidden();
  }
  EXPECT_TRUE(torch::equal(refreshed, fresh));
  EXPECT_FALSE(torch::equal(fresh, before)) << "the step changed nothing";
  EXPECT_FALSE(torch::equal(stale, fresh)) << "LibTorch no longer caches casts: refresh is moot";
}

TEST(Freeze, FrozenPartsGetNoGradientAndNoOptimizerState) {
  auto model = tiny_model();
  model->train();
  TrainingSection training;
  training.freeze = freezable_parts();  // ULM-R1: the language model alone
  const int64_t trained = apply_training(model, training);
  int64_t language = 0;
  for (const auto& p : model->language_model->parameters()) language += p.numel();
  EXPECT_EQ(trained, language);

  train::OptimizerSection o;
  auto optimizer = train::make_optimizer(*model, o);
  const auto grads = gradients(model, mixed_batch(tiny_config()));
  optimizer->step();
  std::set<const void*> with_state;
  for (const auto& [key, state] : optimizer->state()) with_state.insert(key);
  for (const auto& p : model->named_parameters()) {
    const bool frozen = p.key().rfind("language_model.", 0) != 0;
    const bool has_state = with_state.count(p.value().unsafeGetTensorImpl()) > 0;
    EXPECT_EQ(frozen, !p.value().requires_grad()) << p.key();
    EXPECT_EQ(grads.count(p.key()) > 0, !frozen) << p.key();
    EXPECT_EQ(has_state, !frozen) << p.key();
  }
}

}  // namespace
}  // namespace corl::model
