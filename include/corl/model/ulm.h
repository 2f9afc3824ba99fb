// The unified multimodal model: Janus' decoupled visual paths around one shared decoder.
//
//   understanding: image -> vision_model -> aligner -> replaces <image_placeholder> embeddings
//   generation:    image code -> gen_embed -> gen_aligner -> decoder -> gen_head -> code logits
//   text:          token -> embed_tokens -> decoder -> lm_head -> token logits
//
// Tensor names follow Janus (vision_model, aligner, gen_embed, gen_aligner, gen_head) and
// transformers' LlamaForCausalLM under language_model, so that a Janus-Pro checkpoint maps onto
// the modules by name.
#pragma once

#include <torch/torch.h>

#include "corl/model/config.h"
#include "corl/model/inputs.h"
#include "corl/model/llama.h"
#include "corl/model/vision.h"

namespace corl::model {

struct UnifiedModelImpl : torch::nn::Module {
  explicit UnifiedModelImpl(const ModelConfig& config);

  // Input embeddings of a batch: text tokens, with understanding-image features and generated-
  // image code embeddings put in at their positions.
  torch::Tensor embed(const Batch& batch);
  // Embeddings of image codes [B, T] -> [B, T, hidden].
  torch::Tensor embed_image_codes(const torch::Tensor& codes);
  // Final-normed hidden states [B, T, hidden] (see LlamaModel::forward).
  torch::Tensor hidden_states(const torch::Tensor& embeddings, const torch::Tensor& attention_mask,
                              const torch::Tensor& position_ids, KVCache* cache = nullptr);
  // One decoding step through a static cache (LlamaModel::decode_step); every input on the
  // model's device.
  torch::Tensor decode_step(const torch::Tensor& embeddings, const torch::Tensor& position_ids,
                            KVCache& cache);
  torch::Tensor text_logits(const torch::Tensor& hidden);
  torch::Tensor image_logits(const torch::Tensor& hidden);

  SiglipVisionModel vision_model{nullptr};
  Aligner aligner{nullptr};
  torch::nn::Embedding gen_embed{nullptr};
  Aligner gen_aligner{nullptr};
  GenHead gen_head{nullptr};
  LlamaForCausalLM language_model{nullptr};
  ModelConfig config;
};
TORCH_MODULE(UnifiedModel);

// Supervised losses of a batch: mean cross-entropy of the text head over text targets and of
// the image head over image targets (hidden state t scores the token at t + 1: the batch's
// targets are already shifted). A loss with no targets in the batch is 0.
struct Losses {
  torch::Tensor text;
  torch::Tensor image;
  int64_t text_tokens = 0;
  int64_t image_tokens = 0;
};
Losses supervised_losses(UnifiedModel& model, const Batch& batch);

}  // namespace corl::model
