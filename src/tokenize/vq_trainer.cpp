#include "corl/tokenize/vq_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>

#include "corl/data/render.h"  // defines: data::render
#include "corl/util/log.h"
#include "corl/util/progress.h"
#include "corl/util/threads.h"  // defines: set_thread_count

namespace corl::tokenize {
namespace {

constexpr double kMinLrFraction = 0.1;

double learning_rate(const VQTrainOptions& o, int step) {
  if (step < o.warmup_steps) return o.learning_rate * (step + 1) / o.warmup_steps;
  const double progress = double(step - o.warmup_steps) / std::max(1, o.steps - o.warmup_steps);
  const double cosine = 0.5 * (1.0 + std::cos(std::acos(-1.0) * progress));
  return o.learning_rate * (kMinLrFraction + (1.0 - kMinLrFraction) * cosine);
}

// Matches the detector's default background_max (60 of 255) on images in [-1, 1].
constexpr double kForegroundThreshold = 60.0 / 127.5 - 1.0;

// 1 + boundary_weight on the pixels whose 3x3 neighbourhood holds both object and background.
torch::Tensor boundary_weights(const torch::Tensor& images, double boundary_weight) {
  namespace F = torch::nn::functional;
  const auto foreground =
      (std::get<0>(images.max(1, true)) > kForegroundThreshold).to(torch::kFloat);
  const auto pool = F::MaxPool2dFuncOptions(3).stride(1).padding(1);
  const auto band = F::max_pool2d(foreground, pool) + F::max_pool2d(-foreground, pool);
  return 1.0 + boundary_weight * band;
}

void check(const VQTrainOptions& o) {
  auto require = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("VQ training options: ") + what);
  };
  require(o.steps > 0, "steps must be positive");
  require(o.batch_size > 0, "batch_size must be positive");
  require(o.learning_rate > 0, "learning_rate must be positive");
  require(o.warmup_steps >= 0, "warmup_steps must be >= 0");
  require(o.restart_every >= 0, "restart_every must be >= 0");
  require(o.threads > 0, "threads must be positive");
  require(o.reconstruction_loss == "mse" || o.reconstruction_loss == "l1",
          "reconstruction_loss must be \"mse\" or \"l1\"");
}

}  // namespace

BatchSource world_batches(const data::WorldSpec& spec, std::uint64_t seed) {
  auto sampler = std::make_shared<data::WorldSampler>(spec, seed);
  return [sampler](int batch_size) {
    std::vector<cv::Mat> images;
    images.reserve(batch_size);
    for (int i = 0; i < batch_size; ++i) {
      images.push_back(data::render(sampler->next().scene, sampler->spec().resolution));
    }
    return images_to_tensor(images);
  };
}

BatchSource image_batches(std::vector<cv::Mat> images, std::uint64_t seed) {
  if (images.empty()) throw std::invalid_argument("image_batches: no images");
  auto pool = std::make_shared<std::vector<cv::Mat>>(std::move(images));
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [pool, rng](int batch_size) {
    std::uniform_int_distribution<size_t> pick(0, pool->size() - 1);
    std::vector<cv::Mat> batch;
    batch.reserve(batch_size);
    for (int i = 0; i < batch_size; ++i) batch.push_back((*pool)[pick(*rng)]);
    return images_to_tensor(batch);
  };
}

VQTrainResult train_vq(VQModel& model, const BatchSource& batches, const VQTrainOptions& options) {
  check(options);
  set_thread_count(options.threads);
  torch::manual_seed(options.seed);
  model->train();
  const int64_t codebook_size = model->config.codebook_size;
  const bool mse = options.reconstruction_loss == "mse";

  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(options.learning_rate)
                                    .betas({0.9, 0.95})
                                    .weight_decay(options.weight_decay));
  auto restart_uses = torch::zeros({codebook_size}, torch::kLong);
  auto window_uses = torch::zeros({codebook_size}, torch::kLong);
  const int restart_last = static_cast<int>(options.restart_until * options.steps);
  double window_loss = 0.0, window_mse = 0.0;
  int window_steps = 0;

  VQTrainResult result;
  const auto start = std::chrono::steady_clock::now();
  util::Progress progress("vq tokenizer", options.steps, "step");
  for (int step = 0; step < options.steps; ++step) {
    const double lr = learning_rate(options, step);
    for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);

    const auto images = batches(options.batch_size);
    VQOutput out = model->forward(images);
    const auto error = out.reconstruction - images;
    auto per_pixel = mse ? error.pow(2) : error.abs();
    if (options.boundary_weight > 0) {
      per_pixel = per_pixel * boundary_weights(images, options.boundary_weight);
    }
    const auto reconstruction = per_pixel.mean();
    const auto loss = reconstruction + options.codebook_weight * out.quantized.codebook_loss +
                      options.beta * out.quantized.commit_loss;
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();

    {
      torch::NoGradGuard no_grad;
      const auto uses = torch::bincount(out.quantized.codes.view({-1}), {}, codebook_size);
      restart_uses += uses;
      window_uses += uses;
      window_loss += reconstruction.item<double>();
      window_mse += (out.reconstruction.clamp(-1, 1) - images).pow(2).mean().item<double>();
      ++window_steps;
      if (options.restart_every > 0 && (step + 1) % options.restart_every == 0 &&
          step < restart_last) {
        result.restarted += model->quantize->restart_dead_codes(restart_uses == 0, out.quantized.z);
        restart_uses.zero_();
      }
    }

    const bool last = step + 1 == options.steps;
    if (last || (options.log_every > 0 && (step + 1) % options.log_every == 0)) {
      result.reconstruction_loss = window_loss / window_steps;
      // Images in [-1, 1] span 2, so the [0, 1] MSE is a quarter of it.
      result.psnr = 10.0 * std::log10(4.0 / std::max(window_mse / window_steps, 1e-12));
      result.codebook_usage = (window_uses > 0).sum().item<double>() / codebook_size;
      char line[256];
      std::snprintf(line, sizeof line,
                    "vq step %d/%d: %s %.4f, psnr %.2f dB, codebook usage %.3f, "
                    "restarted %lld, lr %.2e",
                    step + 1, options.steps, options.reconstruction_loss.c_str(),
                    result.reconstruction_loss, result.psnr, result.codebook_usage,
                    static_cast<long long>(result.restarted), lr);
      log::info(line);
      window_uses.zero_();
      window_loss = window_mse = 0.0;
      window_steps = 0;
    }
    progress.advance();
  }
  progress.finish();
  model->eval();
  result.steps = options.steps;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace corl::tokenize
