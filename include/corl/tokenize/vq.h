// The generation path's image tokenizer: LlamaGen's VQModel (the one Janus-Pro uses), smaller.
// A convolutional encoder of GroupNorm + SiLU residual blocks maps an image to a grid of
// vectors, each is replaced by its nearest entry of an L2-normalised codebook, and a mirrored
// decoder draws the image back from the codes. Module and parameter names are LlamaGen's
// (encoder.conv_blocks.0.res.0.norm1.weight, quantize.embedding.weight, ...), so a real
// checkpoint maps onto this one by names alone.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace corl::tokenize {

// LlamaGen's VQ-16 values are in the comments.
struct VQConfig {
  int image_size = 64;                           // 256 / 384
  int channels = 16;                             // ch: 128
  std::vector<int> channel_mult = {1, 1, 2, 4};  // encoder/decoder_ch_mult: [1, 1, 2, 2, 4]
  int num_res_blocks = 1;                        // 2
  int z_channels = 64;                           // 256
  int codebook_size = 512;                       // 16384
  int codebook_dim = 8;                          // codebook_embed_dim: 8
  int norm_groups = 8;                           // 32; divides every level's channels
  bool codebook_l2_norm = true;                  // true

  // Each level but the last halves the side.
  int downsample() const { return 1 << (static_cast<int>(channel_mult.size()) - 1); }
  int grid() const { return image_size / downsample(); }  // codes per side
  int tokens() const { return grid() * grid(); }          // codes per image
};

nlohmann::json to_json(const VQConfig& config);
// Throws corl::DataError naming `where` for a missing or mistyped field, or sizes that do not
// fit together.
VQConfig vq_config_from_json(const nlohmann::json& json, const std::string& where);
// Throws std::invalid_argument when sizes do not fit together.
void check(const VQConfig& config);

struct ResnetBlockImpl : torch::nn::Module {
  ResnetBlockImpl(int64_t in, int64_t out, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Conv2d nin_shortcut{nullptr};  // 1x1, only when in != out
};
TORCH_MODULE(ResnetBlock);

// Single-head self-attention over the positions of a feature map.
struct AttnBlockImpl : torch::nn::Module {
  AttnBlockImpl(int64_t channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
};
TORCH_MODULE(AttnBlock);

// Pads right and bottom by one, then a stride-2 3x3 convolution.
struct DownsampleImpl : torch::nn::Module {
  explicit DownsampleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample);

// Nearest-neighbour doubling, then a 3x3 convolution.
struct UpsampleImpl : torch::nn::Module {
  explicit UpsampleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample);

// One resolution level: residual blocks (each followed by attention on the coarsest level),
// then a change of resolution unless it is the last level.
struct ConvBlockImpl : torch::nn::Module {
  ConvBlockImpl() = default;
  torch::Tensor forward(torch::Tensor x);
  std::vector<ResnetBlock> res_blocks;  // registered as res.{j}
  std::vector<AttnBlock> attn_blocks;   // registered as attn.{j}; empty or one per res block
  Downsample downsample{nullptr};
  Upsample upsample{nullptr};
};
TORCH_MODULE(ConvBlock);

// mid: ResnetBlock, AttnBlock, ResnetBlock.
struct MidBlocks {
  void add_to(torch::nn::Module& parent, int64_t channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);
  ResnetBlock first{nullptr};
  AttnBlock attn{nullptr};
  ResnetBlock second{nullptr};
};

// Image [B, 3, H, W] -> features [B, z_channels, H / f, W / f].
struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const VQConfig& config);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  std::vector<ConvBlock> conv_blocks;
  MidBlocks mid;
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(Encoder);

// Features [B, z_channels, h, w] -> image [B, 3, h * f, w * f], unclamped.
struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const VQConfig& config);
  torch::Tensor forward(const torch::Tensor& z);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  MidBlocks mid;
  std::vector<ConvBlock> conv_blocks;
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(Decoder);

struct Quantized {
  torch::Tensor z_q;            // [B, D, h, w]; the encoder's z plus a detached step to its code
  torch::Tensor codes;          // [B, h * w] int64, row-major over the grid
  torch::Tensor z;              // [N, D] (N = B * h * w) the vectors that were quantised
  torch::Tensor codebook_loss;  // mean |sg[z] - e|^2: moves the codes
  torch::Tensor commit_loss;    // mean |z - sg[e]|^2: the recipe's beta weighs it
};

// LlamaGen's VectorQuantizer with codebook_l2_norm: both z and the codebook are L2-normalised
// before the nearest-neighbour search, so the search is cosine similarity.
struct VectorQuantizerImpl : torch::nn::Module {
  VectorQuantizerImpl(int64_t codebook_size, int64_t dim, bool l2_norm);
  Quantized forward(const torch::Tensor& z);
  // The codebook as the search sees it: [K, D], normalised when l2_norm.
  torch::Tensor codebook() const;
  // Code vectors [B, D, h, w] of codes [B, h * w].
  torch::Tensor lookup(const torch::Tensor& codes, int64_t h, int64_t w) const;
  // Re-initialises each code where `dead` [K] is true from a row of `candidates` [N, D] (vectors
  // as the search sees them), drawn without replacement with probability proportional to their
  // squared distance from the nearest live code, so restarts land where the codebook is worst.
  // Returns how many codes were restarted.
  int64_t restart_dead_codes(const torch::Tensor& dead, const torch::Tensor& candidates);
  torch::nn::Embedding embedding{nullptr};
  bool l2_norm;
};
TORCH_MODULE(VectorQuantizer);

struct VQOutput {
  torch::Tensor reconstruction;  // [B, 3, H, W], unclamped (clamping would stop gradients)
  Quantized quantized;
};

struct VQModelImpl : torch::nn::Module {
  explicit VQModelImpl(const VQConfig& config);
  // Training pass: reconstruction with straight-through gradients to the encoder, and losses.
  VQOutput forward(const torch::Tensor& images);
  // Images [B, 3, H, W] float in [-1, 1] -> codes int64 [B, h * w].
  torch::Tensor encode(const torch::Tensor& images);
  // Codes int64 [B, h * w] -> images [B, 3, H, W] in [-1, 1].
  torch::Tensor decode(const torch::Tensor& codes);
  VQConfig config;
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  VectorQuantizer quantize{nullptr};
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(VQModel);

// RGB uint8 images (all `resolution` square; cv::Mat CV_8UC3) <-> float [B, 3, H, W] in [-1, 1].
torch::Tensor images_to_tensor(const std::vector<cv::Mat>& rgb);
std::vector<cv::Mat> tensor_to_images(const torch::Tensor& images);

// Weights as safetensors with the config in the file's metadata under "vq_config".
void save_vq(VQModel& model, const std::string& path);
// Throws corl::DataError naming the path when the file is missing, has no config, or its
// tensors do not match it.
VQModel load_vq(const std::string& path);

}  // namespace corl::tokenize
