// Peak memory of a training step with and without activation checkpointing of the decoder
// layers (model.gradient_checkpointing): a decoder of about 25M parameters, one long batch of
// text, forward + backward of the supervised loss, as pretraining and the GRPO updates run it.
// Peak resident memory (ru_maxrss) only grows, so each setting needs its own process:
//
//   bench_memory                   # plain
//   bench_memory --checkpointing   # checkpointed
//   [--threads 2] [--batch 4] [--tokens 1024] [--hidden 512] [--layers 7] [--steps 2]
//
// Prints the parameter count, peak RSS after building the model, peak RSS after the steps (the
// difference is what training added: gradients and activations), seconds per step, the loss and
// a gradient checksum (the two settings must agree to float error).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "corl/model/training.h"
#include "corl/model/ulm.h"
#include "corl/util/threads.h"

namespace {

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, batch = 4, tokens = 1024, hidden = 512, layers = 7, steps = 2;
  bool checkpointing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--checkpointing") {
      checkpointing = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_memory: %s needs a value\n", flag.c_str());
      return 2;
    }
    const int value = std::stoi(argv[++i]);
    if (flag == "--threads") {
      threads = value;
    } else if (flag == "--batch") {
      batch = value;
    } else if (flag == "--tokens") {
      tokens = value;
    } else if (flag == "--hidden") {
      hidden = value;
    } else if (flag == "--layers") {
      layers = value;
    } else if (flag == "--steps") {
      steps = value;
    } else {
      std::fprintf(stderr, "bench_memory: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  corl::set_thread_count(threads);

  corl::model::ModelConfig c;
  c.vocab_size = 4096;
  c.hidden_size = hidden;
  c.num_layers = layers;
  c.num_heads = hidden / 64;
  c.num_kv_heads = hidden / 64;
  c.intermediate_size = hidden * 43 / 16;  // 1376 at 512, LLaMA's ~8/3 ratio
  c.image_size = 32;
  c.patch_size = 8;
  c.vision_hidden_size = 64;
  c.vision_layers = 1;
  c.vision_heads = 2;
  c.vision_intermediate_size = 128;
  c.image_vocab_size = 256;
  c.image_tokens = 16;
  c.max_positions = tokens + 16;
  torch::manual_seed(0);
  corl::model::UnifiedModel model(c);
  model->train();
  corl::model::TrainingSection training;
  training.gradient_checkpointing = checkpointing;
  corl::model::apply_training(model, training);
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();

  // Text rows of random tokens, every position a target: the longest activations per row.
  corl::model::Batch b;
  b.input_ids = torch::randint(4, c.vocab_size, {batch, tokens}, torch::kLong);
  b.attention_mask = torch::ones({batch, tokens}, torch::kLong);
  b.position_ids = torch::arange(tokens, torch::kLong).unsqueeze(0).expand({batch, tokens});
  b.understanding = torch::zeros({batch, tokens}, torch::kBool);
  b.generation = torch::zeros({batch, tokens}, torch::kBool);
  b.codes = torch::zeros({batch, tokens}, torch::kLong);
  b.images = torch::zeros({0, 3, c.image_size, c.image_size});
  b.text_targets = torch::randint(4, c.vocab_size, {batch, tokens}, torch::kLong);
  b.image_targets = torch::full({batch, tokens}, corl::model::kIgnore, torch::kLong);

  const double before = peak_rss_mib();
  double loss = 0.0;
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) {
    model->zero_grad();
    const auto losses = corl::model::supervised_losses(model, b);
    losses.text.backward();
    loss = losses.text.item<double>();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  double checksum = 0.0;
  for (const auto& p : model->parameters()) {
    if (p.grad().defined()) checksum += p.grad().to(torch::kDouble).abs().sum().item<double>();
  }
  std::printf(
      "checkpointing %s: %.1fM parameters, batch %d x %d tokens, %d threads: peak RSS %.0f MiB "
      "after building the model, %.0f MiB after %d steps (+%.0f MiB), %.2f s/step, loss %.6f, "
      "sum |grad| %.6f\n",
      checkpointing ? "on" : "off", static_cast<double>(parameters) / 1e6, batch, tokens, threads,
      before, peak_rss_mib(), steps, peak_rss_mib() - before, seconds, loss, checksum);
  return 0;
}
