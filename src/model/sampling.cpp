#include "corl/model/sampling.h"

#include "corl/model/decode_graph.h"  // defines: plan_decode, StepRunner

#include <ATen/autocast_mode.h>  // defines: at::autocast::is_autocast_enabled
#include <algorithm>
#include <limits>
#include <optional>

namespace corl::model {
namespace {

// Feeds a batch of prefixes, then one embedding per row per step, returning the last hidden
// state each time: through a static KV cache, or by recomputing the whole sequence. With
// `repeats`, each prefix is read once and continued in that many consecutive rows (its cache
// copied to each).
class Decoder {
 public:
  Decoder(UnifiedModel& model, const Batch& prefix, int64_t max_new_tokens, bool use_cache,
          CacheAttention attention, int64_t repeats = 1)
      : model_(model),
        mask_(prefix.attention_mask),
        positions_(prefix.position_ids),
        repeats_(repeats) {
    embeddings_ = model_->embed(prefix);
    if (use_cache) {
      cache_.emplace(model_->config, prefix.input_ids.size(0),
                     prefix.input_ids.size(1) + max_new_tokens, embeddings_.scalar_type(),
                     embeddings_.device(), attention);
    }
  }

  torch::Tensor start() {
    auto hidden =
        model_->hidden_states(embeddings_, mask_, positions_, cache_ ? &*cache_ : nullptr);
    hidden = hidden.select(1, hidden.size(1) - 1);
    if (cache_) {
      // Each row's last prefix position, on the model's device; every step adds one in place.
      step_positions_ =
          positions_.narrow(1, positions_.size(1) - 1, 1).to(hidden.device()).clone();
    }
    if (repeats_ == 1) return hidden;
    const auto rows = torch::arange(hidden.size(0), hidden.options().dtype(torch::kInt64))
                          .repeat_interleave(repeats_);
    keep_rows(rows);
    return hidden.index_select(0, rows);
  }

  // The batch of the steps that follow: `rows` of the current one (indices, repeats allowed).
  void keep_rows(const torch::Tensor& rows) {
    const auto pick = [&](const torch::Tensor& t) {
      return t.index_select(0, rows.to(t.device()));
    };
    if (cache_) {
      cache_->select_rows(rows);
      step_positions_ = pick(step_positions_);
    } else {
      embeddings_ = pick(embeddings_);
      mask_ = pick(mask_);
      positions_ = pick(positions_);
    }
  }

  torch::Tensor step(const torch::Tensor& next) {  // next [B, 1, hidden]
    if (cache_) {
      step_positions_.add_(1);
      return model_->decode_step(next, step_positions_, *cache_).select(1, 0);
    }
    mask_ = torch::cat({mask_, torch::ones({mask_.size(0), 1}, mask_.options())}, 1);
    embeddings_ = torch::cat({embeddings_, next}, 1);
    positions_ = positions_from_mask(mask_);
    const auto hidden = model_->hidden_states(embeddings_, mask_, positions_);
    return hidden.select(1, hidden.size(1) - 1);
  }

 private:
  UnifiedModel& model_;
  torch::Tensor embeddings_;  // the recomputed path's whole sequence
  torch::Tensor mask_;
  torch::Tensor positions_;
  torch::Tensor step_positions_;  // [B, 1] on the device: the cached path's current positions
  std::optional<KVCache> cache_;
  int64_t repeats_;
};

torch::Device device_of(UnifiedModel& model) {
  return model->language_model->model->embed_tokens->weight.device();
}

CacheAttention cache_attention(const SamplingOptions& options, torch::Device device) {
  if (options.cache_attention) return *options.cache_attention;
  return device.is_cpu() ? CacheAttention::kFilled : CacheAttention::kWhole;
}

}  // namespace

torch::Tensor guided_logits(const torch::Tensor& cond, const torch::Tensor& uncond, double weight) {
  const auto c = cond.to(torch::kFloat32);
  const auto u = uncond.to(torch::kFloat32);
  return u + weight * (c - u);
}

namespace {

// The distribution a token is drawn from: logits / temperature, cut to the top k and to the
// nucleus of mass top_p, as probabilities in float32.
torch::Tensor sampling_probs(const torch::Tensor& logits, const SamplingOptions& options) {
  auto scaled = logits.to(torch::kFloat32) / options.temperature;
  const int64_t vocab = scaled.size(-1);
  if (options.top_k > 0 && options.top_k < vocab) {
    const auto kth = std::get<0>(scaled.topk(options.top_k, -1)).narrow(-1, options.top_k - 1, 1);
    scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<float>::infinity());
  }
  if (options.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose mass reaches top_p (Holtzman et al. 2020).
    const auto [sorted, order] = scaled.sort(-1, /*descending=*/true);
    const auto cumulative = sorted.softmax(-1).cumsum(-1);
    const auto drop_sorted = (cumulative - sorted.softmax(-1)) >= options.top_p;
    const auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    scaled = scaled.masked_fill(drop, -std::numeric_limits<float>::infinity());
  }
  return scaled.softmax(-1);
}

// Rows of a batch split into generators.size() consecutive blocks, as the generators draw them.
int64_t block_rows(int64_t rows, const std::vector<at::Generator>& generators) {
  const auto blocks = static_cast<int64_t>(generators.size());
  TORCH_CHECK(blocks > 0 && rows % blocks == 0, "sampling: ", rows,
              " rows do not split into ", blocks, " generator blocks");
  return rows / blocks;
}

}  // namespace

torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingOptions& options,
                            std::vector<at::Generator>& generators) {
  if (options.greedy || options.temperature <= 0.0) return logits.argmax(-1);
  TORCH_CHECK(!generators.empty(), "sample_tokens: no generator");
  const auto host = generators.front().device();
  if (logits.device() != host) {
    // Draws come from the (host) generators wherever the model runs: one seed, one stream each.
    return sample_tokens(logits.to(host), options, generators).to(logits.device());
  }
  const auto probs = sampling_probs(logits, options);
  if (generators.size() == 1) return torch::multinomial(probs, 1, false, generators[0]).squeeze(-1);
  const int64_t rows = block_rows(probs.size(0), generators);
  std::vector<torch::Tensor> drawn;
  for (size_t k = 0; k < generators.size(); ++k) {
    drawn.push_back(torch::multinomial(probs.narrow(0, static_cast<int64_t>(k) * rows, rows), 1,
                                       false, generators[k]));
  }
  return torch::cat(drawn).squeeze(-1);
}

torch::Tensor draw_uniforms(int64_t rows, int64_t steps, std::vector<at::Generator>& generators) {
  const int64_t per_block = block_rows(rows, generators);
  std::vector<torch::Tensor> blocks;
  for (auto& generator : generators) {
    blocks.push_back(torch::rand({per_block, steps}, generator, torch::kFloat32));
  }
  return torch::cat(blocks);
}

torch::Tensor sample_by_uniforms(const torch::Tensor& logits, const SamplingOptions& options,
                                 const torch::Tensor& uniforms) {
  if (options.greedy || options.temperature <= 0.0) return logits.argmax(-1);
  const auto cdf = sampling_probs(logits, options).cumsum(-1);
  // The first token whose cumulative mass exceeds u times the total (the total, not 1, so that
  // rounding in the sum cannot push u past the end). A token of zero mass adds nothing to the
  // sum, so it is never the first to exceed: top-k and top-p cuts hold exactly.
  const auto target = uniforms.to(cdf.device(), torch::kFloat32).unsqueeze(-1) *
                      cdf.narrow(-1, cdf.size(-1) - 1, 1);
  return torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true)
      .squeeze(-1)
      .clamp_max(cdf.size(-1) - 1);
}

torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingOptions& options,
                            at::Generator& generator) {
  std::vector<at::Generator> one{generator};
  return sample_tokens(logits, options, one);
}

namespace {

// Log-prob of each row's drawn token under logits / temperature, in float32 whatever the logits'
// type (the trainer's scorer works in float32 likewise).
torch::Tensor drawn_logp(const torch::Tensor& logits, const torch::Tensor& drawn,
                         const SamplingOptions& options) {
  torch::Tensor scaled = logits.to(torch::kFloat32);
  if (!options.greedy && options.temperature > 0.0 && options.temperature != 1.0) {
    scaled = scaled / options.temperature;
  }
  return torch::log_softmax(scaled, -1)
      .gather(1, drawn.to(logits.device()).unsqueeze(1))
      .squeeze(1);
}

// One token per row per step. On the host, straight from the generators; on a device, from
// uniforms the same generators draw for the whole generation at once, copied there once, so that
// a decode step makes no host copy and no synchronisation.
class Sampler {
 public:
  Sampler(const SamplingOptions& options, std::vector<at::Generator>& generators, int64_t rows,
          int64_t steps, torch::Device device)
      : options_(options), generators_(generators) {
    const bool draws = !options.greedy && options.temperature > 0.0;
    if (draws && !device.is_cpu()) {
      uniforms_ = draw_uniforms(rows, steps, generators).to(device, /*non_blocking=*/true);
    }
  }

  // `step` [1] int64 on the logits' device: the column of uniforms to draw with, read on the
  // device so that a replayed step takes the next one.
  torch::Tensor operator()(const torch::Tensor& logits, const torch::Tensor& step) {
    if (uniforms_.defined()) {
      return sample_by_uniforms(logits, options_, uniforms_.index_select(1, step).squeeze(1));
    }
    return sample_tokens(logits, options_, generators_);
  }

 private:
  const SamplingOptions& options_;
  std::vector<at::Generator>& generators_;
  torch::Tensor uniforms_;  // [rows, steps] on the device, when sampling there
};

// How often a generation on a device asks whether every row has ended: each ask waits for the
// device. On the host it asks every step, for free.
constexpr int kStopCheckSteps = 8;

}  // namespace

TextSamples generate_text(UnifiedModel& model, const SequenceBuilder& builder,
                          const std::vector<Sequence>& prefixes, const SamplingOptions& options,
                          at::Generator& generator) {
  std::vector<at::Generator> one{generator};
  return generate_text(model, builder, prefixes, options, one);
}

TextSamples generate_text(UnifiedModel& model, const SequenceBuilder& builder,
                          const std::vector<Sequence>& prefixes, const SamplingOptions& options,
                          std::vector<at::Generator>& generator) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(options.continuations >= 1, "generate_text: continuations must be at least 1");
  const Batch batch = builder.collate(prefixes, Padding::kLeft);
  const int64_t rows = batch.input_ids.size(0) * options.continuations;
  const int64_t max_steps = options.max_new_tokens;
  const auto device = device_of(model);
  const DecodePlan plan = plan_decode(device, options.cuda_graphs, options.use_cache);
  StepRunner run_step(plan, "generate_text");
  Decoder decoder(model, batch, max_steps, options.use_cache, cache_attention(options, device),
                  options.continuations);
  auto hidden = decoder.start();
  if (plan.graph) hidden = hidden.contiguous();  // the buffer every replay reads
  Sampler sample(options, generator, rows, max_steps, device);
  const int64_t stop_check = device.is_cpu() ? 1 : kStopCheckSteps;

  // Everything a step writes goes in place at its column (step, on the device), so that a
  // replayed step writes where the eager one would.
  const auto on_device = hidden.options();
  auto step = torch::zeros({1}, on_device.dtype(torch::kInt64));
  auto tokens = torch::zeros({rows, std::max<int64_t>(max_steps, 1)}, step.options());
  auto finished = torch::zeros({rows}, on_device.dtype(torch::kBool));
  torch::Tensor kept;
  torch::Tensor kept_logp;
  if (options.keep_logp) kept_logp = torch::zeros({rows, max_steps}, on_device.dtype(torch::kFloat32));
  torch::Tensor next;
  // On the host, rows that have ended leave the decoding batch (a device keeps its shapes fixed
  // for graph replays): `in_batch` holds the rows still decoded, in the batch's order. The
  // sampler still draws for every row, so that the random numbers each row's draws take are
  // those of the whole batch. In float32 MKL's products of a row did not depend on how many
  // rows the batch holds where measured (the same tokens and logits as the full-width batch,
  // docs/benchmarks.md); under CPU autocast oneDNN's bf16 products of a row do, so there the
  // batch keeps its width and a row's answer does not depend on when its neighbours end.
  const bool shrink = options.drop_ended_rows && !plan.graph && device.is_cpu() &&
                      !at::autocast::is_autocast_enabled(at::kCPU);
  torch::Tensor in_batch;  // undefined while every row is in the batch
  const auto draw = [&] {
    auto logits = model->text_logits(hidden);
    if (in_batch.defined()) {
      logits =
          torch::zeros({rows, logits.size(-1)}, logits.options()).index_copy_(0, in_batch, logits);
    }
    // A row that has ended draws padding from zero logits, in or out of the batch.
    logits.masked_fill_(finished.unsqueeze(1), 0.0);
    if (options.keep_logits) {
      if (!kept.defined()) kept = torch::zeros({rows, max_steps, logits.size(-1)}, logits.options());
      kept.index_copy_(1, step, logits.unsqueeze(1));
    }
    next = sample(logits, step);
    if (options.keep_logp) {
      kept_logp.index_copy_(1, step, drawn_logp(logits, next, options).unsqueeze(1));
    }
    next = next.masked_fill(finished, builder.tokenizer().pad_id());  // ended rows feed pads
    tokens.index_copy_(1, step, next.unsqueeze(1));
    finished.logical_or_(next.eq(builder.eos_id()));
  };
  // Once an eighth of the batch has ended, the rows still running make the next batch.
  const auto drop_ended = [&] {
    const auto ended = in_batch.defined() ? finished.index_select(0, in_batch) : finished;
    const int64_t batch_rows = ended.size(0);
    const int64_t count = ended.sum().item<int64_t>();
    if (count == 0 || count == batch_rows || count * 8 < batch_rows) return;
    const auto running = ended.logical_not().nonzero().squeeze(1);
    decoder.keep_rows(running);
    in_batch = in_batch.defined() ? in_batch.index_select(0, running) : running;
  };
  const auto feed = [&] {
    const auto fed = in_batch.defined() ? next.index_select(0, in_batch) : next;
    const auto h = decoder.step(model->language_model->model->embed_tokens(fed.unsqueeze(1)));
    if (plan.graph) {
      hidden.copy_(h);
    } else {
      hidden = h;
    }
    step.add_(1);
  };
  int64_t taken = 0;
  for (int64_t s = 0; s < max_steps; ++s) {
    const bool last = s + 1 == max_steps;
    const bool check = (s + 1) % stop_check == 0;
    if (plan.graph && !last) {
      // The end is asked for after the step's feed, which a replay includes.
      run_step([&] {
        draw();
        feed();
      });
      taken = s + 1;
      if (check && finished.all().item<bool>()) break;
      continue;
    }
    draw();
    taken = s + 1;
    if (last || (check && finished.all().item<bool>())) break;
    if (shrink) drop_ended();
    feed();
  }
  // Each row's tokens up to and including its first <eos>, from one copy to the host.
  const auto host_tokens = tokens.narrow(1, 0, taken).to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* values = host_tokens.data_ptr<int64_t>();
  TextSamples out;
  out.tokens.resize(rows);
  int64_t longest = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < taken; ++t) {
      out.tokens[r].push_back(values[r * taken + t]);
      if (values[r * taken + t] == builder.eos_id()) break;
    }
    longest = std::max(longest, static_cast<int64_t>(out.tokens[r].size()));
  }
  for (auto& row : out.tokens) {
    std::vector<int> text(row.begin(), row.end());
    if (!text.empty() && text.back() == builder.eos_id()) text.pop_back();
    out.texts.push_back(builder.tokenizer().decode(text));
  }
  // Steps past the longest row (a device asks for the end every few steps) are not kept.
  const int64_t kept_steps = std::min(taken, longest);
  if (options.keep_logits && kept.defined()) out.logits = kept.narrow(1, 0, kept_steps);
  if (options.keep_logp) out.logp = kept_logp.narrow(1, 0, kept_steps).cpu();
  return out;
}

ImageSamples generate_images(UnifiedModel& model, const SequenceBuilder& builder,
                             const std::vector<std::string>& prompts,
                             const ImageSamplingOptions& options, at::Generator& generator) {
  std::vector<at::Generator> one{generator};
  return generate_images(model, builder, prompts, options, one);
}

ImageSamples generate_images(UnifiedModel& model, const SequenceBuilder& builder,
                             const std::vector<std::string>& prompts,
                             const ImageSamplingOptions& options,
                             std::vector<at::Generator>& generator) {
  torch::NoGradGuard no_grad;
  const bool guided = options.cfg_weight != 1.0;
  const int64_t rows = static_cast<int64_t>(prompts.size());
  std::vector<Sequence> sequences;
  for (const auto& p : prompts) sequences.push_back(builder.text_to_image(p));
  if (guided) {
    for (const auto& p : prompts) sequences.push_back(builder.text_to_image(p, {}, true));
  }
  const int64_t steps = model->config.image_tokens;
  const auto device = device_of(model);
  const DecodePlan plan = plan_decode(device, options.cuda_graphs, options.use_cache);
  StepRunner run_step(plan, "generate_images");
  Decoder decoder(model, builder.collate(sequences, Padding::kLeft), steps, options.use_cache,
                  cache_attention(options, device));
  auto hidden = decoder.start();
  if (plan.graph) hidden = hidden.contiguous();  // the buffer every replay reads
  Sampler sample(options, generator, rows, steps, device);

  // Outputs in place at the step's column (step, on the device), as in generate_text.
  const auto on_device = hidden.options();
  auto step = torch::zeros({1}, on_device.dtype(torch::kInt64));
  auto codes = torch::zeros({rows, steps}, step.options());
  torch::Tensor kept;
  torch::Tensor kept_logp;
  if (options.keep_logp) kept_logp = torch::zeros({rows, steps}, on_device.dtype(torch::kFloat32));
  torch::Tensor next;
  const auto draw = [&] {
    auto logits = model->image_logits(hidden);
    torch::Tensor conditional = logits;
    if (guided) {
      conditional = logits.narrow(0, 0, rows);
      const auto uncond = logits.narrow(0, rows, rows);
      logits = guided_logits(conditional, uncond, options.cfg_weight);
    }
    if (options.keep_logits) {
      if (!kept.defined()) kept = torch::zeros({rows, steps, logits.size(-1)}, logits.options());
      kept.index_copy_(1, step, logits.unsqueeze(1));
    }
    next = sample(logits, step);
    if (options.keep_logp) {
      const auto logp = drawn_logp(options.logp_guided ? logits : conditional, next, options);
      kept_logp.index_copy_(1, step, logp.unsqueeze(1));
    }
    codes.index_copy_(1, step, next.unsqueeze(1));
  };
  const auto feed = [&] {
    const auto fed = guided ? torch::cat({next, next}) : next;
    const auto h = decoder.step(model->embed_image_codes(fed.unsqueeze(1)));
    if (plan.graph) {
      hidden.copy_(h);
    } else {
      hidden = h;
    }
    step.add_(1);
  };
  for (int64_t s = 0; s + 1 < steps; ++s) {
    run_step([&] {
      draw();
      feed();
    });
  }
  draw();
  ImageSamples out;
  out.codes = codes.to(torch::kCPU);  // host data, like the text samples
  if (options.keep_logits) out.logits = kept;
  if (options.keep_logp) out.logp = kept_logp.cpu();
  return out;
}

}  // namespace corl::model
