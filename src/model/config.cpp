#include "corl/model/config.h"

#include <stdexcept>
#include <type_traits>

#include "corl/util/error.h"

namespace corl::model {
namespace {

// Every field once, so that writing and reading cannot drift apart.
template <class Visit>
void visit(ModelConfig& c, Visit&& v) {
  v("vocab_size", c.vocab_size);
  v("hidden_size", c.hidden_size);
  v("num_layers", c.num_layers);
  v("num_heads", c.num_heads);
  v("num_kv_heads", c.num_kv_heads);
  v("intermediate_size", c.intermediate_size);
  v("rope_theta", c.rope_theta);
  v("rms_norm_eps", c.rms_norm_eps);
  v("max_positions", c.max_positions);
  v("image_size", c.image_size);
  v("patch_size", c.patch_size);
  v("vision_hidden_size", c.vision_hidden_size);
  v("vision_layers", c.vision_layers);
  v("vision_heads", c.vision_heads);
  v("vision_intermediate_size", c.vision_intermediate_size);
  v("vision_layer_norm_eps", c.vision_layer_norm_eps);
  v("image_vocab_size", c.image_vocab_size);
  v("gen_embed_dim", c.gen_embed_dim);
  v("image_tokens", c.image_tokens);
}

// Fields added for Hugging Face checkpoints; a config written before them has none of them, and
// the value here is what that model computed (its aligner used erf-GELU).
template <class Visit>
void visit_switches(ModelConfig& c, Visit&& v) {
  v("vision_hidden_act", c.vision_hidden_act, std::string("gelu_pytorch_tanh"));
  v("aligner_hidden_act", c.aligner_hidden_act, std::string("gelu"));
  v("gen_hidden_act", c.gen_hidden_act, std::string("gelu"));
  v("aligner_depth", c.aligner_depth, 2);
  v("gen_aligner_depth", c.gen_aligner_depth, 2);
  v("vision_attention_bias", c.vision_attention_bias, true);
  v("tie_word_embeddings", c.tie_word_embeddings, false);
  v("vision_stem_channels", c.vision_stem_channels, 0);
}

bool is_activation(const std::string& name) {
  return name == "gelu" || name == "gelu_pytorch_tanh";
}

}  // namespace

nlohmann::json to_json(const ModelConfig& config) {
  nlohmann::json json;
  ModelConfig copy = config;
  visit(copy, [&](const char* key, auto& value) { json[key] = value; });
  visit_switches(copy, [&](const char* key, auto& value, const auto&) { json[key] = value; });
  return json;
}

ModelConfig model_config_from_json(const nlohmann::json& json, const std::string& where) {
  ModelConfig config;
  visit(config, [&](const char* key, auto& value) {
    auto it = json.find(key);
    if (it == json.end() || !it->is_number()) {
      throw DataError(where + ": model config field '" + key + "' is missing or not a number");
    }
    value = it->get<std::decay_t<decltype(value)>>();
  });
  visit_switches(config, [&](const char* key, auto& value, const auto& legacy) {
    using T = std::decay_t<decltype(value)>;
    auto it = json.find(key);
    if (it == json.end()) {
      value = legacy;
      return;
    }
    const bool ok = std::is_same_v<T, std::string> ? it->is_string()
                    : std::is_same_v<T, bool>      ? it->is_boolean()
                                                   : it->is_number_integer();
    if (!ok) throw DataError(where + ": model config field '" + key + "' has the wrong type");
    value = it->get<T>();
  });
  try {
    check(config);
  } catch (const std::invalid_argument& e) {
    throw DataError(where + ": " + e.what());
  }
  return config;
}

void bind(config::Schema& s, ModelConfig& c) {
  s.add("model.hidden_size", &c.hidden_size, "Width of the shared decoder").range(8, 16384);
  s.add("model.num_layers", &c.num_layers, "Decoder layers").range(1, 256);
  s.add("model.num_heads", &c.num_heads, "Attention heads (must divide hidden_size)").range(1, 256);
  s.add("model.num_kv_heads", &c.num_kv_heads,
        "Key/value heads; fewer than num_heads is grouped-query attention")
      .range(1, 256);
  s.add("model.intermediate_size", &c.intermediate_size, "SwiGLU hidden width").range(8, 65536);
  s.add("model.rope_theta", &c.rope_theta, "Base of the rotary frequencies").range(1.0, 1e8);
  s.add("model.rms_norm_eps", &c.rms_norm_eps, "RMSNorm epsilon").range(1e-12, 1e-2);
  s.add("model.max_positions", &c.max_positions, "Longest sequence the model is used on")
      .range(16, 1048576);
  s.add("model.image_size", &c.image_size, "Side of the understanding encoder's input images")
      .range(8, 4096);
  s.add("model.patch_size", &c.patch_size, "ViT patch side (must divide image_size)").range(1, 512);
  s.add("model.vision_hidden_size", &c.vision_hidden_size, "Width of the ViT").range(8, 16384);
  s.add("model.vision_stem_channels", &c.vision_stem_channels,
        "Channels of a 3x3 convolution before the patch embedding (0: none, as in SigLIP)")
      .range(0, 1024);
  s.add("model.vision_layers", &c.vision_layers, "ViT layers").range(1, 256);
  s.add("model.vision_heads", &c.vision_heads, "ViT attention heads").range(1, 256);
  s.add("model.vision_intermediate_size", &c.vision_intermediate_size, "ViT MLP width")
      .range(8, 65536);
  s.add("model.gen_embed_dim", &c.gen_embed_dim, "Width of gen_embed, before gen_aligner")
      .range(1, 4096);
}

void check(const ModelConfig& c) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("model: " + what);
  };
  require(c.vocab_size > 0 && c.image_vocab_size > 0, "vocabulary sizes must be positive");
  require(c.num_heads > 0 && c.hidden_size % c.num_heads == 0,
          "hidden_size must be a multiple of num_heads");
  require(c.head_dim() % 2 == 0, "the head size must be even for rotary positions");
  require(c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0,
          "num_heads must be a multiple of num_kv_heads");
  require(c.vision_heads > 0 && c.vision_hidden_size % c.vision_heads == 0,
          "vision_hidden_size must be a multiple of vision_heads");
  require(c.patch_size > 0 && c.image_size % c.patch_size == 0,
          "image_size must be a multiple of patch_size");
  require(c.image_tokens > 0, "image_tokens must be positive");
  for (const std::string* act : {&c.vision_hidden_act, &c.aligner_hidden_act, &c.gen_hidden_act}) {
    require(is_activation(*act), "activation '" + *act + "' is not gelu or gelu_pytorch_tanh");
  }
  require(c.vision_stem_channels >= 0, "vision_stem_channels must not be negative");
  require(c.aligner_depth >= 1 && c.gen_aligner_depth >= 1, "aligner depths must be at least 1");
  require(c.max_positions >= c.image_tokens + c.vision_patches(),
          "max_positions must hold an image's codes and patches");
}

}  // namespace corl::model
