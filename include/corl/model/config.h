// Sizes of the unified model. Janus-Pro-1B's are in the comments; the defaults are tiny enough to
// pretrain and RL-train on two CPU cores in minutes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "corl/config/schema.h"

namespace corl::model {

struct ModelConfig {
  // Shared decoder (LLaMA / DeepSeek-LLM).
  int vocab_size = 512;         // text vocabulary (102400)
  int hidden_size = 192;        // 2048
  int num_layers = 4;           // 24
  int num_heads = 6;            // 16
  int num_kv_heads = 2;         // 16; fewer than num_heads is grouped-query attention
  int intermediate_size = 512;  // 5632
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  int max_positions = 512;  // 4096

  // Understanding path: SigLIP-style ViT + two-layer GELU aligner.
  int image_size = 64;                 // 384
  int patch_size = 8;                  // 16
  int vision_hidden_size = 128;        // 1024
  int vision_layers = 2;               // 24
  int vision_heads = 4;                // 16
  int vision_intermediate_size = 256;  // 4096
  double vision_layer_norm_eps = 1e-6;
  // Channels of a 3x3 convolution (then the ViT's activation) that reads the full-resolution image
  // before the patch embedding; 0 is SigLIP's plain patch embedding. A few pixels' edges and
  // corners are what tells small shapes apart, and one patch embedding learns them slowly.
  int vision_stem_channels = 0;  // 0

  // Generation path: gen_embed -> gen_aligner in, gen_head out.
  int image_vocab_size = 512;  // VQ codebook size (16384)
  int gen_embed_dim = 8;       // 8
  int image_tokens = 64;       // codes per image (576)

  // Switches that let the same modules express a Hugging Face Janus checkpoint (config.json of
  // transformers' JanusForConditionalGeneration). Activations are transformers' ACT2FN names:
  // "gelu" (erf) or "gelu_pytorch_tanh". transformers' Janus uses one activation for the ViT's MLP
  // and the aligner, and one for gen_aligner and gen_head.
  std::string vision_hidden_act = "gelu_pytorch_tanh";
  std::string aligner_hidden_act = "gelu_pytorch_tanh";
  std::string gen_hidden_act = "gelu";
  int aligner_depth = 2;      // linear layers of the aligner (2)
  int gen_aligner_depth = 2;  // linear layers of gen_aligner (2)
  bool vision_attention_bias = true;
  bool tie_word_embeddings = false;  // lm_head reads embed_tokens' weight

  int head_dim() const { return hidden_size / num_heads; }
  int vision_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

nlohmann::json to_json(const ModelConfig& config);
// Throws corl::DataError naming `where` for a missing or inconsistent field.
ModelConfig model_config_from_json(const nlohmann::json& json, const std::string& where);
// Binds the sizes a recipe sets (`model.*`); the vocabulary sizes and codes per image come from
// the tokenizers, not the recipe.
void bind(config::Schema& schema, ModelConfig& config);

// Throws std::invalid_argument when sizes do not fit together (heads dividing hidden size, ...).
void check(const ModelConfig& config);

}  // namespace corl::model
