// Batched sampling with a KV cache: text answers (greedy, temperature, top-k, top-p; stopping at
// <eos>) and images with classifier-free guidance. A model on the host draws each token from the
// host generators (torch::multinomial); a model on a device draws from uniforms those generators
// make once per generation (sample_by_uniforms), so that no decode step copies to the host.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "corl/model/inputs.h"
#include "corl/model/ulm.h"

namespace corl::model {

struct SamplingOptions {
  bool greedy = false;
  double temperature = 1.0;
  int top_k = 0;       // 0: no limit
  double top_p = 1.0;  // nucleus mass; 1: no limit
  int max_new_tokens = 64;
  // Recompute the whole sequence at every step instead of caching keys and values: the slow
  // reference path that the cache is tested and benchmarked against.
  bool use_cache = true;
  // Keep the logits each token was drawn from (after guidance, before temperature); text rows
  // that ended keep zeros after their <eos>.
  bool keep_logits = false;
  // Keep each drawn token's log-prob under the logits divided by the temperature (before top-k
  // and top-p, as the trainer scores it): the sampler's side of the sampler/trainer ratio.
  bool keep_logp = false;
  // How decoding steps read the static KV cache; unset: the filled positions on the host (the
  // same float sums as a cache grown by concatenation), the whole buffer on a device (fixed
  // shapes, for CUDA graphs).
  std::optional<CacheAttention> cache_attention;
  // On a CUDA device, capture one decoding step as a CUDA graph and replay it for every position
  // (decode_graph.h); falls back to eager steps, logged once, where that is not possible.
  bool cuda_graphs = true;
  // Text: each prefix is continued this many times, in consecutive rows (a GRPO group's G answers
  // to one question): the prefix is read once and its KV cache copied, rather than read G times.
  int continuations = 1;
  // Text on the host, outside CPU autocast: rows that have ended leave the decoding batch once
  // an eighth of it has (their cache rows with them), so that a batch of short and long answers
  // is decoded at the width of the rows still running. The draws stay those of the whole batch.
  bool drop_ended_rows = true;
};

struct ImageSamplingOptions : SamplingOptions {
  // Janus' guidance: logits = uncond + w * (cond - uncond); w = 1 samples without guidance and
  // skips the unconditional rows.
  double cfg_weight = 5.0;
  // With keep_logp: the log-probs of the guided logits (else of the conditional ones).
  bool logp_guided = true;
};

struct TextSamples {
  std::vector<std::vector<int64_t>> tokens;  // per row, up to and including <eos> when reached
  std::vector<std::string> texts;            // decoded, without <eos>
  torch::Tensor logits;                      // [B, steps, V] when kept
  torch::Tensor logp;                        // [B, steps] float32 on the host, when kept
};

struct ImageSamples {
  torch::Tensor codes;   // [B, image_tokens]
  torch::Tensor logits;  // [B, image_tokens, V] when kept
  torch::Tensor logp;    // [B, image_tokens] float32 on the host, when kept
};

// Janus' classifier-free guidance, uncond + weight * (cond - uncond), combined in float32 whatever
// the logits' type. Under bf16 autocast the logits arrive in bf16, where each step of the combine
// rounds (w = 5 amplifies it); the sampler and the scorer both combine through here, so the codes
// are drawn from the same numbers whose log-probs the GRPO ratio is later computed with.
torch::Tensor guided_logits(const torch::Tensor& cond, const torch::Tensor& uncond, double weight);

// One token per row from logits [B, V].
torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingOptions& options,
                            at::Generator& generator);
// The same with one generator per block of B / generators.size() consecutive rows: a block's
// draws do not depend on the other blocks of the batch (data-parallel ranks sample their share
// of a batch as a single process samples it).
torch::Tensor sample_tokens(const torch::Tensor& logits, const SamplingOptions& options,
                            std::vector<at::Generator>& generators);

// Uniforms in [0, 1) for a whole generation, [rows, steps], row block k's from generators[k]
// (the blocks as above): what a generation on a device samples with.
torch::Tensor draw_uniforms(int64_t rows, int64_t steps, std::vector<at::Generator>& generators);
// One token per row from logits [B, V] by inverse transform sampling: the first token whose
// cumulative probability (after temperature, top-k and top-p) exceeds uniforms[b] times the
// total. It runs where the logits are, with no host copy. The distribution is sample_tokens'; the
// draws for a seed are not.
torch::Tensor sample_by_uniforms(const torch::Tensor& logits, const SamplingOptions& options,
                                 const torch::Tensor& uniforms);

// Continues each prefix (image_to_text sequences without an answer). On the host it stops as soon
// as every row has drawn <eos>; on a device it asks every few steps (each ask waits for the
// device), and the outputs are the same but for the draws.
TextSamples generate_text(UnifiedModel& model, const SequenceBuilder& builder,
                          const std::vector<Sequence>& prefixes, const SamplingOptions& options,
                          at::Generator& generator);
TextSamples generate_text(UnifiedModel& model, const SequenceBuilder& builder,
                          const std::vector<Sequence>& prefixes, const SamplingOptions& options,
                          std::vector<at::Generator>& generators);

ImageSamples generate_images(UnifiedModel& model, const SequenceBuilder& builder,
                             const std::vector<std::string>& prompts,
                             const ImageSamplingOptions& options, at::Generator& generator);
ImageSamples generate_images(UnifiedModel& model, const SequenceBuilder& builder,
                             const std::vector<std::string>& prompts,
                             const ImageSamplingOptions& options,
                             std::vector<at::Generator>& generators);

}  // namespace corl::model
