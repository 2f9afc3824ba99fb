#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "corl/model/sampling.h"
#include "corl/model/ulm.h"
#include "tiny_model.h"

namespace corl::model {
namespace {

using corl::testing::random_image;
using corl::testing::tiny_config;
using corl::testing::tiny_model;
using corl::testing::tokenizer;

// Plain attention: explicit scores, softmax and repeated key/value heads.
torch::Tensor reference_decoder(UnifiedModel& model, const torch::Tensor& x,
                                const torch::Tensor& positions) {
  const ModelConfig& c = model->config;
  const int64_t b = x.size(0), t = x.size(1), d = c.head_dim();
  auto rms = [&](const torch::Tensor& h, const RMSNorm& norm) {
    return norm->weight * h / torch::sqrt(h.pow(2).mean(-1, true) + c.rms_norm_eps);
  };
  // Rotary by explicit angle per pair (i, i + d/2), as in the RoFormer paper's half-split form.
  auto rotate = [&](const torch::Tensor& q) {  // [B, H, T, d]
    auto out = q.clone();
    for (int64_t i = 0; i < d / 2; ++i) {
      const double freq = std::pow(c.rope_theta, -2.0 * i / d);
      const auto angle = (positions.to(torch::kDouble) * freq).to(q.scalar_type()).unsqueeze(1);
      const auto a = q.select(-1, i), bb = q.select(-1, i + d / 2);
      out.select(-1, i).copy_(a * angle.cos() - bb * angle.sin());
      out.select(-1, i + d / 2).copy_(bb * angle.cos() + a * angle.sin());
    }
    return out;
  };
  auto h = x;
  const auto causal = torch::ones({t, t}).tril().to(torch::kBool);
  for (const auto& module : *model->language_model->model->layers) {
    auto layer = module->as<LlamaDecoderLayer>();
    auto attn = layer->self_attn;
    const auto n = rms(h, layer->input_layernorm);
    auto q = attn->q_proj(n).view({b, t, c.num_heads, d}).transpose(1, 2);
    auto k = attn->k_proj(n).view({b, t, c.num_kv_heads, d}).transpose(1, 2);
    auto v = attn->v_proj(n).view({b, t, c.num_kv_heads, d}).transpose(1, 2);
    q = rotate(q);
    k = rotate(k).repeat_interleave(c.num_heads / c.num_kv_heads, 1);
    v = v.repeat_interleave(c.num_heads / c.num_kv_heads, 1);
    auto scores = q.matmul(k.transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
    scores = scores.masked_fill(~causal, -1e30);
    const auto out = scores.softmax(-1).matmul(v).transpose(1, 2).reshape({b, t, -1});
    h = h + attn->o_proj(out);
    const auto m = rms(h, layer->post_attention_layernorm);
    h = h + layer->mlp->down_proj(torch::silu(layer->mlp->gate_proj(m)) * layer->mlp->up_proj(m));
  }
  return rms(h, model->language_model->model->norm);
}

TEST(Decoder, MatchesPlainAttentionReference) {
  auto model = tiny_model();
  torch::manual_seed(3);
  const auto x = torch::randn({2, 7, model->config.hidden_size});
  const auto mask = torch::ones({2, 7}, torch::kLong);
  const auto positions = torch::arange(7).unsqueeze(0).repeat({2, 1});
  torch::NoGradGuard no_grad;
  const auto ours = model->hidden_states(x, mask, positions);
  const auto reference = reference_decoder(model, x, positions);
  EXPECT_TRUE(torch::allclose(ours, reference, 1e-4, 1e-5))
      << (ours - reference).abs().max().item<float>();
}

// The convolution stem, worked pixel by pixel: each stem channel sums its 3x3 neighbourhood
// (zeros outside the image), then each patch vector is the sum over its pixels of the activated
// stem channels, by explicit loops rather than convolutions.
TEST(VisionStem, EmbeddingsMatchExplicitNeighbourhoodSums) {
  ModelConfig c = tiny_config();
  c.vision_stem_channels = 3;
  SiglipEmbeddings embeddings(c);
  const auto& stem = embeddings->stem;
  ASSERT_TRUE(stem);
  EXPECT_EQ(stem->weight.sizes(), torch::IntArrayRef({3, 3, 3, 3}));
  const auto image = random_image(c.image_size, 5).unsqueeze(0);
  torch::NoGradGuard no_grad;
  const auto ours = embeddings(image);

  const int64_t size = c.image_size, p = c.patch_size, grid = size / p;
  const auto ws = stem->weight, bs = stem->bias;
  auto hidden = torch::zeros({3, size, size});
  for (int64_t o = 0; o < 3; ++o) {
    for (int64_t y = 0; y < size; ++y) {
      for (int64_t x = 0; x < size; ++x) {
        auto sum = bs[o].clone();
        for (int64_t dy = -1; dy <= 1; ++dy) {
          for (int64_t dx = -1; dx <= 1; ++dx) {
            if (y + dy < 0 || y + dy >= size || x + dx < 0 || x + dx >= size) continue;
            sum += (ws[o].select(1, dy + 1).select(1, dx + 1) * image[0].select(1, y + dy).select(1, x + dx)).sum();
          }
        }
        hidden[o][y][x] = sum;
      }
    }
  }
  hidden = torch::gelu(hidden, "tanh");
  const auto wp = embeddings->patch_embedding->weight;  // [D, 3, p, p]
  for (int64_t gy = 0; gy < grid; ++gy) {
    for (int64_t gx = 0; gx < grid; ++gx) {
      const auto block = hidden.narrow(1, gy * p, p).narrow(2, gx * p, p);
      const auto patch = (wp * block.unsqueeze(0)).sum({1, 2, 3}) +
                         embeddings->patch_embedding->bias +
                         embeddings->position_embedding->weight[gy * grid + gx];
      EXPECT_TRUE(torch::allclose(ours[0][gy * grid + gx], patch, 1e-4, 1e-5))
          << "patch (" << gy << ", " << gx << ")";
    }
  }
}

TEST(VisionStem, IsRecordedInTheModelConfigAndAbsentFromOlderOnes) {
  ModelConfig c = tiny_config();
  c.vision_stem_channels = 12;
  auto json = to_json(c);
  EXPECT_EQ(json.at("vision_stem_channels"), 12);
  EXPECT_EQ(model_config_from_json(json, "test").vision_stem_channels, 12);
  json.erase("vision_stem_channels");
  EXPECT_EQ(model_config_from_json(json, "test").vision_stem_channels, 0);
  auto plain = tiny_model();
  for (const auto& item : plain->named_parameters()) {
    EXPECT_EQ(item.key().find("stem"), std::string::npos) << item.key();
  }
}

TEST(Rotary, ScoresDependOnRelativePositionOnly) {
  torch::manual_seed(1);
  const auto q = torch::randn({1, 1, 1, 16}, torch::kDouble);
  const auto k = torch::randn({1, 1, 1, 16}, torch::kDouble);
  auto score = [&](int64_t pq, int64_t pk) {
    auto [cq, sq] = rotary_cos_sin(torch::full({1, 1}, pq), 16, 10000.0, torch::kDouble);
    auto [ck, sk] = rotary_cos_sin(torch::full({1, 1}, pk), 16, 10000.0, torch::kDouble);
    return (apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum().item<double>();
  };
  // Angles are computed in fp32, as transformers does: equal to fp32 rounding at position 105.
  EXPECT_NEAR(score(5, 2), score(105, 102), 1e-6);
  EXPECT_NEAR(score(0, 0), (q * k).sum().item<double>(), 1e-12);  // angle 0 is the identity
  EXPECT_GT(std::abs(score(5, 2) - score(2, 5)), 1e-6);
}

TEST(SequenceBuilder, TextToImageTargetsAreShiftedByOne) {
  const auto c = tiny_config();
  SequenceBuilder builder(tokenizer(), c);
  const auto codes = torch::arange(10, 10 + c.image_tokens);
  const Sequence s = builder.text_to_image("a photo of a red circle", codes);
  const int64_t begin = tokenizer().piece_id("<begin_of_image>");
  const size_t prefix = s.ids.size() - c.image_tokens;
  EXPECT_EQ(s.ids[0], tokenize::kBosId);
  EXPECT_EQ(s.ids[prefix - 1], begin);
  EXPECT_EQ(s.image_targets[prefix - 1], 10);  // <begin_of_image> scores the first code
  for (int64_t i = 0; i < c.image_tokens; ++i) {
    EXPECT_TRUE(s.generation[prefix + i]);
    EXPECT_EQ(s.codes[prefix + i], 10 + i);
    EXPECT_EQ(s.image_targets[prefix + i], i + 1 < c.image_tokens ? 11 + i : kIgnore);
  }
  for (size_t t = 0; t + 1 < prefix; ++t) EXPECT_EQ(s.image_targets[t], kIgnore);
  for (auto target : s.text_targets) EXPECT_EQ(target, kIgnore);

  const Sequence u = builder.text_to_image("a photo of a red circle", {}, true);
  EXPECT_EQ(u.ids.size(), prefix);
  EXPECT_EQ(u.ids.front(), tokenize::kBosId);
  EXPECT_EQ(u.ids.back(), begin);
  for (size_t t = 1; t + 1 < u.ids.size(); ++t) EXPECT_EQ(u.ids[t], tokenize::kPadId);
}

TEST(SequenceBuilder, ImageToTextTargetsCoverAnswerAndEos) {
  const auto c = tiny_config();
  SequenceBuilder builder(tokenizer(), c);
  const auto prefix = builder.image_to_text(random_image(16, 0), "What color is the circle?");
  const auto full = builder.image_to_text(random_image(16, 0), "What color is the circle?",
                                          "<answer>red</answer>");
  const auto answer = tokenizer().encode("<answer>red</answer>");
  ASSERT_EQ(full.ids.size(), prefix.ids.size() + answer.size() + 1);
  int placeholders = 0;
  for (auto u : full.understanding) placeholders += u;
  EXPECT_EQ(placeholders, c.vision_patches());
  for (size_t t = 0; t < full.ids.size(); ++t) {
    const bool scored = t + 1 >= prefix.ids.size() && t + 1 < full.ids.size();
    EXPECT_EQ(full.text_targets[t], scored ? full.ids[t + 1] : kIgnore) << t;
  }
  EXPECT_EQ(full.ids.back(), tokenize::kEosId);
}

// The loss equals cross-entropy worked from full logits with log_softmax and gather.
TEST(SupervisedLosses, MatchFullLogitsReference) {
  const auto c = tiny_config();
  auto model = tiny_model();
  SequenceBuilder builder(tokenizer(), c);
  const auto batch = builder.collate(
      {builder.text_to_image("a photo of a blue square", torch::randint(0, 40, {c.image_tokens})),
       builder.image_to_text(random_image(16, 1), "What color is the square?", "blue"),
       builder.text_to_image("a photo of a diamond", torch::randint(0, 40, {c.image_tokens}))},
      Padding::kRight);
  const auto losses = supervised_losses(model, batch);
  const auto hidden =
      model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
  auto reference = [&](const torch::Tensor& logits, const torch::Tensor& targets) {
    const auto valid = targets.ne(kIgnore);
    const auto logp = logits.log_softmax(-1).gather(-1, targets.clamp_min(0).unsqueeze(-1));
    return -(logp.squeeze(-1) * valid).sum() / valid.sum();
  };
  EXPECT_NEAR(losses.text.item<double>(),
              reference(model->text_logits(hidden), batch.text_targets).item<double>(), 1e-5);
  EXPECT_NEAR(losses.image.item<double>(),
              reference(model->image_logits(hidden), batch.image_targets).item<double>(), 1e-5);
  EXPECT_EQ(losses.image_tokens, 2 * c.image_tokens);
}

TEST(Sampling, CachedTextDecodingMatchesRecomputation) {
  const auto c = tiny_config();
  auto model = tiny_model();
  SequenceBuilder builder(tokenizer(), c);
  // Prefixes of different lengths, so that left padding is exercised too.
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(random_image(16, 2), "What color is the circle?"),
      builder.image_to_text(random_image(16, 3), "What color is the diamond in the photo?")};
  SamplingOptions options;
  options.greedy = true;
  options.max_new_tokens = 12;
  options.keep_logits = true;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto cached = generate_text(model, builder, prefixes, options, generator);
  options.use_cache = false;
  const auto recomputed = generate_text(model, builder, prefixes, options, generator);
  EXPECT_EQ(cached.tokens, recomputed.tokens);
  ASSERT_EQ(cached.logits.sizes(), recomputed.logits.sizes());
  EXPECT_TRUE(torch::allclose(cached.logits, recomputed.logits, 1e-4, 1e-4))
      << (cached.logits - recomputed.logits).abs().max().item<float>();

  // Each row alone gives the logits it had inside the padded batch.
  options.use_cache = true;
  const auto alone = generate_text(model, builder, {prefixes[0]}, options, generator);
  const int64_t steps = alone.logits.size(1);
  EXPECT_TRUE(torch::allclose(alone.logits[0], cached.logits[0].narrow(0, 0, steps), 1e-4, 1e-4));
}

// A prefix read once and continued G times decodes as G copies of it read separately: the same
// greedy tokens and the same logits (to float rounding: one row's matrix products against G),
// with and without the cache; sampled, each block of G rows draws from its own generator.
TEST(Sampling, ContinuationsOfOnePrefixEqualRepeatedPrefixes) {
  const auto c = tiny_config();
  auto model = tiny_model();
  SequenceBuilder builder(tokenizer(), c);
  const std::vector<Sequence> prefixes = {
      builder.image_to_text(random_image(16, 4), "What color is the circle?"),
      builder.image_to_text(random_image(16, 5), "How many squares are there in the photo?")};
  std::vector<Sequence> repeated;
  for (const auto& p : prefixes) repeated.insert(repeated.end(), 3, p);
  for (bool cache : {true, false}) {
    SamplingOptions options;
    options.greedy = true;
    options.max_new_tokens = 10;
    options.keep_logits = true;
    options.use_cache = cache;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    const auto separate = generate_text(model, builder, repeated, options, generator);
    options.continuations = 3;
    const auto shared = generate_text(model, builder, prefixes, options, generator);
    EXPECT_EQ(shared.tokens, separate.tokens);
    ASSERT_EQ(shared.logits.sizes(), separate.logits.sizes());
    EXPECT_TRUE(torch::allclose(shared.logits, separate.logits, 1e-5, 1e-5))
        << (shared.logits - separate.logits).abs().max().item<float>();
  }
  SamplingOptions sampled;
  sampled.max_new_tokens = 10;
  sampled.continuations = 3;
  std::vector<at::Generator> two{at::make_generator<at::CPUGeneratorImpl>(7),
                                 at::make_generator<at::CPUGeneratorImpl>(8)};
  const auto both = generate_text(model, builder, prefixes, sampled, two);
  ASSERT_EQ(both.tokens.size(), 6u);
  std::vector<at::Generator> second{at::make_generator<at::CPUGeneratorImpl>(8)};
  const auto alone = generate_text(model, builder, {prefixes[1]}, sampled, second);
  for (int g = 0; g < 3; ++g) EXPECT_EQ(both.tokens[3 + g], alone.tokens[g]) << g;
}

TEST(Sampling, CachedImageDecodingWithGuidanceMatchesRecomputation) {
  const auto c = tiny_config();
  auto model = tiny_model();
  SequenceBuilder builder(tokenizer(), c);
  ImageSamplingOptions options;
  options.cfg_weight = 3.0;
  options.temperature = 1.0;
  options.keep_logits = true;
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  const std::vector<std::string> prompts = {"a photo of a red circle",
                                            "a photo of a blue square and a green diamond"};
  const auto cached = generate_images(model, builder, prompts, options, g1);
  options.use_cache = false;
  const auto recomputed = generate_images(model, builder, prompts, options, g2);
  EXPECT_TRUE(torch::equal(cached.codes, recomputed.codes));
  EXPECT_EQ(cached.codes.sizes(), (std::vector<int64_t>{2, c.image_tokens}));
  EXPECT_TRUE(torch::allclose(cached.logits, recomputed.logits, 1e-4, 1e-4))
      << (cached.logits - recomputed.logits).abs().max().item<float>();

  // The first step's guided logits, worked from the two rows' own forward passes.
  torch::NoGradGuard no_grad;
  auto last_logits = [&](const Sequence& s) {
    const auto batch = builder.collate({s}, Padding::kRight);
    const auto h =
        model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
    return model->image_logits(h.select(1, h.size(1) - 1))[0];
  };
  const auto cond = last_logits(builder.text_to_image(prompts[1]));
  const auto uncond = last_logits(builder.text_to_image(prompts[1], {}, true));
  EXPECT_TRUE(torch::allclose(cached.logits[1][0], uncond + 3.0 * (cond - uncond), 1e-4, 1e-4));
}

TEST(Sampling, TopKAndTopPFilters) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
  const auto logits = torch::tensor({{0.0f, 3.0f, 1.0f, 2.9f}});
  SamplingOptions top1;
  top1.top_k = 1;
  SamplingOptions nucleus;
  nucleus.top_p = 0.3;  // the most likely token alone holds ~0.45 of the mass
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(sample_tokens(logits, top1, generator).item<int64_t>(), 1);
    EXPECT_EQ(sample_tokens(logits, nucleus, generator).item<int64_t>(), 1);
  }
  SamplingOptions top2;
  top2.top_k = 2;
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sample_tokens(logits, top2, generator).item<int64_t>());
  EXPECT_EQ(seen, (std::set<int64_t>{1, 3}));
}

// Inverse transform sampling, worked by hand: with N evenly spaced uniforms (i + 0.5) / N, token
// v is drawn exactly N * p_v times (to one draw, for the boundaries' rounding), tokens cut by top-k
// never, and the temperature reshapes p as softmax(logits / T).
TEST(Sampling, ByUniformsDrawsTheInverseCdf) {
  const int n = 1000;
  const auto uniforms = (torch::arange(n, torch::kFloat64) + 0.5) / n;
  const auto counts = [&](const torch::Tensor& probs, const SamplingOptions& options) {
    const auto logits = probs.log().to(torch::kFloat32).unsqueeze(0).expand({n, -1});
    return torch::bincount(sample_by_uniforms(logits, options, uniforms), {}, probs.size(0));
  };
  const auto p = torch::tensor({0.1, 0.2, 0.05, 0.65}, torch::kFloat64);
  SamplingOptions plain;
  const auto all = counts(p, plain);
  for (int v = 0; v < 4; ++v) EXPECT_NEAR(all[v].item<int64_t>(), n * p[v].item<double>(), 1.0);

  SamplingOptions top2;
  top2.top_k = 2;  // tokens 1 and 3: 0.2 / 0.85 and 0.65 / 0.85
  const auto cut = counts(p, top2);
  EXPECT_EQ(cut[0].item<int64_t>(), 0);
  EXPECT_EQ(cut[2].item<int64_t>(), 0);
  EXPECT_NEAR(cut[1].item<int64_t>(), n * 0.2 / 0.85, 1.0);
  EXPECT_NEAR(cut[3].item<int64_t>(), n * 0.65 / 0.85, 1.0);

  SamplingOptions hot;
  hot.temperature = 2.0;  // p^(1/2), renormalised
  const auto sharp = counts(p, hot);
  const auto q = p.sqrt() / p.sqrt().sum();
  for (int v = 0; v < 4; ++v) EXPECT_NEAR(sharp[v].item<int64_t>(), n * q[v].item<double>(), 1.0);
}

// The uniforms of a generation: row block k's from generators[k] alone, so a block draws the same
// whatever else is in the batch.
TEST(Sampling, UniformsFollowTheirBlocksGenerator) {
  std::vector<at::Generator> two{at::make_generator<at::CPUGeneratorImpl>(1),
                                 at::make_generator<at::CPUGeneratorImpl>(2)};
  const auto u = draw_uniforms(4, 3, two);
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{4, 3}));
  std::vector<at::Generator> second{at::make_generator<at::CPUGeneratorImpl>(2)};
  EXPECT_TRUE(torch::equal(u.narrow(0, 2, 2), draw_uniforms(2, 3, second)));
  EXPECT_TRUE(u.ge(0).all().item<bool>() && u.lt(1).all().item<bool>());
}

}  // namespace
}  // namespace corl::model
