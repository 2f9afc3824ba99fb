#include "corl/model/vision.h"

#include <stdexcept>
#include <utility>

namespace corl::model {
namespace {

constexpr double kInitStd = 0.02;

Linear linear(int64_t in, int64_t out, bool bias = true) {
  auto layer = Linear(torch::nn::LinearOptions(in, out).bias(bias));
  torch::nn::init::normal_(layer->weight, 0.0, kInitStd);
  if (bias) torch::nn::init::zeros_(layer->bias);
  return layer;
}

}  // namespace

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "gelu") return torch::gelu(x);
  if (name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  throw std::invalid_argument("activation '" + name + "' is not gelu or gelu_pytorch_tanh");
}

SiglipAttentionImpl::SiglipAttentionImpl(int64_t hidden, int64_t heads, bool bias) : heads(heads) {
  q_proj = register_module("q_proj", linear(hidden, hidden, bias));
  k_proj = register_module("k_proj", linear(hidden, hidden, bias));
  v_proj = register_module("v_proj", linear(hidden, hidden, bias));
  out_proj = register_module("out_proj", linear(hidden, hidden));
}

torch::Tensor SiglipAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t n = x.size(0), t = x.size(1), d = x.size(2) / heads;
  auto split = [&](const torch::Tensor& y) { return y.view({n, t, heads, d}).transpose(1, 2); };
  const auto out =
      at::scaled_dot_product_attention(split(q_proj(x)), split(k_proj(x)), split(v_proj(x)));
  return out_proj(out.transpose(1, 2).reshape({n, t, heads * d}));
}

SiglipMLPImpl::SiglipMLPImpl(int64_t hidden, int64_t intermediate, std::string act)
    : act(std::move(act)) {
  fc1 = register_module("fc1", linear(hidden, intermediate));
  fc2 = register_module("fc2", linear(intermediate, hidden));
}

torch::Tensor SiglipMLPImpl::forward(const torch::Tensor& x) {
  return fc2(activation(fc1(x), act));
}

SiglipEncoderLayerImpl::SiglipEncoderLayerImpl(const ModelConfig& c) {
  const auto norm =
      torch::nn::LayerNormOptions({c.vision_hidden_size}).eps(c.vision_layer_norm_eps);
  layer_norm1 = register_module("layer_norm1", torch::nn::LayerNorm(norm));
  self_attn = register_module(
      "self_attn", SiglipAttention(c.vision_hidden_size, c.vision_heads, c.vision_attention_bias));
  layer_norm2 = register_module("layer_norm2", torch::nn::LayerNorm(norm));
  mlp = register_module(
      "mlp", SiglipMLP(c.vision_hidden_size, c.vision_intermediate_size, c.vision_hidden_act));
}

torch::Tensor SiglipEncoderLayerImpl::forward(const torch::Tensor& x) {
  const auto h = x + self_attn(layer_norm1(x));
  return h + mlp(layer_norm2(h));
}

SiglipEmbeddingsImpl::SiglipEmbeddingsImpl(const ModelConfig& c) : act(c.vision_hidden_act) {
  int64_t channels = 3;
  if (c.vision_stem_channels > 0) {
    channels = c.vision_stem_channels;
    stem = register_module(
        "stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, channels, 3).padding(1)));
  }
  patch_embedding = register_module(
      "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, c.vision_hidden_size,
                                                                    c.patch_size)
                                               .stride(c.patch_size)));
  position_embedding = register_module(
      "position_embedding", torch::nn::Embedding(c.vision_patches(), c.vision_hidden_size));
  torch::nn::init::normal_(position_embedding->weight, 0.0, kInitStd);
}

torch::Tensor SiglipEmbeddingsImpl::forward(const torch::Tensor& images) {
  const auto pixels = stem ? activation(stem(images), act) : images;
  const auto patches = patch_embedding(pixels).flatten(2).transpose(1, 2);  // [N, P, D]
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

AlignerImpl::AlignerImpl(int64_t in, int64_t out, int depth, std::string act)
    : act(std::move(act)) {
  fc1 = register_module("fc1", linear(in, out));
  hidden_layers = register_module("hidden_layers", torch::nn::ModuleList());
  for (int i = 1; i < depth; ++i) hidden_layers->push_back(linear(out, out));
}

torch::Tensor AlignerImpl::forward(const torch::Tensor& x) {
  auto h = fc1(x);
  for (const auto& layer : *hidden_layers) {
    h = layer->as<Linear>()->forward(activation(h, act));
  }
  return h;
}

GenHeadImpl::GenHeadImpl(int64_t hidden, int64_t image_vocab, std::string act)
    : act(std::move(act)) {
  output_mlp_projector = register_module("output_mlp_projector", linear(hidden, hidden));
  vision_head = register_module("vision_head", linear(hidden, image_vocab));
}

torch::Tensor GenHeadImpl::forward(const torch::Tensor& x) {
  return vision_head(activation(output_mlp_projector(x), act));
}

}  // namespace corl::model
