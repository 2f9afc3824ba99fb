// The understanding encoder (a SigLIP-style ViT with transformers' SiglipVisionModel names) and
// the small MLPs around the shared decoder: the aligners and the image-code head.
#pragma once

#include <torch/torch.h>

#include <string>

#include "corl/model/config.h"
#include "corl/model/linear.h"

namespace corl::model {

// transformers' ACT2FN by name: "gelu" (erf) or "gelu_pytorch_tanh".
torch::Tensor activation(const torch::Tensor& x, const std::string& name);

struct SiglipAttentionImpl : torch::nn::Module {
  SiglipAttentionImpl(int64_t hidden, int64_t heads, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);  // bidirectional
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(SiglipAttention);

struct SiglipMLPImpl : torch::nn::Module {
  SiglipMLPImpl(int64_t hidden, int64_t intermediate, std::string act);
  torch::Tensor forward(const torch::Tensor& x);  // fc1 -> GELU -> fc2
  Linear fc1{nullptr}, fc2{nullptr};
  std::string act;
};
TORCH_MODULE(SiglipMLP);

struct SiglipEncoderLayerImpl : torch::nn::Module {
  explicit SiglipEncoderLayerImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // pre-norm residual blocks
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  SiglipAttention self_attn{nullptr};
  SiglipMLP mlp{nullptr};
};
TORCH_MODULE(SiglipEncoderLayer);

struct SiglipEmbeddingsImpl : torch::nn::Module {
  explicit SiglipEmbeddingsImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& images);  // [N, 3, H, W] -> [N, patches, hidden]
  torch::nn::Conv2d stem{nullptr};  // only with model.vision_stem_channels > 0
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};  // learned, one per patch
  std::string act;
};
TORCH_MODULE(SiglipEmbeddings);

struct SiglipEncoderImpl : torch::nn::Module {
  explicit SiglipEncoderImpl(const ModelConfig& config);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(SiglipEncoder);

// vision_model: images in [-1, 1] -> one feature per patch.
struct SiglipVisionModelImpl : torch::nn::Module {
  explicit SiglipVisionModelImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& images);
  SiglipEmbeddings embeddings{nullptr};
  SiglipEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(SiglipVisionModel);

// GELU MLP of `depth` linear layers (Janus' MlpProjector, depth 2): aligner and gen_aligner.
struct AlignerImpl : torch::nn::Module {
  AlignerImpl(int64_t in, int64_t out, int depth = 2, std::string act = "gelu");
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr};
  torch::nn::ModuleList hidden_layers{nullptr};
  std::string act;
};
TORCH_MODULE(Aligner);

// gen_head: Linear -> GELU -> Linear, hidden states to image-code logits.
struct GenHeadImpl : torch::nn::Module {
  GenHeadImpl(int64_t hidden, int64_t image_vocab, std::string act = "gelu");
  torch::Tensor forward(const torch::Tensor& x);
  Linear output_mlp_projector{nullptr}, vision_head{nullptr};
  std::string act;
};
TORCH_MODULE(GenHead);

}  // namespace corl::model
