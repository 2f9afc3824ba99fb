// The shared decoder: LLaMA (RMSNorm, rotary positions, SwiGLU, optional grouped-query
// attention), with tensor names of transformers' LlamaForCausalLM under `language_model.`.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "corl/model/config.h"
#include "corl/model/linear.h"

namespace corl::model {

// Keys and values of every layer, preallocated for `capacity` positions so that a decoding step
// writes in place instead of concatenating.
class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::Dtype dtype,
          torch::Device device);
  // Writes this step's keys/values of `layer` after the cached ones; returns all of them.
  std::pair<torch::Tensor, torch::Tensor> append(int layer, const torch::Tensor& k,
                                                 const torch::Tensor& v);
  int64_t length() const { return length_; }
  // Called once per forward pass, after every layer has appended.
  void advance(int64_t steps) { length_ += steps; }
  int64_t capacity() const { return capacity_; }
  // Keeps only the given batch rows (finished rows dropped from a batch).
  void select_rows(const torch::Tensor& rows);

 private:
  std::vector<torch::Tensor> keys_;
  std::vector<torch::Tensor> values_;
  int64_t length_ = 0;
  int64_t capacity_;
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
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, int layer);
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
                        const torch::Tensor& mask, KVCache* cache, int layer);
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
