// The optimizer every trainer uses (pretraining and the GRPO stages alike): AdamW with decoupled
// weight decay on the matrices only, and its learning-rate schedule, one of Hugging Face
// Trainer's (`lr_scheduler_type`: linear, cosine, constant) with its linear warm-up.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "corl/config/schema.h"

namespace corl::train {

struct OptimizerSection {
  double learning_rate = 1e-3;
  int warmup_steps = 50;
  double min_lr_ratio = 0.1;  // cosine decay ends at learning_rate * this
  double weight_decay = 0.05;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.95;
  double max_grad_norm = 1.0;
  int gradient_accumulation_steps = 1;
  // linear, cosine or constant, as transformers' get_scheduler computes them; cosine decays to
  // min_lr_ratio (transformers' cosine_with_min_lr; its plain cosine when min_lr_ratio is 0).
  std::string lr_scheduler_type = "cosine";
};

void bind(config::Schema& schema, OptimizerSection& optim);  // keys optim.*

// AdamW over the trainable parameters: matrices decay; norms, biases and embeddings do not.
std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerSection& optim);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Learning rate of optimizer update `step` (0-based) of `total_steps`, as Hugging Face Trainer
// steps transformers' get_scheduler once per update, but for the warm-up, one update ahead of
// theirs: update k < warmup_steps trains at (k + 1) / warmup_steps of the peak (theirs at
// k / warmup_steps); then linear falls to 0 at total_steps, cosine to
// learning_rate * min_lr_ratio, and constant stays at the peak.
double learning_rate_at(const OptimizerSection& optim, int step, int total_steps);

// Throws corl::RecipeError for a schedule that cannot run as given, naming the key.
void check_schedule(const OptimizerSection& optim);

// AdamW's moments follow the parameters to `device` (restored state may sit elsewhere).
void move_optimizer_state(torch::optim::Optimizer& optimizer, torch::Device device);

}  // namespace corl::train
