// The static KV cache against the cache it replaced: on the host, sampling through the static
// cache must draw exactly the tokens, and give exactly the logits, that decoding through a cache
// grown one position at a time gave (the decoder's general forward pass with a mask concatenated
// every step: the sampling loop of commit 3f84536, rebuilt here as the reference). Checked on the
// tiny test model and on the released base (models/shapeworld-base), images under CFG and answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "corl/model/config.h"
#include "corl/model/sampling.h"
#include "corl/tokenize/text_tokenizer.h"
#include "corl/util/safetensors.h"
#include "tiny_model.h"

namespace corl::model {
namespace {

using corl::testing::random_image;

// One step of the replaced decoder: the attention mask grows by concatenation, the positions are
// narrowed from the previous step's, and the layers run the general forward pass.
struct GrowingDecoder {
  UnifiedModel& model;
  torch::Tensor mask;
  torch::Tensor positions;
  KVCache cache;

  GrowingDecoder(UnifiedModel& m, const Batch& prefix, int64_t new_tokens)
      : model(m),
        mask(prefix.attention_mask),
        positions(prefix.position_ids),
        cache(m->config, prefix.input_ids.size(0), prefix.input_ids.size(1) + new_tokens,
              torch::kFloat32, torch::kCPU) {}

  torch::Tensor start(const Batch& prefix, int64_t repeats) {
    auto hidden = model->hidden_states(model->embed(prefix), mask, positions, &cache);
    hidden = hidden.select(1, hidden.size(1) - 1);
    if (repeats == 1) return hidden;
    const auto rows = torch::arange(hidden.size(0), torch::kInt64).repeat_interleave(repeats);
    cache.select_rows(rows);
    mask = mask.repeat_interleave(repeats, 0);
    positions = positions.repeat_interleave(repeats, 0);
    return hidden.index_select(0, rows);
  }

  torch::Tensor step(const torch::Tensor& next) {
    mask = torch::cat({mask, torch::ones({mask.size(0), 1}, mask.options())}, 1);
    positions = positions.narrow(1, positions.size(1) - 1, 1) + 1;
    const auto hidden = model->hidden_states(next, mask, positions, &cache);
    return hidden.select(1, hidden.size(1) - 1);
  }
};

ImageSamples growing_cache_images(UnifiedModel& model, const SequenceBuilder& builder,
                                  const std::vector<std::string>& prompts,
                                  const ImageSamplingOptions& options, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const int64_t rows = static_cast<int64_t>(prompts.size());
  std::vector<Sequence> sequences;
  for (const auto& p : prompts) sequences.push_back(builder.text_to_image(p));
  for (const auto& p : prompts) sequences.push_back(builder.text_to_image(p, {}, true));
  const auto batch = builder.collate(sequences, Padding::kLeft);
  const int64_t steps = model->config.image_tokens;
  GrowingDecoder decoder(model, batch, steps);
  auto hidden = decoder.start(batch, 1);
  std::vector<torch::Tensor> codes, kept;
  for (int64_t step = 0; step < steps; ++step) {
    const auto logits = model->image_logits(hidden);
    const auto guided =
        guided_logits(logits.narrow(0, 0, rows), logits.narrow(0, rows, rows), options.cfg_weight);
    kept.push_back(guided);
    const auto next = sample_tokens(guided, options, generator);
    codes.push_back(next);
    if (step + 1 == steps) break;
    hidden = decoder.step(model->embed_image_codes(torch::cat({next, next}).unsqueeze(1)));
  }
  return {torch::stack(codes, 1), torch::stack(kept, 1), {}};
}

TextSamples growing_cache_text(UnifiedModel& model, const SequenceBuilder& builder,
                               const std::vector<Sequence>& prefixes,
                               const SamplingOptions& options, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const auto batch = builder.collate(prefixes, Padding::kLeft);
  GrowingDecoder decoder(model, batch, options.max_new_tokens);
  auto hidden = decoder.start(batch, options.continuations);
  const int64_t rows = hidden.size(0);
  auto finished = torch::zeros({rows}, torch::kBool);
  std::vector<torch::Tensor> drawn, kept;
  for (int step = 0; step < options.max_new_tokens; ++step) {
    // A row that has ended draws padding from zero logits (SamplingOptions::keep_logits).
    const auto logits = model->text_logits(hidden).masked_fill(finished.unsqueeze(1), 0.0);
    kept.push_back(logits);
    auto next = sample_tokens(logits, options, generator);
    next = next.masked_fill(finished, builder.tokenizer().pad_id());
    drawn.push_back(next);
    finished = finished | next.eq(builder.eos_id());
    if (step + 1 == options.max_new_tokens || finished.all().item<bool>()) break;
    hidden = decoder.step(model->language_model->model->embed_tokens(next.unsqueeze(1)));
  }
  TextSamples out;
  const auto tokens = torch::stack(drawn, 1);
  for (int64_t r = 0; r < rows; ++r) {
    out.tokens.emplace_back();
    for (int64_t t = 0; t < tokens.size(1); ++t) {
      out.tokens.back().push_back(tokens[r][t].item<int64_t>());
      if (out.tokens.back().back() == builder.eos_id()) break;
    }
  }
  out.logits = torch::stack(kept, 1);
  return out;
}

// Images under CFG and sampled answers (G continuations of each prefix) through the static cache,
// against the growing cache, bit for bit: the same codes, tokens and logits.
void expect_same_draws(UnifiedModel& model, const SequenceBuilder& builder,
                       const std::vector<std::string>& prompts,
                       const std::vector<Sequence>& prefixes, int max_new_tokens, int seed) {
  ImageSamplingOptions images;
  images.cfg_weight = 5.0;
  images.temperature = 1.0;
  images.keep_logits = true;
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto fresh = generate_images(model, builder, prompts, images, g1);
  const auto before = growing_cache_images(model, builder, prompts, images, g2);
  EXPECT_TRUE(torch::equal(fresh.codes, before.codes));
  EXPECT_TRUE(torch::equal(fresh.logits, before.logits))
      << (fresh.logits - before.logits).abs().max().item<float>();

  for (bool greedy : {true, false}) {
    SamplingOptions text;
    text.greedy = greedy;
    text.max_new_tokens = max_new_tokens;
    text.keep_logits = true;
    text.continuations = greedy ? 1 : 3;
    text.drop_ended_rows = false;  // the batch's width as the growing cache decodes it
    auto t1 = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
    auto t2 = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
    const auto now = generate_text(model, builder, prefixes, text, t1);
    const auto then = growing_cache_text(model, builder, prefixes, text, t2);
    EXPECT_EQ(now.tokens, then.tokens) << "greedy " << greedy;
    ASSERT_EQ(now.logits.sizes(), then.logits.sizes()) << "greedy " << greedy;
    EXPECT_TRUE(torch::equal(now.logits, then.logits)) << "greedy " << greedy;
  }
}

TEST(StaticCache, HostDrawsEqualTheGrowingCacheOnTheTinyModel) {
  auto model = corl::testing::tiny_model();
  SequenceBuilder builder(corl::testing::tokenizer(), model->config);
  const std::vector<std::string> prompts = {"a photo of a red circle",
                                            "a photo of a blue square and a green diamond",
                                            "a photo of a yellow triangle"};
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(random_image(16, 2), "What color is the circle?"),
      builder.image_to_text(random_image(16, 3), "What color is the diamond in the photo?")};
  expect_same_draws(model, builder, prompts, prefixes, 12, 7);
}

// The released base (models/shapeworld-base) and its text tokenizer; null where it is absent.
struct ReleasedBase {
  UnifiedModel model{nullptr};
  std::unique_ptr<tokenize::TextTokenizer> text;
};

std::unique_ptr<ReleasedBase> released_base() {
  const std::filesystem::path dir = std::filesystem::path(CORL_SOURCE_DIR) / "models/shapeworld-base";
  if (!std::filesystem::exists(dir / "model.safetensors")) return nullptr;
  auto base = std::make_unique<ReleasedBase>();
  const auto metadata = util::read_metadata((dir / "model.safetensors").string());
  base->model = UnifiedModel(model_config_from_json(
      nlohmann::json::parse(metadata.at("model_config")), (dir / "model.safetensors").string()));
  util::load_module(*base->model, (dir / "model.safetensors").string());
  base->model->eval();
  base->text = std::make_unique<tokenize::TextTokenizer>((dir / "text.model").string());
  return base;
}

// The released base: the default model's sizes and weights, at a GRPO group's batch (2 prompts x
// 4 images: 16 guided rows, through the packed products). (Checked once more at eval's batch, 16
// prompts x 4 images, 128 rows, when this test was written: the same codes.)
TEST(StaticCache, HostDrawsEqualTheGrowingCacheOnTheReleasedBase) {
  const auto base = released_base();
  if (!base) GTEST_SKIP() << "no models/shapeworld-base";
  auto& model = base->model;
  SequenceBuilder builder(*base->text, model->config);
  std::vector<std::string> group;
  for (const char* p : {"a photo of two red circles", "a photo of a blue square left of a circle"}) {
    group.insert(group.end(), 4, p);
  }
  const int size = model->config.image_size;
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(random_image(size, 4), "How many circles are in the image?")};
  expect_same_draws(model, builder, group, prefixes, 16, 11);
}

// Rows that end leave the host's decoding batch (SamplingOptions::drop_ended_rows): GRPO groups
// of the released base's answers, of many lengths, against decoding every row to the longest.
// The same tokens, and the same logits and log-probs to float rounding (the products run over
// fewer rows); each generator's block of rows draws the random numbers of the whole batch.
TEST(StaticCache, EndedRowsLeaveTheBatchWithTheSameDraws) {
  const auto base = released_base();
  if (!base) GTEST_SKIP() << "no models/shapeworld-base";
  auto& model = base->model;
  SequenceBuilder builder(*base->text, model->config);
  const int size = model->config.image_size;
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(random_image(size, 5), "How many circles are in the image?"),
      builder.image_to_text(random_image(size, 6), "What color is the square?"),
      builder.image_to_text(random_image(size, 7), "Is there a red triangle in the image?"),
      builder.image_to_text(random_image(size, 8), "Where is the circle?")};
  SamplingOptions text;
  text.temperature = 1.0;
  text.max_new_tokens = 48;
  text.continuations = 8;
  text.keep_logits = true;
  text.keep_logp = true;
  const auto decode = [&](bool drop) {
    text.drop_ended_rows = drop;
    std::vector<at::Generator> generators{at::make_generator<at::CPUGeneratorImpl>(21),
                                          at::make_generator<at::CPUGeneratorImpl>(22)};
    return generate_text(model, builder, prefixes, text, generators);
  };
  const auto every = decode(false);
  const auto running = decode(true);
  EXPECT_EQ(running.tokens, every.tokens);
  // The lengths spread, so that rows left the batch more than once.
  size_t shortest = every.tokens.front().size(), longest = 0;
  for (const auto& row : every.tokens) {
    shortest = std::min(shortest, row.size());
    longest = std::max(longest, row.size());
  }
  EXPECT_GE(longest, shortest + 8);
  ASSERT_EQ(running.logits.sizes(), every.logits.sizes());
  EXPECT_TRUE(torch::allclose(running.logits, every.logits, 1e-5, 1e-5))
      << (running.logits - every.logits).abs().max().item<float>();
  EXPECT_TRUE(torch::allclose(running.logp, every.logp, 1e-5, 1e-5));
}

// The device's way of reading the cache (the whole buffer under the key mask), run on the host:
// the same distributions to float rounding; masked keys add exact zeros, but the sums run over
// more lanes, so the last bit may differ.
TEST(StaticCache, WholeBufferAttentionMatchesTheFilledPositions) {
  auto model = corl::testing::tiny_model();
  SequenceBuilder builder(corl::testing::tokenizer(), model->config);
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(random_image(16, 2), "What color is the circle?"),
      builder.image_to_text(random_image(16, 3), "What color is the diamond in the photo?")};
  SamplingOptions text;
  text.greedy = true;
  text.max_new_tokens = 12;
  text.keep_logits = true;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  text.cache_attention = CacheAttention::kFilled;
  const auto filled = generate_text(model, builder, prefixes, text, generator);
  text.cache_attention = CacheAttention::kWhole;
  const auto whole = generate_text(model, builder, prefixes, text, generator);
  EXPECT_EQ(filled.tokens, whole.tokens);
  EXPECT_TRUE(torch::allclose(filled.logits, whole.logits, 1e-5, 1e-5))
      << (filled.logits - whole.logits).abs().max().item<float>();

  ImageSamplingOptions images;
  images.cfg_weight = 3.0;
  images.greedy = true;
  images.keep_logits = true;
  const std::vector<std::string> prompts = {"a photo of a red circle", "a photo of a blue square"};
  images.cache_attention = CacheAttention::kFilled;
  const auto a = generate_images(model, builder, prompts, images, generator);
  images.cache_attention = CacheAttention::kWhole;
  const auto b = generate_images(model, builder, prompts, images, generator);
  EXPECT_TRUE(torch::equal(a.codes, b.codes));
  EXPECT_TRUE(torch::allclose(a.logits, b.logits, 1e-5, 1e-5));
}

// Decoding writes each position where it belongs: the buffers keep their addresses, the key mask
// marks the prefix's real tokens and every decoded position, and the slot is the next position.
TEST(StaticCache, DecodingStepsWriteInPlaceByPosition) {
  const auto c = corl::testing::tiny_config();
  auto model = corl::testing::tiny_model();
  torch::NoGradGuard no_grad;
  for (auto attention : {CacheAttention::kFilled, CacheAttention::kWhole}) {
    KVCache cache(c, 2, 7, torch::kFloat32, torch::kCPU, attention);
    const auto keys = cache.keys(0).data_ptr();
    const auto mask = torch::tensor({{0, 1, 1}, {1, 1, 1}}, torch::kInt64);  // row 0 left-padded
    const auto embeddings = torch::randn({2, 3, c.hidden_size});
    model->hidden_states(embeddings, mask, positions_from_mask(mask), &cache);
    auto positions = torch::tensor({{1}, {2}}, torch::kInt64);
    for (int step = 0; step < 4; ++step) {
      positions = positions + 1;
      model->decode_step(torch::randn({2, 1, c.hidden_size}), positions, cache);
    }
    EXPECT_EQ(cache.keys(0).data_ptr(), keys);
    EXPECT_EQ(cache.length(), 7);
    EXPECT_EQ(cache.slot().item<int64_t>(), 7);
    EXPECT_TRUE(torch::equal(cache.key_mask(), torch::tensor({{0, 1, 1, 1, 1, 1, 1},
                                                              {1, 1, 1, 1, 1, 1, 1}})
                                                   .to(torch::kBool)));
    // Nothing is written past the capacity.
    EXPECT_THROW(model->decode_step(torch::randn({2, 1, c.hidden_size}), positions + 1, cache),
                 std::exception);
  }
}

}  // namespace
}  // namespace corl::model
