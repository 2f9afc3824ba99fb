// The optimizer every trainer uses (pretraining and the GRPO stages alike): AdamW with decoupled
// weight decay on the matrices only, and its learning-rate schedule, a linear warm-up followed by
// a cosine decay to a floor.
#pragma once

#include <torch/torch.h>

#include <memory>

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
};

void bind(config::Schema& schema, OptimizerSection& optim);  // keys optim.*

// AdamW over the trainable parameters: matrices decay; norms, biases and embeddings do not.
std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerSection& optim);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Learning rate at `step` (0-based): linear warm-up, then cosine decay to min_lr_ratio.
double learning_rate_at(const OptimizerSection& optim, int step, int total_steps);

// AdamW's moments follow the parameters to `device` (restored state may sit elsewhere).
void move_optimizer_state(torch::optim::Optimizer& optimizer, torch::Device device);

}  // namespace corl::train
