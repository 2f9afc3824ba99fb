// Hugging Face Janus checkpoints: the folder transformers' JanusForConditionalGeneration reads
// and writes (config.json, model.safetensors or shards with model.safetensors.index.json,
// tokenizer.json, preprocessor_config.json), mapped onto the unified model and the VQ by name.
//
//   ours (UnifiedModel)                          transformers
//   vision_model.*  (self_attn.out_proj)         model.vision_model.*  (self_attn.projection_layer)
//   aligner.*                                    model.aligner.*
//   gen_embed.weight                             model.generation_embeddings.weight
//   gen_aligner.*                                model.generation_aligner.*
//   gen_head.output_mlp_projector / vision_head  model.generation_head.proj_out / vision_head
//   language_model.model.*                       model.language_model.*
//   language_model.lm_head.weight                lm_head.weight (absent when tied)
//   ours (VQModel, LlamaGen names)               model.vqmodel.* (taming names)
//   {encoder,decoder}.conv_blocks.I.res.J        encoder.down.I.block.J / decoder.up.I.block.J
//   {encoder,decoder}.conv_blocks.I.attn.J       encoder.down.I.attn.J / decoder.up.I.attn.J
//   encoder.conv_blocks.I.downsample             encoder.down.I.downsample (decoder: up.I.upsample)
//   {encoder,decoder}.mid.0 / mid.1 / mid.2      mid.block_1 / mid.attn_1 / mid.block_2
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/model/config.h"
#include "corl/model/ulm.h"
#include "corl/tokenize/vq.h"

namespace corl::model {

// True when `dir` holds a config.json whose model_type is "janus".
bool is_janus_hf_folder(const std::string& dir);

struct JanusHFConfig {
  ModelConfig model;
  tokenize::VQConfig vq;
  int64_t image_token_id = -1;
};

// Reads transformers' JanusConfig (the parsed config.json). Throws corl::DataError naming
// `where` and the field for a missing field, or a setting these modules do not compute (a
// non-LLaMA decoder, rotary scaling, biases in the decoder, query/key norms in the ViT, ...).
JanusHFConfig janus_config_from_json(const nlohmann::json& json, const std::string& where);
// The config.json that transformers reads back as the same model. Throws corl::DataError when
// the model cannot be written as a Janus checkpoint (an aligner activation different from the
// ViT's, a VQ with GroupNorm groups other than 32, ...).
nlohmann::json janus_config_to_json(const JanusHFConfig& config);

// Our parameter name -> transformers' name.
std::string janus_hf_name(const std::string& ulm_name);
std::string janus_hf_vq_name(const std::string& vq_name);

struct JanusHFModel {
  JanusHFConfig config;
  UnifiedModel model{nullptr};
  tokenize::VQModel vq{nullptr};
};

// Loads every tensor of the folder (one file or shards through the index), converted to fp32.
// Strict: a missing, extra or mis-shaped tensor is a corl::DataError listing all of them, thrown
// before any weight is copied.
JanusHFModel load_janus_hf(const std::string& dir);

// Writes config.json and model.safetensors (fp32) in transformers' layout, atomically per file.
void save_janus_hf(const std::string& dir, UnifiedModel& model, tokenize::VQModel& vq,
                   int64_t image_token_id);

// transformers' JanusImageProcessor, from preprocessor_config.json: resize so the longer side is
// `size` (never under min_size), pad to a square with background_color, rescale, normalise.
// Rescaling, padding and normalising are exact; the bicubic resize is OpenCV's, close to but not
// bit-identical with PIL's.
struct ImageProcessor {
  int size = 384;
  int min_size = 14;
  bool do_resize = true;
  bool do_pad = true;
  bool do_rescale = true;
  bool do_normalize = true;
  double rescale_factor = 1.0 / 255.0;
  std::vector<double> image_mean = {0.5, 0.5, 0.5};
  std::vector<double> image_std = {0.5, 0.5, 0.5};
  std::vector<int> background_color = {127, 127, 127};

  // RGB uint8 image (CV_8UC3) -> pixel values [3, size, size] float.
  torch::Tensor operator()(const cv::Mat& rgb) const;
  // Whether it computes what the unified model's own path computes: uint8 -> [-1, 1] at `size`.
  bool is_unit_range(int size) const;
};
// Throws corl::DataError naming the path for a missing file or field.
ImageProcessor image_processor_from_file(const std::string& path);
void save_image_processor(const ImageProcessor& processor, const std::string& path);

}  // namespace corl::model
