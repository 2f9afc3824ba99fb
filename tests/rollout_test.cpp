#include "corl/rollout/rollout.h"

#include <ATen/record_function.h>  // defines: at::addThreadLocalCallback, at::removeCallback
#include <gtest/gtest.h>

#include "corl/model/sampling.h"
#include "corl/ops/grpo_loss.h"
#include "tiny_model.h"

namespace corl::rollout {
namespace {

using corl::testing::tiny_config;
using corl::testing::tiny_model;
using corl::testing::tokenizer;

// With every attention and MLP output projection zeroed, the decoder is the identity on the
// residual stream: the hidden state at t is norm(embedding of token t), and the model is a bigram
// model whose prediction for the token after t is known from token t alone.
model::UnifiedModel bigram_model() {
  auto model = tiny_model();
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (p.key().find("o_proj") != std::string::npos ||
        p.key().find("down_proj") != std::string::npos) {
      p.value().zero_();
    }
  }
  return model;
}

// log p(code i | ...) from the bigram model by hand: the state of the token before code i.
torch::Tensor bigram_logprobs(model::UnifiedModel& model, int64_t begin_of_image,
                              const torch::Tensor& codes) {
  torch::NoGradGuard no_grad;
  auto& decoder = model->language_model->model;
  const auto first = decoder->norm(decoder->embed_tokens(torch::tensor({begin_of_image})));
  const auto rest = decoder->norm(model->embed_image_codes(codes.narrow(0, 0, codes.size(0) - 1)));
  const auto states = torch::cat({first, rest});  // state t reads token t, scores token t + 1
  return model->image_logits(states).log_softmax(-1).gather(1, codes.unsqueeze(1)).squeeze(1);
}

TEST(RolloutScores, ImageLogprobsAreAlignedStateTScoresCodeTPlusOne) {
  const auto config = tiny_config();
  auto model = bigram_model();
  const model::SequenceBuilder builder(tokenizer(), config);
  torch::manual_seed(3);
  const auto codes =
      torch::randint(config.image_vocab_size, {2, config.image_tokens}, torch::kLong);
  RolloutOptions options;
  options.logprob_cfg = false;
  torch::NoGradGuard no_grad;
  const auto scores =
      score_images(model, builder, {"a photo of a red circle", "a blue square"}, codes, options);
  ASSERT_EQ(scores.logp.sizes(), codes.sizes());
  const int64_t boi = tokenizer().piece_id("<begin_of_image>");
  for (int64_t row = 0; row < 2; ++row) {
    const auto expected = bigram_logprobs(model, boi, codes[row]);
    EXPECT_TRUE(torch::allclose(scores.logp[row], expected, 1e-4, 1e-5)) << scores.logp[row] << "\n"
                                                                         << expected;
    // The off-by-one (state t scoring token t) gives other numbers.
    const auto self =
        model
            ->image_logits(model->language_model->model->norm(model->embed_image_codes(codes[row])))
            .log_softmax(-1)
            .gather(1, codes[row].unsqueeze(1))
            .squeeze(1);
    EXPECT_FALSE(torch::allclose(scores.logp[row], self, 1e-3, 1e-3));
  }
}

TEST(RolloutScores, GuidedLogprobsCombineConditionalAndUnconditionalLogits) {
  const auto config = tiny_config();
  auto model = tiny_model();
  const model::SequenceBuilder builder(tokenizer(), config);
  torch::manual_seed(4);
  const auto codes =
      torch::randint(config.image_vocab_size, {1, config.image_tokens}, torch::kLong);
  RolloutOptions options;
  options.cfg_weight = 2.5;
  options.logprob_cfg = true;
  torch::NoGradGuard no_grad;
  const auto guided = score_images(model, builder, {"a green triangle"}, codes, options).logp;

  // Reference: full forward of each row by itself, logits picked at the rows' code positions.
  auto logits_of = [&](bool unconditional) {
    const auto batch =
        builder.collate({builder.text_to_image("a green triangle", codes[0], unconditional)},
                        model::Padding::kRight);
    const auto hidden =
        model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
    return model->image_logits(hidden[0]).narrow(0, hidden.size(1) - config.image_tokens - 1,
                                                 config.image_tokens);
  };
  const auto cond = logits_of(false);
  const auto uncond = logits_of(true);
  const auto combined = uncond + 2.5 * (cond - uncond);
  const auto expected = combined.log_softmax(-1).gather(1, codes[0].unsqueeze(1)).squeeze(1);
  EXPECT_TRUE(torch::allclose(guided[0], expected, 1e-4, 1e-5));
}

// The log-probs of the tokens sampled, read back from the sampler's own logits at the sampling
// temperature, equal those a training forward pass computes: old log-probs are those of the
// rollout.
TEST(RolloutScores, CompletionLogprobsMatchTheSamplersLogits) {
  const auto config = tiny_config();
  auto model = tiny_model();
  const model::SequenceBuilder builder(tokenizer(), config);
  torch::manual_seed(5);
  const auto image = torch::rand({3, config.image_size, config.image_size}) * 2 - 1;
  const auto prefix = builder.image_to_text(image, "What color is the circle?");
  model::SamplingOptions sampling;
  sampling.temperature = 0.7;
  sampling.max_new_tokens = 7;
  sampling.keep_logits = true;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(11);
  const auto samples = model::generate_text(model, builder, {prefix, prefix}, sampling, generator);
  std::vector<model::Sequence> sequences;
  for (const auto& tokens : samples.tokens)
    sequences.push_back(builder.with_completion(prefix, tokens));
  torch::NoGradGuard no_grad;
  const auto scores = score_completions(model, builder, sequences, sampling.temperature);
  for (int64_t row = 0; row < 2; ++row) {
    const auto& tokens = samples.tokens[row];
    for (size_t t = 0; t < tokens.size(); ++t) {
      const double expected =
          (samples.logits[row][t] / 0.7).log_softmax(-1)[tokens[t]].item<double>();
      EXPECT_NEAR(scores.logp[row][t].item<double>(), expected, 1e-4)
          << "row " << row << " t " << t;
      EXPECT_EQ(scores.mask[row][t].item<float>(), 1.0f);
    }
    for (int64_t t = tokens.size(); t < scores.mask.size(1); ++t) {
      EXPECT_EQ(scores.mask[row][t].item<float>(), 0.0f);
      EXPECT_EQ(scores.logp[row][t].item<float>(), 0.0f);
    }
  }
}

TEST(Rollout, GImagesAndAnswersPerSampleInGroups) {
  const auto config = tiny_config();
  auto model = tiny_model();
  const model::SequenceBuilder builder(tokenizer(), config);
  RolloutOptions options;
  options.num_generations = 3;
  options.max_completion_length = 4;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto image = torch::zeros({3, config.image_size, config.image_size});
  const auto answers = roll_answers(model, builder, {image, image}, {"What color?", "What shape?"},
                                    options, generator);
  ASSERT_EQ(answers.sequences.size(), 6u);
  EXPECT_EQ(answers.source, (std::vector<int>{0, 0, 0, 1, 1, 1}));
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_LE(answers.lengths[i], 4);
    EXPECT_EQ(answers.truncated[i] != 0,
              answers.lengths[i] == 0 || answers.sequences[i].ids.back() != tokenize::kEosId);
  }
}

}  // namespace
}  // namespace corl::rollout

namespace corl::rollout {
namespace {

// One policy-gradient step through the whole chain (rollout, scoring, loss, backward) moves the
// policy the right way: more likely where the advantage is positive, less where it is negative.
TEST(RolloutScores, AGrpoStepRaisesPositiveAndLowersNegativeRollouts) {
  const auto config = corl::testing::tiny_config();
  auto model = corl::testing::tiny_model();
  const model::SequenceBuilder builder(corl::testing::tokenizer(), config);
  for (bool guided : {false, true}) {
    RolloutOptions options;
    options.cfg_weight = 3.0;
    options.logprob_cfg = guided;
    torch::manual_seed(7);
    const auto codes =
        torch::randint(config.image_vocab_size, {4, config.image_tokens}, torch::kLong);
    const std::vector<std::string> prompts(4, "a photo of a red circle");
    const auto advantages = torch::tensor({1.0f, -1.0f, 1.0f, -1.0f});
    torch::Tensor before;
    {
      torch::NoGradGuard no_grad;
      before = score_images(model, builder, prompts, codes, options).logp.sum(1);
    }
    auto copy = corl::testing::tiny_model();
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(1e-3));
    sgd.zero_grad();
    const auto logp = score_images(model, builder, prompts, codes, options).logp;
    ops::GrpoLossOptions loss_options;
    const auto loss =
        ops::grpo_loss(logp, logp.detach(), {}, advantages, torch::ones_like(logp), loss_options);
    loss.loss.backward();
    sgd.step();
    torch::NoGradGuard no_grad;
    const auto after = score_images(model, builder, prompts, codes, options).logp.sum(1);
    const auto change = after - before;
    EXPECT_GT(change[0].item<float>(), 0) << "guided " << guided;
    EXPECT_LT(change[1].item<float>(), 0) << "guided " << guided;
    EXPECT_GT(change[2].item<float>(), 0) << "guided " << guided;
    EXPECT_LT(change[3].item<float>(), 0) << "guided " << guided;
    model = copy;
  }
}

}  // namespace
}  // namespace corl::rollout

namespace corl::rollout {
namespace {

// Old log-probs are those of the rollout: scoring sampled codes (right-padded, full sequence)
// gives the log-probs of the logits they were drawn from (left-padded, cached), for prompts of
// different lengths in one batch, with and without guidance.
TEST(RolloutScores, ImageLogprobsMatchTheSamplersLogits) {
  const auto config = corl::testing::tiny_config();
  auto model = corl::testing::tiny_model();
  const model::SequenceBuilder builder(corl::testing::tokenizer(), config);
  const std::vector<std::string> prompts = {"a photo of a red circle and a blue square",
                                            "a circle"};
  for (const auto& [w, tau] : {std::pair{1.0, 1.0}, std::pair{2.0, 1.0}, std::pair{2.0, 0.7}}) {
    model::ImageSamplingOptions sampling;
    sampling.cfg_weight = w;
    sampling.temperature = tau;
    sampling.keep_logits = true;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto samples = model::generate_images(model, builder, prompts, sampling, generator);
    RolloutOptions options;
    options.cfg_weight = w;
    options.temperature = tau;
    options.logprob_cfg = true;
    torch::NoGradGuard no_grad;
    const auto scores = score_images(model, builder, prompts, samples.codes, options);
    // The sampler keeps the guided logits before the temperature divides them.
    const auto expected =
        (samples.logits / tau).log_softmax(-1).gather(2, samples.codes.unsqueeze(2)).squeeze(2);
    EXPECT_TRUE(torch::allclose(scores.logp, expected, 1e-4, 1e-4))
        << "w " << w << " tau " << tau << "\n"
        << (scores.logp - expected).abs().max();
  }
}

}  // namespace
}  // namespace corl::rollout

namespace corl::rollout {
namespace {

// The same for answers: sampled completions, scored and stepped, move the right way.
TEST(RolloutScores, AGrpoStepOnAnswersRaisesPositiveAndLowersNegative) {
  const auto config = corl::testing::tiny_config();
  auto model = corl::testing::tiny_model();
  const model::SequenceBuilder builder(corl::testing::tokenizer(), config);
  torch::manual_seed(9);
  const auto image = torch::rand({3, config.image_size, config.image_size}) * 2 - 1;
  RolloutOptions options;
  options.num_generations = 4;
  options.max_completion_length = 6;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto answers =
      roll_answers(model, builder, {image}, {"What color is the circle?"}, options, generator);
  const auto advantages = torch::tensor({1.0f, -1.0f, 1.0f, -1.0f});
  auto total = [&] {
    torch::NoGradGuard no_grad;
    const auto s = score_completions(model, builder, answers.sequences);
    return (s.logp * s.mask).sum(1);
  };
  const auto before = total();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(1e-3));
  const auto scores = score_completions(model, builder, answers.sequences);
  const auto loss = ops::grpo_loss(scores.logp, scores.logp.detach(), {}, advantages, scores.mask,
                                   ops::GrpoLossOptions{});
  loss.loss.backward();
  sgd.step();
  const auto change = total() - before;
  EXPECT_GT(change[0].item<float>(), 0);
  EXPECT_LT(change[1].item<float>(), 0);
  EXPECT_GT(change[2].item<float>(), 0);
  EXPECT_LT(change[3].item<float>(), 0);
}

}  // namespace
}  // namespace corl::rollout

namespace corl::rollout {
namespace {

// Images the vision encoder reads while `f` runs: the rows of its patch convolution's input.
int64_t images_read(const std::function<void()>& f) {
  static thread_local int64_t rows = 0;
  rows = 0;
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn)
                                     -> std::unique_ptr<at::ObserverContext> {
        const auto inputs = fn.inputs();
        if (std::string(fn.name()) == "aten::conv2d" && !inputs.empty() && inputs[0].isTensor()) {
          rows += inputs[0].toTensor().size(0);
        }
        return nullptr;
      }).needsInputs(true));
  f();
  at::removeCallback(handle);
  return rows;
}

// grpo.share_prompts: answers to one question read it once. Their log-probs, entropies and
// gradients are those of the whole sequences, scored the way every other test checks.
TEST(RolloutScores, SharedPromptsGiveTheWholeSequencesLogprobsAndGradients) {
  const auto config = corl::testing::tiny_config();
  auto model = corl::testing::tiny_model();
  const model::SequenceBuilder builder(corl::testing::tokenizer(), config);
  const auto red = corl::testing::random_image(config.image_size, 1);
  const auto blue = corl::testing::random_image(config.image_size, 2);
  const auto short_question = builder.image_to_text(red, "Color?");
  const auto long_question = builder.image_to_text(blue, "How many circles are in the image?");
  // Runs of 3, 2 and 1 answers; the last run repeats the first prompt but does not follow it.
  // Completions of 1 to 7 tokens, so that both batches are padded.
  torch::manual_seed(5);
  std::vector<model::Sequence> sequences;
  const std::vector<std::pair<const model::Sequence*, int64_t>> answers = {
      {&short_question, 4}, {&short_question, 1}, {&short_question, 7},
      {&long_question, 2},  {&long_question, 5},  {&short_question, 3}};
  for (const auto& [prefix, length] : answers) {
    const auto ids = torch::randint(4, config.vocab_size, {length}, torch::kLong);
    sequences.push_back(builder.with_completion(
        *prefix, std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length)));
  }
  const auto weights = torch::randn({6, 7});
  auto run = [&](bool share) {
    model->zero_grad();
    TextScores scores;
    const int64_t images = images_read([&] {
      scores = score_completions(model, builder, sequences, 0.7, {true, false, share});
    });
    (scores.logp * scores.mask * weights.narrow(1, 0, scores.logp.size(1))).sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) {
      grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    }
    return std::make_tuple(scores, grads, images);
  };
  const auto [whole, whole_grads, whole_images] = run(false);
  const auto [shared, shared_grads, shared_images] = run(true);
  EXPECT_EQ(whole_images, 6);
  EXPECT_EQ(shared_images, 3);  // one image a run of answers
  ASSERT_EQ(shared.logp.sizes(), whole.logp.sizes());
  EXPECT_TRUE(torch::equal(shared.mask, whole.mask));
  EXPECT_TRUE(torch::equal(whole.mask.sum(1).to(torch::kLong), torch::tensor({4, 1, 7, 2, 5, 3})));
  EXPECT_TRUE(torch::allclose(shared.logp, whole.logp, 1e-4, 1e-5))
      << (shared.logp - whole.logp).abs().max();
  EXPECT_TRUE(torch::allclose(shared.entropy, whole.entropy, 1e-4, 1e-5));
  const auto names = model->named_parameters().keys();
  for (size_t i = 0; i < whole_grads.size(); ++i) {
    // Every part of the model the answers read gets a gradient, the vision encoder's included.
    if (names[i].rfind("gen_", 0) != 0) {
      EXPECT_GT(whole_grads[i].abs().sum().item<float>(), 0.0f) << names[i];
    }
    EXPECT_TRUE(torch::allclose(shared_grads[i], whole_grads[i], 1e-4, 1e-5))
        << names[i] << ": " << (shared_grads[i] - whole_grads[i]).abs().max();
  }
}

}  // namespace
}  // namespace corl::rollout
