// Trains the VQ image tokenizer: reconstruction (MSE or L1, weighted up along object outlines) +
// codebook loss + beta x commitment loss, AdamW with warm-up and cosine decay, and restarts of
// codes left unused.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "corl/data/world.h"  // defines: data::WorldSpec
#include "corl/tokenize/vq.h"

namespace corl::tokenize {

struct VQTrainOptions {
  int steps = 1800;
  int batch_size = 16;
  double learning_rate = 3e-3;  // peak; linear warm-up, then cosine decay to a tenth of it
  int warmup_steps = 50;
  double weight_decay = 0.0;  // AdamW's, on every parameter
  double beta = 0.25;         // commitment loss weight (LlamaGen's commit_loss_beta)
  double codebook_weight = 1.0;
  std::string reconstruction_loss = "mse";  // "mse" (LlamaGen's) or "l1"
  // Extra weight of the reconstruction error on pixels within a pixel of an object's outline:
  // corners and edges decide the judge's shape classes but are a small share of the pixels.
  double boundary_weight = 6.0;
  // Every `restart_every` steps, codes no batch chose since the last restart are moved onto
  // encoder outputs of the current batch; none after `restart_until` (a fraction of the steps),
  // so that the codebook settles. 0 turns restarts off.
  int restart_every = 20;
  double restart_until = 0.8;
  std::uint64_t seed = 1234;
  int threads = 2;
  int log_every = 100;  // steps between log lines; 0 logs nothing but the end
};

// Images [B, 3, H, W] in [-1, 1] for one step.
using BatchSource = std::function<torch::Tensor(int batch_size)>;

// Fresh ShapeWorld scenes each step, rendered at the spec's resolution.
BatchSource world_batches(const data::WorldSpec& spec, std::uint64_t seed);
// Uniform draws (with replacement) from fixed RGB images, e.g. a dataset's.
BatchSource image_batches(std::vector<cv::Mat> images, std::uint64_t seed);

struct VQTrainResult {
  int steps = 0;
  double seconds = 0.0;
  double reconstruction_loss = 0.0;  // the chosen loss, mean of the last log window
  double psnr = 0.0;                 // dB, images in [0, 1], mean of the last log window
  double codebook_usage = 0.0;       // fraction of codes chosen in the last log window
  std::int64_t restarted = 0;        // codes restarted over the run
};

// Deterministic given options.seed, the source and the model's initial weights (call
// torch::manual_seed before constructing the model: LibTorch's default generator is not fixed).
// Seeds LibTorch's generator (restarts draw from it) and sets the thread count.
VQTrainResult train_vq(VQModel& model, const BatchSource& batches, const VQTrainOptions& options);

}  // namespace corl::tokenize
