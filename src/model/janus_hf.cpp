#include "corl/model/janus_hf.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <filesystem>
#include <map>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <set>
#include <stdexcept>

#include "corl/util/error.h"
#include "corl/util/fs.h"           // defines: read_file, write_file_atomic
#include "corl/util/safetensors.h"  // defines: load_safetensors, save_safetensors

namespace corl::model {
namespace fs = std::filesystem;
namespace {

using json = nlohmann::json;

nlohmann::json read_json(const std::string& path) {
  if (!fs::is_regular_file(path)) throw DataError(path + ": no such file");
  try {
    return json::parse(util::read_file(path));
  } catch (const json::exception& e) {
    throw DataError(path + ": malformed JSON: " + e.what());
  }
}

// Whether `value` converts to T exactly: get<int> of a float, or of an integer past int's range,
// is undefined or wraps, where transformers would have refused the file.
template <class T>
bool fits(const json& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    if (!value.is_number_integer()) return false;
    if (value.is_number_unsigned()) {
      return value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    }
    const auto v = value.get<int64_t>();
    return v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
  } else if constexpr (std::is_floating_point_v<T>) {
    return value.is_number();
  } else if constexpr (std::is_same_v<T, std::string>) {
    return value.is_string();
  } else {  // std::vector of one of the above
    return value.is_array() && std::all_of(value.begin(), value.end(), [](const json& e) {
             return fits<typename T::value_type>(e);
           });
  }
}

// A field of a sub-config: `key` must be there with the type of `value`.
template <class T>
T field(const json& section, const std::string& section_name, const char* key,
        const std::string& where) {
  const auto it = section.find(key);
  if (it == section.end() || it->is_null()) {
    throw DataError(where + ": " + section_name + "." + key + " is missing");
  }
  if (!fits<T>(*it)) {
    throw DataError(where + ": " + section_name + "." + key + " has the wrong type or range: " +
                    it->dump());
  }
  return it->get<T>();
}

// A field with transformers' default when the file leaves it out.
template <class T>
T field_or(const json& section, const char* key, T fallback, const std::string& section_name,
           const std::string& where) {
  if (!section.contains(key) || section.at(key).is_null()) return fallback;
  return field<T>(section, section_name, key, where);
}

void require(bool ok, const std::string& where, const std::string& what) {
  if (!ok) throw DataError(where + ": " + what + " (not computed by corl's Janus modules)");
}

std::string replace_all(std::string name, const std::regex& pattern, const char* with) {
  return std::regex_replace(name, pattern, with);
}

}  // namespace

bool is_janus_hf_folder(const std::string& dir) {
  const fs::path config = fs::path(dir) / "config.json";
  if (!fs::is_regular_file(config)) return false;
  try {
    const auto j = json::parse(util::read_file(config.string()));
    return j.value("model_type", "") == "janus";
  } catch (const json::exception&) {
    return false;
  }
}

namespace {

JanusHFConfig parse_janus_config(const json& j, const std::string& where) {
  if (!j.is_object() || j.value("model_type", "") != "janus") {
    throw DataError(where + ": model_type is not \"janus\"");
  }
  for (const char* section : {"text_config", "vision_config", "vq_config"}) {
    if (!j.contains(section) || !j.at(section).is_object()) {
      throw DataError(where + ": " + section + " is missing");
    }
  }
  const json& text = j.at("text_config");
  const json& vision = j.at("vision_config");
  const json& vq = j.at("vq_config");
  JanusHFConfig out;
  ModelConfig& c = out.model;

  const std::string t = "text_config";
  require(text.value("model_type", "llama") == "llama", where, "text_config.model_type not llama");
  c.vocab_size = field<int>(text, t, "vocab_size", where);
  c.hidden_size = field<int>(text, t, "hidden_size", where);
  c.num_layers = field<int>(text, t, "num_hidden_layers", where);
  c.num_heads = field<int>(text, t, "num_attention_heads", where);
  c.num_kv_heads = field_or<int>(text, "num_key_value_heads", c.num_heads, t, where);
  c.intermediate_size = field<int>(text, t, "intermediate_size", where);
  c.rms_norm_eps = field_or<double>(text, "rms_norm_eps", 1e-6, t, where);
  c.max_positions = field_or<int>(text, "max_position_embeddings", 2048, t, where);
  // transformers 5 keeps rope_theta in rope_parameters; older files have it at the top.
  c.rope_theta = field_or<double>(text, "rope_theta", 10000.0, t, where);
  if (text.contains("rope_parameters") && text.at("rope_parameters").is_object()) {
    const json& rope = text.at("rope_parameters");
    c.rope_theta =
        field_or<double>(rope, "rope_theta", c.rope_theta, t + ".rope_parameters", where);
    require(rope.value("rope_type", "default") == "default", where,
            "text_config.rope_parameters.rope_type is not default");
  }
  require(!text.contains("rope_scaling") || text.at("rope_scaling").is_null(), where,
          "text_config.rope_scaling is set");
  require(text.value("hidden_act", "silu") == "silu", where, "text_config.hidden_act is not silu");
  require(!text.value("attention_bias", false), where, "text_config.attention_bias is true");
  require(!text.value("mlp_bias", false), where, "text_config.mlp_bias is true");
  if (c.num_heads > 0 && text.contains("head_dim") && !text.at("head_dim").is_null()) {
    require(field<int>(text, t, "head_dim", where) == c.hidden_size / c.num_heads, where,
            "text_config.head_dim differs from hidden_size / num_attention_heads");
  }
  c.tie_word_embeddings = j.value("tie_word_embeddings", true);

  const std::string v = "vision_config";
  c.image_size = field<int>(vision, v, "image_size", where);
  c.patch_size = field<int>(vision, v, "patch_size", where);
  c.vision_hidden_size = field<int>(vision, v, "hidden_size", where);
  c.vision_layers = field<int>(vision, v, "num_hidden_layers", where);
  c.vision_heads = field<int>(vision, v, "num_attention_heads", where);
  const double mlp_ratio = field_or<double>(vision, "mlp_ratio", 4.0, v, where);
  const double intermediate = c.vision_hidden_size * mlp_ratio;
  require(std::isfinite(intermediate) && intermediate >= 0 && intermediate < (1 << 24), where,
          "vision_config.mlp_ratio gives no usable MLP width");
  c.vision_intermediate_size = static_cast<int>(intermediate);  // as int()
  c.vision_layer_norm_eps = field_or<double>(vision, "layer_norm_eps", 1e-6, v, where);
  c.vision_hidden_act = field_or<std::string>(vision, "hidden_act", "gelu", v, where);
  c.aligner_hidden_act = c.vision_hidden_act;
  c.vision_attention_bias = field_or<bool>(vision, "attention_bias", true, v, where);
  c.aligner_depth = field_or<int>(vision, "depth", 2, v, where);
  require(!field_or<bool>(vision, "use_qk_norm", false, v, where), where,
          "vision_config.use_qk_norm is true");
  require(field_or<int>(vision, "num_channels", 3, v, where) == 3, where,
          "vision_config.num_channels is not 3");
  require(field_or<int>(vision, "projection_dim", c.hidden_size, v, where) == c.hidden_size, where,
          "vision_config.projection_dim differs from text_config.hidden_size");

  const std::string q = "vq_config";
  tokenize::VQConfig& g = out.vq;
  g.channels = field<int>(vq, q, "base_channels", where);
  g.channel_mult = field<std::vector<int>>(vq, q, "channel_multiplier", where);
  g.num_res_blocks = field<int>(vq, q, "num_res_blocks", where);
  g.z_channels = field<int>(vq, q, "latent_channels", where);
  g.codebook_size = field<int>(vq, q, "num_embeddings", where);
  g.codebook_dim = field<int>(vq, q, "embed_dim", where);
  g.norm_groups = 32;  // transformers' JanusVQVAE hard-codes GroupNorm(32)
  g.codebook_l2_norm = true;
  require(!field_or<bool>(vq, "double_latent", false, q, where), where,
          "vq_config.double_latent is true");
  require(field_or<int>(vq, "in_channels", 3, q, where) == 3 &&
              field_or<int>(vq, "out_channels", 3, q, where) == 3,
          where, "vq_config in/out channels are not 3");
  require(field<int>(vq, q, "projection_dim", where) == c.hidden_size &&
              field_or<int>(vq, "image_token_embed_dim", c.hidden_size, q, where) == c.hidden_size,
          where, "vq_config.projection_dim or image_token_embed_dim differs from the hidden size");
  c.image_vocab_size = g.codebook_size;
  c.gen_embed_dim = g.codebook_dim;
  c.gen_aligner_depth = field_or<int>(vq, "num_hidden_layers", 2, q, where);
  c.gen_hidden_act = field_or<std::string>(vq, "hidden_act", "gelu", q, where);
  // JanusConfig sets the VQ's grid to the ViT's patch grid: an image has as many codes as
  // patches.
  require(!g.channel_mult.empty() && g.channel_mult.size() <= 16, where,
          "vq_config.channel_multiplier has no level or over 16");
  if (c.patch_size > 0) {
    const int64_t size = int64_t{c.image_size / c.patch_size} * g.downsample();
    require(size >= 0 && size < (1 << 20), where, "the VQ's image size is out of range");
    g.image_size = static_cast<int>(size);
  }
  c.image_tokens = g.tokens();
  out.image_token_id = field_or<int64_t>(j, "image_token_id", -1, "config", where);

  try {
    check(c);
    tokenize::check(g);
  } catch (const std::invalid_argument& e) {
    throw DataError(where + ": " + e.what());
  }
  return out;
}

}  // namespace

JanusHFConfig janus_config_from_json(const json& j, const std::string& where) {
  try {
    return parse_janus_config(j, where);
  } catch (const json::exception& e) {  // a field of a type the checks above did not expect
    throw DataError(where + ": " + e.what());
  }
}

json janus_config_to_json(const JanusHFConfig& config) {
  const ModelConfig& c = config.model;
  const tokenize::VQConfig& g = config.vq;
  auto refuse = [](bool ok, const std::string& what) {
    if (!ok) throw DataError("export to Hugging Face Janus: " + what);
  };
  refuse(c.aligner_hidden_act == c.vision_hidden_act,
         "transformers' Janus uses one activation for the ViT MLP and the aligner, this model "
         "has " +
             c.vision_hidden_act + " and " + c.aligner_hidden_act);
  refuse(g.norm_groups == 32, "transformers' Janus VQ uses GroupNorm(32), this VQ uses " +
                                  std::to_string(g.norm_groups) + " groups");
  refuse(g.codebook_l2_norm, "transformers' Janus VQ decodes from an L2-normalised codebook");
  const double mlp_ratio =
      static_cast<double>(c.vision_intermediate_size) / static_cast<double>(c.vision_hidden_size);
  refuse(static_cast<int>(c.vision_hidden_size * mlp_ratio) == c.vision_intermediate_size,
         "the ViT MLP width is not int(hidden_size * mlp_ratio)");
  refuse(c.vision_stem_channels == 0,
         "transformers' Janus ViT has no convolution stem, this model has " +
             std::to_string(c.vision_stem_channels) + " stem channels");
  refuse(g.grid() * c.patch_size == c.image_size,
         "the VQ grid must equal the ViT's patch grid (transformers ties them)");
  json text = {{"model_type", "llama"},
               {"vocab_size", c.vocab_size},
               {"hidden_size", c.hidden_size},
               {"intermediate_size", c.intermediate_size},
               {"num_hidden_layers", c.num_layers},
               {"num_attention_heads", c.num_heads},
               {"num_key_value_heads", c.num_kv_heads},
               {"head_dim", c.head_dim()},
               {"hidden_act", "silu"},
               {"max_position_embeddings", c.max_positions},
               {"rms_norm_eps", c.rms_norm_eps},
               {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", c.rope_theta}}},
               {"attention_bias", false},
               {"mlp_bias", false},
               {"tie_word_embeddings", c.tie_word_embeddings}};
  json vision = {{"model_type", "janus_vision_model"},
                 {"hidden_size", c.vision_hidden_size},
                 {"num_hidden_layers", c.vision_layers},
                 {"num_attention_heads", c.vision_heads},
                 {"num_channels", 3},
                 {"image_size", c.image_size},
                 {"patch_size", c.patch_size},
                 {"hidden_act", c.vision_hidden_act},
                 {"layer_norm_eps", c.vision_layer_norm_eps},
                 {"mlp_ratio", mlp_ratio},
                 {"attention_bias", c.vision_attention_bias},
                 {"projection_dim", c.hidden_size},
                 {"use_qk_norm", false},
                 {"depth", c.aligner_depth},
                 {"num_image_tokens", c.vision_patches()}};
  json vq = {{"model_type", "janus_vqgan"},
             {"embed_dim", g.codebook_dim},
             {"num_embeddings", g.codebook_size},
             {"double_latent", false},
             {"latent_channels", g.z_channels},
             {"in_channels", 3},
             {"out_channels", 3},
             {"base_channels", g.channels},
             {"channel_multiplier", g.channel_mult},
             {"num_res_blocks", g.num_res_blocks},
             {"num_patches", g.grid()},
             {"projection_dim", c.hidden_size},
             {"image_token_embed_dim", c.hidden_size},
             {"num_hidden_layers", c.gen_aligner_depth},
             {"hidden_act", c.gen_hidden_act}};
  return {{"architectures", {"JanusForConditionalGeneration"}},
          {"model_type", "janus"},
          {"dtype", "float32"},
          {"image_token_id", config.image_token_id},
          {"tie_word_embeddings", c.tie_word_embeddings},
          {"text_config", text},
          {"vision_config", vision},
          {"vq_config", vq}};
}

std::string janus_hf_name(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> prefixes = {
      {"vision_model.", "model.vision_model."},
      {"aligner.", "model.aligner."},
      {"gen_embed.", "model.generation_embeddings."},
      {"gen_aligner.", "model.generation_aligner."},
      {"gen_head.output_mlp_projector.", "model.generation_head.proj_out."},
      {"gen_head.vision_head.", "model.generation_head.vision_head."},
      {"language_model.model.", "model.language_model."},
      {"language_model.lm_head.", "lm_head."},
  };
  for (const auto& [ours, theirs] : prefixes) {
    if (name.rfind(ours, 0) == 0) {
      std::string out = theirs + name.substr(ours.size());
      static const std::regex out_proj(R"(\.self_attn\.out_proj\.)");
      return replace_all(out, out_proj, ".self_attn.projection_layer.");
    }
  }
  throw std::invalid_argument("janus_hf_name: no Janus name for '" + name + "'");
}

std::string janus_hf_vq_name(const std::string& name) {
  static const std::regex encoder_res(R"(^encoder\.conv_blocks\.(\d+)\.res\.)");
  static const std::regex encoder_attn(R"(^encoder\.conv_blocks\.(\d+)\.attn\.)");
  static const std::regex encoder_down(R"(^encoder\.conv_blocks\.(\d+)\.downsample\.)");
  static const std::regex decoder_res(R"(^decoder\.conv_blocks\.(\d+)\.res\.)");
  static const std::regex decoder_attn(R"(^decoder\.conv_blocks\.(\d+)\.attn\.)");
  static const std::regex decoder_up(R"(^decoder\.conv_blocks\.(\d+)\.upsample\.)");
  static const std::regex mid0(R"(\.mid\.0\.)"), mid1(R"(\.mid\.1\.)"), mid2(R"(\.mid\.2\.)");
  std::string out = name;
  out = replace_all(out, encoder_res, "encoder.down.$1.block.");
  out = replace_all(out, encoder_attn, "encoder.down.$1.attn.");
  out = replace_all(out, encoder_down, "encoder.down.$1.downsample.");
  out = replace_all(out, decoder_res, "decoder.up.$1.block.");
  out = replace_all(out, decoder_attn, "decoder.up.$1.attn.");
  out = replace_all(out, decoder_up, "decoder.up.$1.upsample.");
  out = replace_all(out, mid0, ".mid.block_1.");
  out = replace_all(out, mid1, ".mid.attn_1.");
  out = replace_all(out, mid2, ".mid.block_2.");
  return "model.vqmodel." + out;
}

namespace {

// Every tensor of the folder by name: the index's shards, or the single model.safetensors.
std::map<std::string, torch::Tensor> read_weights(const std::string& dir) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> files;
  if (fs::is_regular_file(index)) {
    const json j = read_json(index.string());
    if (!j.contains("weight_map") || !j.at("weight_map").is_object()) {
      throw DataError(index.string() + ": no weight_map");
    }
    std::set<std::string> shards;
    for (const auto& [name, file] : j.at("weight_map").items()) {
      if (!file.is_string()) throw DataError(index.string() + ": weight_map." + name);
      shards.insert(file.get<std::string>());
    }
    for (const auto& shard : shards) files.push_back((fs::path(dir) / shard).string());
  } else {
    files.push_back((fs::path(dir) / "model.safetensors").string());
    if (!fs::is_regular_file(files.back())) {
      throw DataError(dir + ": neither model.safetensors nor model.safetensors.index.json");
    }
  }
  std::map<std::string, torch::Tensor> weights;
  for (const auto& file : files) {
    for (auto& [name, tensor] : util::load_safetensors(file).tensors) {
      if (!weights.emplace(name, tensor).second) {
        throw DataError(file + ": tensor " + name + " is also in another shard");
      }
    }
  }
  return weights;
}

std::string shape_text(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string list(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

JanusHFModel load_janus_hf(const std::string& dir) {
  const std::string config_path = (fs::path(dir) / "config.json").string();
  JanusHFModel out;
  out.config = janus_config_from_json(read_json(config_path), config_path);
  out.model = UnifiedModel(out.config.model);
  out.vq = tokenize::VQModel(out.config.vq);

  std::map<std::string, torch::Tensor> targets;  // transformers' name -> our parameter
  for (const auto& p : out.model->named_parameters()) targets[janus_hf_name(p.key())] = p.value();
  for (const auto& p : out.vq->named_parameters()) targets[janus_hf_vq_name(p.key())] = p.value();

  auto weights = read_weights(dir);
  std::vector<std::string> missing, extra, misshaped;
  if (out.config.model.tie_word_embeddings && weights.count("lm_head.weight")) {
    // A tied checkpoint may still carry the alias; it must be the embedding itself.
    const auto& embed = weights.count("model.language_model.embed_tokens.weight")
                            ? weights.at("model.language_model.embed_tokens.weight")
                            : torch::Tensor();
    if (embed.defined() && torch::equal(embed, weights.at("lm_head.weight"))) {
      weights.erase("lm_head.weight");
    }
  }
  for (const auto& [name, tensor] : weights) {
    const auto it = targets.find(name);
    if (it == targets.end()) {
      extra.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      misshaped.push_back(name + " " + shape_text(tensor) + " (expected " + shape_text(it->second) +
                          ")");
    }
  }
  for (const auto& [name, _] : targets) {
    if (!weights.count(name)) missing.push_back(name);
  }
  if (!missing.empty() || !extra.empty() || !misshaped.empty()) {
    std::string what = dir + ": tensors do not match the Janus config";
    if (!missing.empty())
      what += "; missing (" + std::to_string(missing.size()) + "): " + list(missing);
    if (!extra.empty()) what += "; extra (" + std::to_string(extra.size()) + "): " + list(extra);
    if (!misshaped.empty()) {
      what += "; mis-shaped (" + std::to_string(misshaped.size()) + "): " + list(misshaped);
    }
    throw DataError(what);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(weights.at(name).to(target.scalar_type()));
  out.model->eval();
  out.vq->eval();
  return out;
}

void save_janus_hf(const std::string& dir, UnifiedModel& model, tokenize::VQModel& vq,
                   int64_t image_token_id) {
  JanusHFConfig config{model->config, vq->config, image_token_id};
  const json config_json = janus_config_to_json(config);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw DataError(dir + ": cannot create folder: " + error.message());
  util::NamedTensors tensors;
  for (const auto& p : model->named_parameters()) {
    tensors.emplace_back(janus_hf_name(p.key()), p.value().detach().to(torch::kFloat32));
  }
  for (const auto& p : vq->named_parameters()) {
    tensors.emplace_back(janus_hf_vq_name(p.key()), p.value().detach().to(torch::kFloat32));
  }
  util::save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                         {{"format", "pt"}});
  util::write_file_atomic((fs::path(dir) / "config.json").string(), config_json.dump(2) + "\n");
}

// --- Image processor ------------------------------------------------------------------------

torch::Tensor ImageProcessor::operator()(const cv::Mat& rgb) const {
  if (rgb.type() != CV_8UC3 || rgb.empty()) {
    throw std::invalid_argument("image processor: expected an 8-bit RGB image");
  }
  cv::Mat image = rgb;
  if (do_resize) {
    const double delta = static_cast<double>(size) / std::max(rgb.rows, rgb.cols);
    // Python's round(): halves to even, as std::nearbyint in the default rounding mode.
    const int h = std::max(static_cast<int>(std::nearbyint(rgb.rows * delta)), min_size);
    const int w = std::max(static_cast<int>(std::nearbyint(rgb.cols * delta)), min_size);
    if (h != rgb.rows || w != rgb.cols)
      cv::resize(rgb, image, cv::Size(w, h), 0, 0, cv::INTER_CUBIC);
  }
  if (do_pad && image.rows != image.cols) {
    const int side = std::max(image.rows, image.cols);
    cv::Mat square(side, side, CV_8UC3,
                   cv::Scalar(background_color[0], background_color[1], background_color[2]));
    const int top = image.cols > image.rows ? (side - image.rows) / 2 : 0;
    const int left = image.rows > image.cols ? (side - image.cols) / 2 : 0;
    image.copyTo(square(cv::Rect(left, top, image.cols, image.rows)));
    image = square;
  }
  const cv::Mat dense = image.isContinuous() ? image : image.clone();
  auto pixels = torch::from_blob(dense.data, {dense.rows, dense.cols, 3}, torch::kUInt8)
                    .permute({2, 0, 1})
                    .to(torch::kFloat32);
  if (do_rescale) pixels = pixels * rescale_factor;
  if (do_normalize) {
    const auto mean =
        torch::tensor(image_mean, torch::kFloat64).to(torch::kFloat32).view({3, 1, 1});
    const auto std = torch::tensor(image_std, torch::kFloat64).to(torch::kFloat32).view({3, 1, 1});
    pixels = (pixels - mean) / std;
  }
  return pixels.contiguous();
}

bool ImageProcessor::is_unit_range(int expected_size) const {
  auto all = [](const std::vector<double>& v, double x) {
    for (double y : v) {
      if (std::abs(y - x) > 1e-9) return false;
    }
    return true;
  };
  return size == expected_size && do_rescale && std::abs(rescale_factor - 1.0 / 255.0) < 1e-12 &&
         do_normalize && all(image_mean, 0.5) && all(image_std, 0.5);
}

ImageProcessor image_processor_from_file(const std::string& path) {
  const json j = read_json(path);
  const std::string s = "preprocessor_config";
  ImageProcessor p;
  if (!j.contains("size") || !j.at("size").is_object()) throw DataError(path + ": size is missing");
  const int height = field<int>(j.at("size"), s + ".size", "height", path);
  const int width = field<int>(j.at("size"), s + ".size", "width", path);
  if (height != width || height <= 0) {
    throw DataError(path + ": size must be square, got " + std::to_string(height) + "x" +
                    std::to_string(width));
  }
  p.size = height;
  p.min_size = field_or<int>(j, "min_size", p.min_size, s, path);
  p.do_resize = field_or<bool>(j, "do_resize", p.do_resize, s, path);
  p.do_pad = field_or<bool>(j, "do_pad", p.do_pad, s, path);
  p.do_rescale = field_or<bool>(j, "do_rescale", p.do_rescale, s, path);
  p.do_normalize = field_or<bool>(j, "do_normalize", p.do_normalize, s, path);
  p.rescale_factor = field_or<double>(j, "rescale_factor", p.rescale_factor, s, path);
  p.image_mean = field_or<std::vector<double>>(j, "image_mean", p.image_mean, s, path);
  p.image_std = field_or<std::vector<double>>(j, "image_std", p.image_std, s, path);
  // transformers derives the padding colour from the mean when the file has none.
  std::vector<int> background;
  for (double m : p.image_mean) background.push_back(static_cast<int>(m * 255));
  p.background_color = field_or<std::vector<int>>(j, "background_color", background, s, path);
  if (p.image_mean.size() != 3 || p.image_std.size() != 3 || p.background_color.size() != 3) {
    throw DataError(path + ": image_mean, image_std and background_color need 3 values");
  }
  for (double x : p.image_std) {
    if (!(x > 0)) throw DataError(path + ": image_std must be positive");
  }
  return p;
}

void save_image_processor(const ImageProcessor& p, const std::string& path) {
  const json j = {{"image_processor_type", "JanusImageProcessor"},
                  {"size", {{"height", p.size}, {"width", p.size}}},
                  {"min_size", p.min_size},
                  {"do_resize", p.do_resize},
                  {"resample", 3},
                  {"do_pad", p.do_pad},
                  {"background_color", p.background_color},
                  {"do_rescale", p.do_rescale},
                  {"rescale_factor", p.rescale_factor},
                  {"do_normalize", p.do_normalize},
                  {"image_mean", p.image_mean},
                  {"image_std", p.image_std}};
  util::write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace corl::model
