#include "corl/model/vision.h"

namespace corl::model {
namespace {

constexpr double kInitStd = 0.02;

torch::nn::Linear linear(int64_t in, int64_t out) {
  auto layer = torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(true));
  torch::nn::init::normal_(layer->weight, 0.0, kInitStd);
  torch::nn::init::zeros_(layer->bias);
  return layer;
}

torch::Tensor gelu_tanh(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

}  // namespace

SiglipAttentionImpl::SiglipAttentionImpl(int64_t hidden, int64_t heads) : heads(heads) {
  q_proj = register_module("q_proj", linear(hidden, hidden));
  k_proj = register_module("k_proj", linear(hidden, hidden));
  v_proj = register_module("v_proj", linear(hidden, hidden));
  out_proj = register_module("out_proj", linear(hidden, hidden));
}

torch::Tensor SiglipAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t n = x.size(0), t = x.size(1), d = x.size(2) / heads;
  auto split = [&](const torch::Tensor& y) { return y.view({n, t, heads, d}).transpose(1, 2); };
  const auto out =
      at::scaled_dot_product_attention(split(q_proj(x)), split(k_proj(x)), split(v_proj(x)));
  return out_proj(out.transpose(1, 2).reshape({n, t, heads * d}));
}

SiglipMLPImpl::SiglipMLPImpl(int64_t hidden, int64_t intermediate) {
  fc1 = register_module("fc1", linear(hidden, intermediate));
  fc2 = register_module("fc2", linear(intermediate, hidden));
}

torch::Tensor SiglipMLPImpl::forward(const torch::Tensor& x) { return fc2(gelu_tanh(fc1(x))); }

SiglipEncoderLayerImpl::SiglipEncoderLayerImpl(const ModelConfig& c) {
  const auto norm =
      torch::nn::LayerNormOptions({c.vision_hidden_size}).eps(c.vision_layer_norm_eps);
  layer_norm1 = register_module("layer_norm1", torch::nn::LayerNorm(norm));
  self_attn = register_module("self_attn", SiglipAttention(c.vision_hidden_size, c.vision_heads));
  layer_norm2 = register_module("layer_norm2", torch::nn::LayerNorm(norm));
  mlp = register_module("mlp", SiglipMLP(c.vision_hidden_size, c.vision_intermediate_size));
}

torch::Tensor SiglipEncoderLayerImpl::forward(const torch::Tensor& x) {
  const auto h = x + self_attn(layer_norm1(x));
  return h + mlp(layer_norm2(h));
}

SiglipEmbeddingsImpl::SiglipEmbeddingsImpl(const ModelConfig& c) {
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(3, c.vision_hidden_size, c.patch_size).stride(c.patch_size)));
  position_embedding = register_module(
      "position_embedding", torch::nn::Embedding(c.vision_patches(), c.vision_hidden_size));
  torch::nn::init::normal_(position_embedding->weight, 0.0, kInitStd);
}

torch::Tensor SiglipEmbeddingsImpl::forward(const torch::Tensor& images) {
  const auto patches = patch_embedding(images).flatten(2).transpose(1, 2);  // [N, P, D]
  return patches + position_embedding->weight.unsqueeze(0);
}

SiglipEncoderImpl::SiglipEncoderImpl(const ModelConfig& c) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < c.vision_layers; ++i) layers->push_back(SiglipEncoderLayer(c));
}

SiglipVisionModelImpl::SiglipVisionModelImpl(const ModelConfig& c) {
  embeddings = register_module("embeddings", SiglipEmbeddings(c));
  encoder = register_module("encoder", SiglipEncoder(c));
  post_layernorm = register_module(
      "post_layernorm",
      torch::nn::LayerNorm(
          torch::nn::LayerNormOptions({c.vision_hidden_size}).eps(c.vision_layer_norm_eps)));
}

torch::Tensor SiglipVisionModelImpl::forward(const torch::Tensor& images) {
  auto h = embeddings(images);
  for (const auto& layer : *encoder->layers) h = layer->as<SiglipEncoderLayer>()->forward(h);
  return post_layernorm(h);
}

AlignerImpl::AlignerImpl(int64_t in, int64_t out) {
  fc1 = register_module("fc1", linear(in, out));
  hidden_layers = register_module("hidden_layers", torch::nn::ModuleList(linear(out, out)));
}

torch::Tensor AlignerImpl::forward(const torch::Tensor& x) {
  return hidden_layers[0]->as<torch::nn::Linear>()->forward(torch::gelu(fc1(x)));
}

GenHeadImpl::GenHeadImpl(int64_t hidden, int64_t image_vocab) {
  output_mlp_projector = register_module("output_mlp_projector", linear(hidden, hidden));
  vision_head = register_module("vision_head", linear(hidden, image_vocab));
}

torch::Tensor GenHeadImpl::forward(const torch::Tensor& x) {
  return vision_head(torch::gelu(output_mlp_projector(x)));
}

}  // namespace corl::model
