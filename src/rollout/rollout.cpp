#include "corl/rollout/rollout.h"

#include <algorithm>

#include "corl/model/sampling.h"
#include "corl/ops/token_logprobs.h"

namespace corl::rollout {

namespace {

// Hidden states of a collated batch.
torch::Tensor hidden_of(model::UnifiedModel& model, const model::Batch& batch) {
  return model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
}

// Puts log-probs (and entropies) of the scored positions `scored` [N, L] back into rows: the
// k-th scored position of a row goes to column k.
TextScores to_rows(const torch::Tensor& scored, const torch::Tensor& logits,
                   const torch::Tensor& logp_flat, const ScoreRequest& request) {
  const auto counts = scored.sum(1);
  const int64_t width = std::max<int64_t>(1, counts.max().item<int64_t>());
  const auto columns = (scored.cumsum(1) - 1).index({scored});
  const auto rows = torch::arange(scored.size(0), columns.options())
                        .unsqueeze(1)
                        .expand_as(scored)
                        .index({scored});
  const auto float_options = logp_flat.options().dtype(torch::kFloat32);
  TextScores out;
  out.mask = torch::zeros({scored.size(0), width}, float_options);
  out.mask.index_put_({rows, columns}, torch::ones_like(columns, torch::kFloat32));
  out.logp = torch::zeros({scored.size(0), width}, logp_flat.options())
                 .index_put({rows, columns}, logp_flat);
  if (request.entropy) {
    out.entropy = torch::zeros({scored.size(0), width}, float_options)
                      .index_put_({rows, columns}, ops::token_entropy(logits.detach()));
  }
  return out;
}

// Whether b continues the prompt a continues: the same ids up to the completion, the same image.
bool same_prompt(const model::Sequence& a, const model::Sequence& b) {
  const int64_t n = a.completion_begin;
  if (n == 0 || b.completion_begin != n) return false;
  if (!std::equal(a.ids.begin(), a.ids.begin() + n, b.ids.begin())) return false;
  if (a.image.defined() != b.image.defined()) return false;
  return !a.image.defined() || a.image.is_same(b.image) || a.image.equal(b.image);
}

// The part of a sequence in [begin, end).
model::Sequence slice(const model::Sequence& s, int64_t begin, int64_t end) {
  auto cut = [&](const auto& v) {
    return std::decay_t<decltype(v)>(v.begin() + begin, v.begin() + end);
  };
  model::Sequence out;
  out.ids = cut(s.ids);
  out.understanding = cut(s.understanding);
  out.generation = cut(s.generation);
  out.codes = cut(s.codes);
  out.text_targets = cut(s.text_targets);
  out.image_targets = cut(s.image_targets);
  if (begin == 0) out.image = s.image;
  return out;
}

// score_completions with each prompt read once: the prompts' pass fills a key/value cache, whose
// rows are then repeated for the continuations (index_select: their gradients add up in the
// prompt's), and the continuations' pass attends to it at positions that go on from the prompt.
// The hidden state scoring a completion's first token is its prompt's last.
TextScores score_shared(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                        const std::vector<model::Sequence>& sequences,
                        const std::vector<int64_t>& prompt_of, double temperature,
                        const ScoreRequest& request) {
  std::vector<model::Sequence> prompts;
  std::vector<model::Sequence> continuations;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto& s = sequences[i];
    if (prompts.size() == static_cast<size_t>(prompt_of[i])) {
      prompts.push_back(slice(s, 0, s.completion_begin));
    }
    continuations.push_back(slice(s, s.completion_begin, static_cast<int64_t>(s.ids.size())));
  }
  const model::Batch head = builder.collate(prompts, model::Padding::kRight);
  const model::Batch tail = builder.collate(continuations, model::Padding::kRight);
  const int64_t head_width = head.input_ids.size(1);
  const int64_t tail_width = tail.input_ids.size(1);
  const auto head_embeddings = model->embed(head);
  const auto device = head_embeddings.device();
  model::KVCache cache(model->config, static_cast<int64_t>(prompts.size()), head_width + tail_width,
                       head_embeddings.scalar_type(), device);
  const auto head_hidden =
      model->hidden_states(head_embeddings, head.attention_mask, head.position_ids, &cache);
  const auto index = torch::tensor(prompt_of, torch::kInt64);
  cache.select_rows(index);
  const auto prompt_lengths = head.attention_mask.sum(1).index_select(0, index);  // [N]
  const auto mask =
      torch::cat({head.attention_mask.index_select(0, index), tail.attention_mask}, 1);
  const auto positions = tail.position_ids + prompt_lengths.unsqueeze(1);
  const auto tail_hidden = model->hidden_states(model->embed(tail), mask, positions, &cache);

  // Completion token j is scored by the hidden state before it: the prompt's last for j = 0,
  // the continuation's j - 1 after.
  const auto on_device = index.to(device);
  const auto last = head_hidden.index({on_device, (prompt_lengths - 1).to(device)});
  const auto hidden =
      torch::cat({last.unsqueeze(1), tail_hidden.narrow(1, 0, tail_width - 1)}, 1);  // [N, C, H]
  const auto scored = tail.attention_mask.to(torch::kBool);
  const auto scored_on_device = scored.to(device);
  auto logits = model->text_logits(hidden.index({scored_on_device})).to(torch::kFloat32);
  if (temperature > 0.0 && temperature != 1.0) logits = logits / temperature;
  const auto targets = tail.input_ids.to(device).index({scored_on_device});
  return to_rows(scored_on_device, logits, ops::token_logprobs(logits, targets), request);
}

}  // namespace

ImageScores score_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                         const std::vector<std::string>& prompts, const torch::Tensor& codes,
                         const RolloutOptions& options, const ScoreRequest& request) {
  const int64_t rows = static_cast<int64_t>(prompts.size());
  const int64_t tokens = model->config.image_tokens;
  TORCH_CHECK(codes.dim() == 2 && codes.size(0) == rows && codes.size(1) == tokens,
              "score_images: codes must be [prompts, image_tokens]");
  const bool guided = options.logprob_cfg && options.cfg_weight != 1.0;
  std::vector<model::Sequence> sequences;
  for (int64_t i = 0; i < rows; ++i)
    sequences.push_back(builder.text_to_image(prompts[i], codes[i]));
  if (guided) {
    for (int64_t i = 0; i < rows; ++i) {
      sequences.push_back(builder.text_to_image(prompts[i], codes[i], /*unconditional=*/true));
    }
  }
  const model::Batch batch = builder.collate(sequences, model::Padding::kRight);
  const auto hidden = hidden_of(model, batch);
  // Targets go where the model ran (the collated batch is built on the host).
  const auto image_targets = batch.image_targets.to(hidden.device());
  // Every row has exactly `tokens` targets, in order: selecting keeps [rows, tokens].
  const auto scored = image_targets.ne(model::kIgnore);
  const auto selected = hidden.index({scored}).view({-1, tokens, hidden.size(-1)});
  auto logits = model->image_logits(selected).to(torch::kFloat32);
  if (guided) {
    const auto cond = logits.narrow(0, 0, rows);
    const auto uncond = logits.narrow(0, rows, rows);
    logits = model::guided_logits(cond, uncond, options.cfg_weight);
  }
  // The log-probs of the distribution the codes were drawn from, which the temperature sharpens
  // (as TRL scores them).
  if (options.temperature > 0.0 && options.temperature != 1.0)
    logits = logits / options.temperature;
  const auto targets = image_targets.index({scored}).view({-1, tokens}).narrow(0, 0, rows);
  ImageScores out;
  out.logp = ops::token_logprobs(logits, targets);
  if (request.entropy) out.entropy = ops::token_entropy(logits.detach());
  if (request.hidden) {
    // The hidden state that reads code i sits at the code's own position (it scores code i + 1).
    const auto at_codes = batch.generation.narrow(0, 0, rows).to(hidden.device());
    out.image_hidden =
        hidden.narrow(0, 0, rows).index({at_codes}).view({rows, tokens, -1}).detach();
    for (int64_t i = 0; i < rows; ++i) {
      const auto& s = sequences[i];
      out.text_hidden.push_back(
          hidden[i].narrow(0, s.prompt_begin, s.prompt_end - s.prompt_begin).detach());
    }
  }
  return out;
}

TextScores score_completions(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                             const std::vector<model::Sequence>& sequences, double temperature,
                             const ScoreRequest& request) {
  if (request.share_prompts && !sequences.empty() &&
      !(model->language_model->model->gradient_checkpointing && torch::GradMode::is_enabled())) {
    // Runs of sequences with one prompt; every completion at least one token long.
    std::vector<int64_t> prompt_of;
    bool shared = false;
    bool answered = true;
    for (size_t i = 0; i < sequences.size(); ++i) {
      const auto& s = sequences[i];
      answered &= s.completion_begin > 0 && static_cast<int64_t>(s.ids.size()) > s.completion_begin;
      const bool same = i > 0 && same_prompt(sequences[i - 1], s);
      shared |= same;
      prompt_of.push_back(i == 0 ? 0 : prompt_of.back() + (same ? 0 : 1));
    }
    if (shared && answered) {
      return score_shared(model, builder, sequences, prompt_of, temperature, request);
    }
  }
  const model::Batch batch = builder.collate(sequences, model::Padding::kRight);
  const auto hidden = hidden_of(model, batch);
  const auto text_targets = batch.text_targets.to(hidden.device());
  const auto scored = text_targets.ne(model::kIgnore);
  auto logits = model->text_logits(hidden.index({scored})).to(torch::kFloat32);
  if (temperature > 0.0 && temperature != 1.0) logits = logits / temperature;
  return to_rows(scored, logits, ops::token_logprobs(logits, text_targets.index({scored})),
                 request);
}

ImageRollouts roll_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                          tokenize::VQModel& vq, const std::vector<std::string>& prompts,
                          const RolloutOptions& options, at::Generator& generator) {
  std::vector<at::Generator> one{generator};
  return roll_images(model, builder, vq, prompts, options, one);
}

ImageRollouts roll_images(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                          tokenize::VQModel& vq, const std::vector<std::string>& prompts,
                          const RolloutOptions& options, std::vector<at::Generator>& generator) {
  TORCH_CHECK(generator.size() == 1 || generator.size() == prompts.size(),
              "roll_images: one generator, or one per prompt");
  torch::NoGradGuard no_grad;
  ImageRollouts out;
  for (int p = 0; p < static_cast<int>(prompts.size()); ++p) {
    for (int g = 0; g < options.num_generations; ++g) {
      out.source.push_back(p);
      out.prompts.push_back(prompts[p]);
    }
  }
  model::ImageSamplingOptions sampling;
  sampling.temperature = options.temperature;
  sampling.top_k = options.top_k;
  sampling.top_p = options.top_p;
  sampling.cfg_weight = options.cfg_weight;
  sampling.keep_logp = options.keep_logp;
  sampling.logp_guided = options.logprob_cfg;
  auto samples = model::generate_images(model, builder, out.prompts, sampling, generator);
  out.codes = samples.codes;
  out.sampler_logp = samples.logp;
  out.images = tokenize::tensor_to_images(vq->decode(out.codes));
  return out;
}

AnswerRollouts roll_answers(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                            const std::vector<torch::Tensor>& images,
                            const std::vector<std::string>& questions,
                            const RolloutOptions& options, at::Generator& generator) {
  std::vector<at::Generator> one{generator};
  return roll_answers(model, builder, images, questions, options, one);
}

AnswerRollouts roll_answers(model::UnifiedModel& model, const model::SequenceBuilder& builder,
                            const std::vector<torch::Tensor>& images,
                            const std::vector<std::string>& questions,
                            const RolloutOptions& options, std::vector<at::Generator>& generator) {
  TORCH_CHECK(generator.size() == 1 || generator.size() == questions.size(),
              "roll_answers: one generator, or one per question");
  TORCH_CHECK(images.size() == questions.size(), "roll_answers: one question per image");
  torch::NoGradGuard no_grad;
  AnswerRollouts out;
  std::vector<model::Sequence> prefixes;  // each read once, continued G times
  for (int p = 0; p < static_cast<int>(images.size()); ++p) {
    prefixes.push_back(builder.image_to_text(images[p], questions[p]));
    out.source.insert(out.source.end(), options.num_generations, p);
  }
  model::SamplingOptions sampling;
  sampling.continuations = options.num_generations;
  sampling.temperature = options.temperature;
  sampling.top_k = options.top_k;
  sampling.top_p = options.top_p;
  sampling.max_new_tokens = options.max_completion_length;
  sampling.keep_logp = options.keep_logp;
  const auto samples = model::generate_text(model, builder, prefixes, sampling, generator);
  for (size_t i = 0; i < out.source.size(); ++i) {
    const auto& tokens = samples.tokens[i];
    out.sequences.push_back(builder.with_completion(prefixes[out.source[i]], tokens));
    out.completions.push_back(samples.texts[i]);
    out.lengths.push_back(static_cast<int64_t>(tokens.size()));
    out.truncated.push_back(tokens.empty() || tokens.back() != builder.eos_id());
  }
  if (options.keep_logp) {
    // Draws after a row's <eos> are padding: 0 there, as the scorer leaves them.
    const auto lengths = torch::tensor(out.lengths, torch::kInt64).unsqueeze(1);
    const auto width = samples.logp.size(1);
    const auto within = torch::arange(width, torch::kInt64).unsqueeze(0).lt(lengths);
    out.sampler_logp = samples.logp.masked_fill(within.logical_not(), 0.0);
  }
  return out;
}

std::vector<std::string> caption_images(model::UnifiedModel& model,
                                        const model::SequenceBuilder& builder,
                                        const std::vector<cv::Mat>& images, int max_tokens) {
  torch::NoGradGuard no_grad;
  std::vector<model::Sequence> prefixes;
  for (const auto& image : images) {
    prefixes.push_back(builder.image_to_text(
        model::image_to_tensor(image, model->config.image_size), model::kCaptionQuestion));
  }
  model::SamplingOptions sampling;
  sampling.greedy = true;
  sampling.max_new_tokens = max_tokens;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(0);  // greedy: never drawn from
  return model::generate_text(model, builder, prefixes, sampling, generator).texts;
}

}  // namespace corl::rollout
