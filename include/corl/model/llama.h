// The shared decoder: LLaMA (RMSNorm, rotary positions, SwiGLU, optional grouped-query
// attention), with tensor names of transformers' LlamaForCausalLM under `language_model.`.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "corl/model/config.h"
#include "corl/model/linear.h"

namespace corl::model {

// How a decoding step reads a static KV cache.
enum class CacheAttention {
  // Only the positions written so far: a view of the buffers, so that each step's attention sums
  // run over exactly the keys the step sees (the host's path: the same float sums as attending to
  // a cache that grows by concatenation).
  kFilled,
  // The whole buffer under the key mask: every step has the same shapes and addresses, so that one
  // captured CUDA graph replays it at every position (a device's path). Masked keys add exact
  // zeros, but the kernels sum over more lanes, so the last bit can differ from kFilled's.
  kWhole,
};

// Keys and values of every layer, preallocated per generation at its final length (`capacity`)
// and written in place by position; a key mask [B, capacity] records which positions hold real
// tokens (left padding and unwritten positions are false), and the write slot of the next
// decoding step is a device scalar, so a step concatenates, narrows and copies nothing to or
// from the host.
class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::Dtype dtype,
          torch::Device device, CacheAttention attention = CacheAttention::kFilled);
  // Writes T positions of `layer` from length() (a prefill, or a recomputed chunk); returns the
  // keys/values of every position written so far.
  std::pair<torch::Tensor, torch::Tensor> append(int layer, const torch::Tensor& k,
                                                 const torch::Tensor& v);
  // Records which of the T positions from length() are real (attention_mask [B, T], 1: real).
  void mark(const torch::Tensor& attention_mask);
  // After every layer of a forward pass has appended its T positions.
  void advance(int64_t steps);

  // A decoding step (one position per row): the attention mask [B, 1, 1, S] of its query, after
  // marking its own position real; each layer's keys/values written at the slot; then the slot
  // moved on. Only device tensors change, so the step can be captured and replayed.
  torch::Tensor begin_step();
  std::pair<torch::Tensor, torch::Tensor> append_step(int layer, const torch::Tensor& k,
                                                      const torch::Tensor& v);
  void end_step();

  // Positions written by calls on the host; a captured step's replays are not counted (the slot,
  // on the device, is).
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  CacheAttention attention() const { return attention_; }
  const torch::Tensor& keys(int layer) const { return keys_[layer]; }
  const torch::Tensor& key_mask() const { return key_mask_; }
  const torch::Tensor& slot() const { return slot_; }
  // Keeps only the given batch rows (finished rows dropped, or a prefix repeated for each of its
  // continuations). Reallocates: call before a step is captured.
  void select_rows(const torch::Tensor& rows);

 private:
  std::vector<torch::Tensor> keys_;    // [B, kv_heads, capacity, head_dim] per layer
  std::vector<torch::Tensor> values_;  // likewise
  torch::Tensor key_mask_;             // [B, capacity] bool
  torch::Tensor slot_;                 // [1] int64 on the cache's device: the next step's position
  int64_t length_ = 0;
  int64_t capacity_;
  CacheAttention attention_;
};

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t size, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// cos and sin of the rotary angles for `position_ids` [B, T]: each [B, T, head_dim], in the
// half-split layout of transformers' rotate_half.
std::pair<torch::Tensor, torch::Tensor> rotary_cos_sin(const torch::Tensor& position_ids,
                                                       int64_t head_dim, double theta,
                                                       torch::Dtype dtype);
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin);

struct LlamaAttentionImpl : torch::nn::Module {
  explicit LlamaAttentionImpl(const ModelConfig& config);
  // x [B, T, hidden]; mask [B, 1, T, S] bool (true: may attend); S = cached + T.
  // With `step`, x is one decoding position per row, written at the cache's slot.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, int layer, bool step = false);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t num_heads, num_kv_heads, head_dim;
};
TORCH_MODULE(LlamaAttention);

struct LlamaMLPImpl : torch::nn::Module {
  explicit LlamaMLPImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // SwiGLU
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

struct LlamaDecoderLayerImpl : torch::nn::Module {
  explicit LlamaDecoderLayerImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, int layer, bool step = false);
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// transformers' LlamaModel: embed_tokens, layers, norm.
struct LlamaModelImpl : torch::nn::Module {
  explicit LlamaModelImpl(const ModelConfig& config);
  // Runs the layers on given input embeddings [B, T, hidden]. attention_mask [B, S] (1: real
  // token) covers the cached positions and these T; position_ids [B, T]. Returns the final-normed
  // hidden states [B, T, hidden].
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& attention_mask,
                        const torch::Tensor& position_ids, KVCache* cache = nullptr);
  // One decoding step through a static cache: embeddings [B, 1, hidden] at position_ids [B, 1];
  // the cache's key mask says what the query sees. Returns the final-normed hidden states.
  torch::Tensor decode_step(const torch::Tensor& embeddings, const torch::Tensor& position_ids,
                            KVCache& cache);
  torch::nn::Embedding embed_tokens{nullptr};
  // Activation checkpointing of every layer when gradients are recorded and no cache is given:
  // each layer keeps only its input and recomputes its activations in the backward pass (the
  // same gradients, one more forward pass of compute). A training setting, not saved with the
  // model (model.gradient_checkpointing).
  bool gradient_checkpointing = false;
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  ModelConfig config;
};
TORCH_MODULE(LlamaModel);

// transformers' LlamaForCausalLM: model + lm_head. With tie_word_embeddings there is no lm_head
// of its own (nullptr): the logits read embed_tokens' weight, as transformers ties them.
struct LlamaForCausalLMImpl : torch::nn::Module {
  explicit LlamaForCausalLMImpl(const ModelConfig& config);
  torch::Tensor logits(const torch::Tensor& hidden);
  LlamaModel model{nullptr};
  Linear lm_head{nullptr};
  ops::PackedLinear tied_head;  // the tied logits' product, packed as Linear's
};
TORCH_MODULE(LlamaForCausalLM);

// Causal attention mask [B, 1, T, S] for T queries after `past` cached positions: query i sees
// key j when j <= past + i and key j is a real token. Each query also sees itself, so that rows
// of padding never softmax over nothing.
torch::Tensor causal_mask(const torch::Tensor& attention_mask, int64_t past, int64_t queries);

// Positions that skip left padding: cumulative count of real tokens minus one (0 for padding).
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

}  // namespace corl::model
