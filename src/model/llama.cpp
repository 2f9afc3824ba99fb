#include "corl/model/llama.h"

#include <ATen/autocast_mode.h>  // defines: at::autocast::is_autocast_enabled, ..._dtype

#include <stdexcept>

namespace corl::model {
namespace {

constexpr double kInitStd = 0.02;  // transformers' initializer_range for LLaMA

Linear linear(int64_t in, int64_t out, bool bias = false) {
  auto layer = Linear(torch::nn::LinearOptions(in, out).bias(bias));
  torch::nn::init::normal_(layer->weight, 0.0, kInitStd);
  if (bias) torch::nn::init::zeros_(layer->bias);
  return layer;
}

// Activation checkpointing of one decoder layer (Chen et al. 2016, "Training Deep Nets with
// Sublinear Memory Cost"): the forward pass keeps only the layer's input; the backward pass runs
// the layer again with autograd on and differentiates that. The layer's parameters are inputs of
// the function, so their gradients come back through the engine itself (no reentrant backward
// into .grad), and a layer whose input needs no gradient still trains its weights. The layer
// travels as an integer (autograd's saved data holds IValues, not pointers); the module outlives
// every graph built through it.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin,
                               const torch::Tensor& mask, int64_t layer,
                               torch::TensorList parameters) {
    auto* module =
        reinterpret_cast<LlamaDecoderLayerImpl*>(layer);  // NOLINT(performance-no-int-to-ptr)
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["parameters"] = static_cast<int64_t>(parameters.size());
    // Autocast is thread-local and the backward pass runs on the engine's threads: the recompute
    // must see the forward's settings, or it would compute in another precision.
    const auto device = x.device().type();
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(device);
    ctx->saved_data["autocast_dtype"] = at::autocast::get_autocast_dtype(device);
    ctx->save_for_backward({x, cos, sin, mask});
    return module->forward(x, cos, sin, mask, nullptr, 0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_output) {
    auto* module = reinterpret_cast<LlamaDecoderLayerImpl*>(  // NOLINT(performance-no-int-to-ptr)
        ctx->saved_data["layer"].toInt());
    const int64_t count = ctx->saved_data["parameters"].toInt();
    const auto saved = ctx->get_saved_variables();
    const bool autocast = ctx->saved_data["autocast"].toBool();
    const auto dtype = ctx->saved_data["autocast_dtype"].toScalarType();
    const auto device = saved[0].device().type();
    const bool was_enabled = at::autocast::is_autocast_enabled(device);
    const auto was_dtype = at::autocast::get_autocast_dtype(device);
    at::autocast::set_autocast_dtype(device, dtype);
    at::autocast::set_autocast_enabled(device, autocast);

    const bool input_grad = ctx->needs_input_grad(0);
    const auto x = saved[0].detach().requires_grad_(input_grad);
    const auto parameters = module->parameters();
    torch::autograd::variable_list inputs;
    if (input_grad) inputs.push_back(x);
    std::vector<int64_t> trained;  // positions in `parameters` whose gradient is wanted
    for (int64_t i = 0; i < count; ++i) {
      if (ctx->needs_input_grad(4 + i)) {  // edges: x, cos, sin, mask, parameters
        trained.push_back(i);
        inputs.push_back(parameters[i]);
      }
    }
    torch::Tensor output;
    {
      torch::AutoGradMode grad_mode(true);
      output = module->forward(x, saved[1], saved[2], saved[3], nullptr, 0);
    }
    torch::autograd::variable_list grads;
    if (!inputs.empty()) {
      grads = torch::autograd::grad({output}, inputs, {grad_output[0]}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    }
    at::autocast::set_autocast_enabled(device, was_enabled);
    at::autocast::set_autocast_dtype(device, was_dtype);

    // One entry per argument of forward: x, cos, sin, mask, layer, then each parameter.
    torch::autograd::variable_list result(5 + count);
    size_t next = 0;
    if (input_grad) result[0] = grads[next++];
    for (int64_t i : trained) result[5 + i] = grads[next++];
    return result;
  }
};

}  // namespace

KVCache::KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::Dtype dtype,
                 torch::Device device, CacheAttention attention)
    : capacity_(capacity), attention_(attention) {
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  // Zeros, not empty: a masked key still enters the whole-buffer attention's products, where
  // 0 · NaN from uninitialised memory would spoil the sum.
  for (int i = 0; i < config.num_layers; ++i) {
    keys_.push_back(
        torch::zeros({batch, config.num_kv_heads, capacity, config.head_dim()}, options));
    values_.push_back(
        torch::zeros({batch, config.num_kv_heads, capacity, config.head_dim()}, options));
  }
  key_mask_ = torch::zeros({batch, capacity}, options.dtype(torch::kBool));
  slot_ = torch::zeros({1}, options.dtype(torch::kInt64));
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  const int64_t steps = k.size(2);
  if (length_ + steps > capacity_) {
    throw std::out_of_range("KVCache: " + std::to_string(length_ + steps) +
                            " positions exceed the capacity of " + std::to_string(capacity_));
  }
  keys_[layer].narrow(2, length_, steps).copy_(k);
  values_[layer].narrow(2, length_, steps).copy_(v);
  return {keys_[layer].narrow(2, 0, length_ + steps), values_[layer].narrow(2, 0, length_ + steps)};
}

void KVCache::mark(const torch::Tensor& attention_mask) {
  const int64_t steps = attention_mask.size(1);
  key_mask_.narrow(1, length_, steps).copy_(attention_mask.to(torch::kBool));
}

void KVCache::advance(int64_t steps) {
  length_ += steps;
  slot_.fill_(length_);
}

torch::Tensor KVCache::begin_step() {
  if (attention_ == CacheAttention::kWhole) {
    key_mask_.index_fill_(1, slot_, true);
    return key_mask_.unsqueeze(1).unsqueeze(1);
  }
  if (length_ + 1 > capacity_) {
    throw std::out_of_range("KVCache: " + std::to_string(length_ + 1) +
                            " positions exceed the capacity of " + std::to_string(capacity_));
  }
  key_mask_.select(1, length_).fill_(true);
  return key_mask_.narrow(1, 0, length_ + 1).unsqueeze(1).unsqueeze(1);
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append_step(int layer, const torch::Tensor& k,
                                                             const torch::Tensor& v) {
  if (attention_ == CacheAttention::kWhole) {
    keys_[layer].index_copy_(2, slot_, k);
    values_[layer].index_copy_(2, slot_, v);
    return {keys_[layer], values_[layer]};
  }
  return append(layer, k, v);
}

void KVCache::end_step() {
  ++length_;
  slot_.add_(1);
}

void KVCache::select_rows(const torch::Tensor& rows) {
  const auto on_device = rows.to(key_mask_.device());
  for (auto& k : keys_) k = k.index_select(0, on_device);
  for (auto& v : values_) v = v.index_select(0, on_device);
  key_mask_ = key_mask_.index_select(0, on_device);
}

RMSNormImpl::RMSNormImpl(int64_t size, double eps) : eps(eps) {
  weight = register_parameter("weight", torch::ones({size}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Statistics in fp32 whatever the activations' dtype, as transformers' LlamaRMSNorm.
  const auto x32 = x.to(torch::kFloat32);
  const auto normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + eps);
  return weight * normed.to(x.scalar_type());
}

std::pair<torch::Tensor, torch::Tensor> rotary_cos_sin(const torch::Tensor& position_ids,
                                                       int64_t head_dim, double theta,
                                                       torch::Dtype dtype) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(position_ids.device());
  // inv_freq_i = theta^(-2i/d), i < d/2 (RoFormer, Su et al. 2021)
  const auto inv_freq =
      torch::pow(theta, -torch::arange(0, head_dim, 2, options) / static_cast<double>(head_dim));
  const auto angles = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B, T, d/2]
  const auto full = torch::cat({angles, angles}, -1);
  return {full.cos().to(dtype), full.sin().to(dtype)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos,
                           const torch::Tensor& sin) {
  // x [B, H, T, d]; cos, sin [B, T, d] broadcast over heads.
  const int64_t half = x.size(-1) / 2;
  const auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

LlamaAttentionImpl::LlamaAttentionImpl(const ModelConfig& c)
    : num_heads(c.num_heads), num_kv_heads(c.num_kv_heads), head_dim(c.head_dim()) {
  q_proj = register_module("q_proj", linear(c.hidden_size, num_heads * head_dim));
  k_proj = register_module("k_proj", linear(c.hidden_size, num_kv_heads * head_dim));
  v_proj = register_module("v_proj", linear(c.hidden_size, num_kv_heads * head_dim));
  o_proj = register_module("o_proj", linear(num_heads * head_dim, c.hidden_size));
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                          const torch::Tensor& sin, const torch::Tensor& mask,
                                          KVCache* cache, int layer, bool step) {
  const int64_t batch = x.size(0);
  const int64_t steps = x.size(1);
  auto q = q_proj(x).view({batch, steps, num_heads, head_dim}).transpose(1, 2);
  auto k = k_proj(x).view({batch, steps, num_kv_heads, head_dim}).transpose(1, 2);
  auto v = v_proj(x).view({batch, steps, num_kv_heads, head_dim}).transpose(1, 2);
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);
  if (cache) std::tie(k, v) = step ? cache->append_step(layer, k, v) : cache->append(layer, k, v);
  torch::Tensor out;
  if (x.is_cpu() && at::autocast::is_autocast_enabled(at::kCPU)) {
    // Under CPU autocast only the projections run in bf16: LibTorch's bf16 attention on the CPU
    // leans on MKL's bf16 matrix-vector products, whose generic path (taken on AMD) is slower
    // than fp32 attention, and the fp32 KV cache would be cast whole at every step.
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    out = at::scaled_dot_product_attention(q.to(torch::kFloat32), k.to(torch::kFloat32),
                                           v.to(torch::kFloat32), mask, 0.0, false, std::nullopt,
                                           /*enable_gqa=*/num_kv_heads != num_heads);
  } else {
    out = at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, std::nullopt,
                                           /*enable_gqa=*/num_kv_heads != num_heads);
  }
  return o_proj(out.transpose(1, 2).reshape({batch, steps, num_heads * head_dim}));
}

LlamaMLPImpl::LlamaMLPImpl(const ModelConfig& c) {
  gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size));
  up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size));
  down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const ModelConfig& c) {
  self_attn = register_module("self_attn", LlamaAttention(c));
  mlp = register_module("mlp", LlamaMLP(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                             const torch::Tensor& sin, const torch::Tensor& mask,
                                             KVCache* cache, int layer, bool step) {
  const auto h = x + self_attn(input_layernorm(x), cos, sin, mask, cache, layer, step);
  return h + mlp(post_attention_layernorm(h));
}

LlamaModelImpl::LlamaModelImpl(const ModelConfig& c) : config(c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  torch::nn::init::normal_(embed_tokens->weight, 0.0, kInitStd);
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < c.num_layers; ++i) layers->push_back(LlamaDecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& embeddings,
                                      const torch::Tensor& attention_mask,
                                      const torch::Tensor& position_ids, KVCache* cache) {
  const int64_t past = cache ? cache->length() : 0;
  const int64_t steps = embeddings.size(1);
  if (attention_mask.size(1) != past + steps) {
    throw std::invalid_argument("LlamaModel: attention_mask covers " +
                                std::to_string(attention_mask.size(1)) + " positions, expected " +
                                std::to_string(past + steps));
  }
  const auto mask = causal_mask(attention_mask, past, steps);
  if (cache) cache->mark(attention_mask.narrow(1, past, steps));
  const auto [cos, sin] =
      rotary_cos_sin(position_ids, config.head_dim(), config.rope_theta, embeddings.scalar_type());
  // Checkpointing pays only when a backward pass will follow: not while sampling with a cache.
  const bool checkpoint =
      gradient_checkpointing && cache == nullptr && torch::GradMode::is_enabled();
  auto h = embeddings;
  for (size_t i = 0; i < layers->size(); ++i) {
    auto* layer = layers[i]->as<LlamaDecoderLayer>();
    if (checkpoint) {
      const auto parameters = layer->parameters();
      h = CheckpointedLayer::apply(h, cos, sin, mask, reinterpret_cast<int64_t>(layer),
                                   torch::TensorList(parameters));
    } else {
      h = layer->forward(h, cos, sin, mask, cache, static_cast<int>(i));
    }
  }
  if (cache) cache->advance(steps);
  return norm(h);
}

torch::Tensor LlamaModelImpl::decode_step(const torch::Tensor& embeddings,
                                          const torch::Tensor& position_ids, KVCache& cache) {
  // The query at the slot sees every real key up to itself: exactly the key mask once its own
  // position is marked (causal_mask's rule for one query after the cached positions).
  const auto mask = cache.begin_step();
  const auto [cos, sin] =
      rotary_cos_sin(position_ids, config.head_dim(), config.rope_theta, embeddings.scalar_type());
  auto h = embeddings;
  for (size_t i = 0; i < layers->size(); ++i) {
    h = layers[i]->as<LlamaDecoderLayer>()->forward(h, cos, sin, mask, &cache,
                                                    static_cast<int>(i), /*step=*/true);
  }
  cache.end_step();
  return norm(h);
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(const ModelConfig& c) {
  model = register_module("model", LlamaModel(c));
  if (!c.tie_word_embeddings) {
    lm_head = register_module("lm_head", linear(c.hidden_size, c.vocab_size));
  }
}

torch::Tensor LlamaForCausalLMImpl::logits(const torch::Tensor& hidden) {
  if (lm_head) return lm_head(hidden);
  return tied_head(hidden, model->embed_tokens->weight);
}

torch::Tensor causal_mask(const torch::Tensor& attention_mask, int64_t past, int64_t queries) {
  const auto device = attention_mask.device();
  const int64_t keys = attention_mask.size(1);
  const auto key_index = torch::arange(keys, torch::TensorOptions().device(device));
  const auto query_index =
      torch::arange(past, past + queries, torch::TensorOptions().device(device));
  const auto causal = key_index.unsqueeze(0) <= query_index.unsqueeze(1);  // [T, S]
  const auto self = key_index.unsqueeze(0) == query_index.unsqueeze(1);
  const auto real = attention_mask.to(torch::kBool).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, S]
  return (causal.unsqueeze(0).unsqueeze(0) & real) | self.unsqueeze(0).unsqueeze(0);
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  const auto mask = attention_mask.to(torch::kLong);
  return (mask.cumsum(1) - 1).clamp_min(0) * mask;
}

}  // namespace corl::model
