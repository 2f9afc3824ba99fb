#include "corl/tokenize/vq.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "corl/util/error.h"
#include "corl/util/safetensors.h"  // defines: util::save_module, load_module, read_metadata

namespace corl::tokenize {
namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

constexpr double kNormEps = 1e-6;  // LlamaGen's GroupNorm eps

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding(stride == 1 ? kernel / 2 : 0));
}

nn::GroupNorm group_norm(int64_t channels, int64_t groups) {
  return nn::GroupNorm(nn::GroupNormOptions(groups, channels).eps(kNormEps));
}

// The vectors the nearest-neighbour search compares: unit length under codebook_l2_norm.
torch::Tensor search_space(const torch::Tensor& x, bool l2_norm) {
  return l2_norm ? F::normalize(x, F::NormalizeFuncOptions().p(2).dim(-1)) : x;
}

}  // namespace

nlohmann::json to_json(const VQConfig& c) {
  return {{"image_size", c.image_size},
          {"channels", c.channels},
          {"channel_mult", c.channel_mult},
          {"num_res_blocks", c.num_res_blocks},
          {"z_channels", c.z_channels},
          {"codebook_size", c.codebook_size},
          {"codebook_dim", c.codebook_dim},
          {"norm_groups", c.norm_groups},
          {"codebook_l2_norm", c.codebook_l2_norm}};
}

VQConfig vq_config_from_json(const nlohmann::json& json, const std::string& where) {
  VQConfig c;
  auto field = [&](const char* key, auto& value) {
    if (!json.contains(key)) throw DataError(where + ": VQ config has no '" + key + "'");
    try {
      json.at(key).get_to(value);
    } catch (const nlohmann::json::exception& e) {
      throw DataError(where + ": VQ config field '" + key + "': " + e.what());
    }
  };
  field("image_size", c.image_size);
  field("channels", c.channels);
  field("channel_mult", c.channel_mult);
  field("num_res_blocks", c.num_res_blocks);
  field("z_channels", c.z_channels);
  field("codebook_size", c.codebook_size);
  field("codebook_dim", c.codebook_dim);
  field("norm_groups", c.norm_groups);
  field("codebook_l2_norm", c.codebook_l2_norm);
  try {
    check(c);
  } catch (const std::invalid_argument& e) {
    throw DataError(where + ": " + e.what());
  }
  return c;
}

void check(const VQConfig& c) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("VQ config: " + what);
  };
  require(!c.channel_mult.empty(), "channel_mult is empty");
  require(c.channels > 0 && c.num_res_blocks > 0 && c.z_channels > 0 && c.codebook_size > 1 &&
              c.codebook_dim > 0 && c.norm_groups > 0,
          "sizes must be positive");
  for (int mult : c.channel_mult) {
    require(mult > 0, "channel_mult entries must be positive");
    require((c.channels * mult) % c.norm_groups == 0,
            "norm_groups " + std::to_string(c.norm_groups) + " does not divide " +
                std::to_string(c.channels * mult) + " channels");
  }
  require(c.image_size % c.downsample() == 0, "image_size " + std::to_string(c.image_size) +
                                                  " is not a multiple of the downsample " +
                                                  "factor " + std::to_string(c.downsample()));
}

// --- Blocks ---------------------------------------------------------------------------------

ResnetBlockImpl::ResnetBlockImpl(int64_t in, int64_t out, int64_t groups) {
  norm1 = register_module("norm1", group_norm(in, groups));
  conv1 = register_module("conv1", conv(in, out, 3));
  norm2 = register_module("norm2", group_norm(out, groups));
  conv2 = register_module("conv2", conv(out, out, 3));
  if (in != out) nin_shortcut = register_module("nin_shortcut", conv(in, out, 1));
}

torch::Tensor ResnetBlockImpl::forward(const torch::Tensor& x) {
  auto h = conv1(torch::silu(norm1(x)));
  h = conv2(torch::silu(norm2(h)));
  return (nin_shortcut ? nin_shortcut(x) : x) + h;
}

AttnBlockImpl::AttnBlockImpl(int64_t channels, int64_t groups) {
  norm = register_module("norm", group_norm(channels, groups));
  q = register_module("q", conv(channels, channels, 1));
  k = register_module("k", conv(channels, channels, 1));
  v = register_module("v", conv(channels, channels, 1));
  proj_out = register_module("proj_out", conv(channels, channels, 1));
}

torch::Tensor AttnBlockImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const auto n = norm(x);
  // [B, 1 head, h * w, C]
  auto tokens = [&](const torch::Tensor& y) { return y.reshape({b, 1, c, h * w}).transpose(2, 3); };
  const auto out = at::scaled_dot_product_attention(tokens(q(n)), tokens(k(n)), tokens(v(n)));
  return x + proj_out(out.transpose(2, 3).reshape({b, c, h, w}));
}

DownsampleImpl::DownsampleImpl(int64_t channels) {
  conv = register_module("conv", corl::tokenize::conv(channels, channels, 3, 2));
}

torch::Tensor DownsampleImpl::forward(const torch::Tensor& x) {
  // Asymmetric padding, as LlamaGen (and taming-transformers) pad.
  return conv(F::pad(x, F::PadFuncOptions({0, 1, 0, 1})));
}

UpsampleImpl::UpsampleImpl(int64_t channels) {
  conv = register_module("conv", corl::tokenize::conv(channels, channels, 3));
}

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x) {
  return conv(F::interpolate(x, F::InterpolateFuncOptions()
                                    .scale_factor(std::vector<double>{2.0, 2.0})
                                    .mode(torch::kNearest)));
}

torch::Tensor ConvBlockImpl::forward(torch::Tensor x) {
  for (size_t j = 0; j < res_blocks.size(); ++j) {
    x = res_blocks[j](x);
    if (!attn_blocks.empty()) x = attn_blocks[j](x);
  }
  if (downsample) x = downsample(x);
  if (upsample) x = upsample(x);
  return x;
}

void MidBlocks::add_to(nn::Module& parent, int64_t channels, int64_t groups) {
  nn::ModuleList list;
  first = ResnetBlock(channels, channels, groups);
  attn = AttnBlock(channels, groups);
  second = ResnetBlock(channels, channels, groups);
  list->push_back(first);
  list->push_back(attn);
  list->push_back(second);
  parent.register_module("mid", list);
}

torch::Tensor MidBlocks::forward(const torch::Tensor& x) { return second(attn(first(x))); }

// --- Encoder and decoder --------------------------------------------------------------------

namespace {

// Registers a level's blocks under LlamaGen's names: conv_blocks.{i}.res.{j}, .attn.{j}.
ConvBlock make_level(int64_t in, int64_t out, int blocks, bool attention, int64_t groups) {
  ConvBlock level;
  nn::ModuleList res, attn;
  for (int j = 0; j < blocks; ++j) {
    level->res_blocks.push_back(ResnetBlock(j == 0 ? in : out, out, groups));
    res->push_back(level->res_blocks.back());
    if (attention) {
      level->attn_blocks.push_back(AttnBlock(out, groups));
      attn->push_back(level->attn_blocks.back());
    }
  }
  level->register_module("res", res);
  level->register_module("attn", attn);
  return level;
}

}  // namespace

EncoderImpl::EncoderImpl(const VQConfig& c) {
  const int levels = static_cast<int>(c.channel_mult.size());
  conv_in = register_module("conv_in", conv(3, c.channels, 3));
  nn::ModuleList blocks;
  int64_t block_in = c.channels;
  for (int i = 0; i < levels; ++i) {
    const int64_t block_out = int64_t{c.channels} * c.channel_mult[i];
    ConvBlock level =
        make_level(block_in, block_out, c.num_res_blocks, i == levels - 1, c.norm_groups);
    block_in = block_out;
    if (i != levels - 1) {
      level->downsample = level->register_module("downsample", Downsample(block_in));
    }
    conv_blocks.push_back(level);
    blocks->push_back(level);
  }
  register_module("conv_blocks", blocks);
  mid.add_to(*this, block_in, c.norm_groups);
  norm_out = register_module("norm_out", group_norm(block_in, c.norm_groups));
  conv_out = register_module("conv_out", conv(block_in, c.z_channels, 3));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& x) {
  auto h = conv_in(x);
  for (auto& level : conv_blocks) h = level(h);
  h = mid.forward(h);
  return conv_out(torch::silu(norm_out(h)));
}

DecoderImpl::DecoderImpl(const VQConfig& c) {
  const int levels = static_cast<int>(c.channel_mult.size());
  int64_t block_in = int64_t{c.channels} * c.channel_mult.back();
  conv_in = register_module("conv_in", conv(c.z_channels, block_in, 3));
  mid.add_to(*this, block_in, c.norm_groups);
  nn::ModuleList blocks;
  // Coarsest level first; one more residual block per level than the encoder, as LlamaGen.
  for (int i = levels - 1; i >= 0; --i) {
    const int64_t block_out = int64_t{c.channels} * c.channel_mult[i];
    ConvBlock level =
        make_level(block_in, block_out, c.num_res_blocks + 1, i == levels - 1, c.norm_groups);
    block_in = block_out;
    if (i != 0) level->upsample = level->register_module("upsample", Upsample(block_in));
    conv_blocks.push_back(level);
    blocks->push_back(level);
  }
  register_module("conv_blocks", blocks);
  norm_out = register_module("norm_out", group_norm(block_in, c.norm_groups));
  conv_out = register_module("conv_out", conv(block_in, 3, 3));
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& z) {
  auto h = mid.forward(conv_in(z));
  for (auto& level : conv_blocks) h = level(h);
  return conv_out(torch::silu(norm_out(h)));
}

// --- Quantiser ------------------------------------------------------------------------------

VectorQuantizerImpl::VectorQuantizerImpl(int64_t codebook_size, int64_t dim, bool l2_norm)
    : l2_norm(l2_norm) {
  embedding = register_module("embedding", nn::Embedding(codebook_size, dim));
  torch::NoGradGuard no_grad;
  embedding->weight.uniform_(-1.0 / codebook_size, 1.0 / codebook_size);
  if (l2_norm) embedding->weight.copy_(search_space(embedding->weight, true));
}

torch::Tensor VectorQuantizerImpl::codebook() const {
  return search_space(embedding->weight, l2_norm);
}

Quantized VectorQuantizerImpl::forward(const torch::Tensor& z_map) {
  const int64_t b = z_map.size(0), d = z_map.size(1), h = z_map.size(2), w = z_map.size(3);
  const auto z = search_space(z_map.permute({0, 2, 3, 1}).reshape({-1, d}), l2_norm);
  const auto e = codebook();
  // argmin |z - e|^2 = argmin (|e|^2 - 2 z.e); |z|^2 is the same for every code.
  torch::Tensor codes;
  {
    torch::NoGradGuard no_grad;
    codes = (e.pow(2).sum(1).unsqueeze(0) - 2 * z.mm(e.t())).argmin(1);
  }
  const auto e_z = e.index_select(0, codes);
  Quantized out;
  out.codebook_loss = (e_z - z.detach()).pow(2).mean();
  out.commit_loss = (e_z.detach() - z).pow(2).mean();
  // Straight-through estimator: the decoder sees the code, the encoder gets its gradient.
  out.z_q = (z + (e_z - z).detach()).view({b, h, w, d}).permute({0, 3, 1, 2});
  out.codes = codes.view({b, h * w});
  out.z = z;
  return out;
}

torch::Tensor VectorQuantizerImpl::lookup(const torch::Tensor& codes, int64_t h, int64_t w) const {
  const int64_t b = codes.size(0);
  // Contiguous: a permuted (channels-last) input would carry that layout through the whole
  // decoder, where LibTorch's nearest upsampling and oneDNN's convolutions run several times
  // slower on the CPU than on NCHW.
  return codebook()
      .index_select(0, codes.reshape({-1}))
      .view({b, h, w, -1})
      .permute({0, 3, 1, 2})
      .contiguous();
}

int64_t VectorQuantizerImpl::restart_dead_codes(const torch::Tensor& dead,
                                                const torch::Tensor& candidates) {
  torch::NoGradGuard no_grad;
  const auto dead_ids = dead.nonzero().view({-1});
  const int64_t n = std::min(dead_ids.size(0), candidates.size(0));
  if (n == 0) return 0;
  const auto pool = search_space(candidates.detach().to(torch::kFloat), l2_norm);
  const auto live = codebook().index({~dead});
  torch::Tensor weight;
  if (live.size(0) == 0) {
    weight = torch::ones({pool.size(0)});
  } else {
    const auto distance =
        (pool.pow(2).sum(1, true) + live.pow(2).sum(1).unsqueeze(0) - 2 * pool.mm(live.t()))
            .amin(1)
            .clamp_min(0);
    // A small floor keeps every candidate drawable when most sit on a live code.
    weight = distance + 1e-6 * (distance.max().item<double>() + 1e-12);
  }
  const auto picks = torch::multinomial(weight, n, /*replacement=*/false);
  embedding->weight.index_copy_(0, dead_ids.slice(0, 0, n), pool.index_select(0, picks));
  return n;
}

// --- Model ----------------------------------------------------------------------------------

VQModelImpl::VQModelImpl(const VQConfig& c) : config(c) {
  check(c);
  encoder = register_module("encoder", Encoder(c));
  decoder = register_module("decoder", Decoder(c));
  quantize = register_module("quantize",
                             VectorQuantizer(c.codebook_size, c.codebook_dim, c.codebook_l2_norm));
  quant_conv = register_module("quant_conv", conv(c.z_channels, c.codebook_dim, 1));
  post_quant_conv = register_module("post_quant_conv", conv(c.codebook_dim, c.z_channels, 1));
}

VQOutput VQModelImpl::forward(const torch::Tensor& images) {
  VQOutput out;
  out.quantized = quantize(quant_conv(encoder(images)));
  out.reconstruction = decoder(post_quant_conv(out.quantized.z_q));
  return out;
}

torch::Tensor VQModelImpl::encode(const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  return quantize(quant_conv(encoder(images))).codes;
}

torch::Tensor VQModelImpl::decode(const torch::Tensor& codes) {
  torch::NoGradGuard no_grad;
  const auto z_q = quantize->lookup(codes, config.grid(), config.grid());
  return decoder(post_quant_conv(z_q)).clamp(-1.0, 1.0);
}

// --- Images and files -----------------------------------------------------------------------

torch::Tensor images_to_tensor(const std::vector<cv::Mat>& rgb) {
  if (rgb.empty()) throw std::invalid_argument("images_to_tensor: no images");
  const int h = rgb[0].rows, w = rgb[0].cols;
  auto out = torch::empty({static_cast<int64_t>(rgb.size()), h, w, 3}, torch::kUInt8);
  for (size_t i = 0; i < rgb.size(); ++i) {
    const cv::Mat& image = rgb[i];
    if (image.type() != CV_8UC3 || image.rows != h || image.cols != w) {
      throw std::invalid_argument("images_to_tensor: image " + std::to_string(i) +
                                  " is not an 8-bit RGB image of the first one's size");
    }
    const cv::Mat dense = image.isContinuous() ? image : image.clone();
    std::memcpy(out[static_cast<int64_t>(i)].data_ptr(), dense.data, size_t(h) * w * 3);
  }
  return out.permute({0, 3, 1, 2}).to(torch::kFloat).div_(127.5).sub_(1.0).contiguous();
}

std::vector<cv::Mat> tensor_to_images(const torch::Tensor& images) {
  const auto bytes = images.detach()
                         .to(torch::kCPU, torch::kFloat)
                         .clamp(-1.0, 1.0)
                         .add(1.0)
                         .mul(127.5)
                         .round()
                         .to(torch::kUInt8)
                         .permute({0, 2, 3, 1})
                         .contiguous();
  const int h = static_cast<int>(bytes.size(1)), w = static_cast<int>(bytes.size(2));
  std::vector<cv::Mat> out;
  out.reserve(bytes.size(0));
  for (int64_t i = 0; i < bytes.size(0); ++i) {
    cv::Mat image(h, w, CV_8UC3);
    std::memcpy(image.data, bytes[i].data_ptr(), size_t(h) * w * 3);
    out.push_back(image);
  }
  return out;
}

void save_vq(VQModel& model, const std::string& path) {
  util::save_module(*model, path, {{"vq_config", to_json(model->config).dump()}});
}

VQModel load_vq(const std::string& path) {
  const auto metadata = util::read_metadata(path);
  const auto it = metadata.find("vq_config");
  if (it == metadata.end()) throw DataError(path + ": no 'vq_config' in the metadata");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": 'vq_config' is not JSON: " + e.what());
  }
  VQModel model(vq_config_from_json(json, path));
  util::load_module(*model, path);
  return model;
}

}  // namespace corl::tokenize
