#include "corl/train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "corl/util/error.h"  // defines: RecipeError

namespace corl::train {

void bind(config::Schema& s, OptimizerSection& o) {
  s.add("optim.learning_rate", &o.learning_rate, "Peak AdamW learning rate").range(0.0, 1.0);
  s.add("optim.lr_scheduler_type", &o.lr_scheduler_type,
        "Learning-rate schedule over the optimizer updates, Hugging Face Trainer's: linear "
        "(warm-up, then down to 0 at the last update), cosine (warm-up, then a half cosine down to "
        "learning_rate x min_lr_ratio), constant (learning_rate throughout, no warm-up)")
      .choices({"linear", "cosine", "constant"});
  s.add("optim.warmup_steps", &o.warmup_steps,
        "Optimizer updates of linear warm-up: update k trains at (k + 1) / warmup_steps of the "
        "peak, one update ahead of Hugging Face's, whose first trains at 0")
      .range(0, 10000000);
  s.add("optim.min_lr_ratio", &o.min_lr_ratio,
        "cosine only: the decay ends at learning_rate x this (0: transformers' cosine; above 0: "
        "its cosine_with_min_lr, min_lr_rate)")
      .range(0.0, 1.0);
  s.add("optim.weight_decay", &o.weight_decay, "AdamW weight decay of matrices").range(0.0, 1.0);
  s.add("optim.adam_beta1", &o.adam_beta1, "AdamW beta1").range(0.0, 0.9999);
  s.add("optim.adam_beta2", &o.adam_beta2, "AdamW beta2").range(0.0, 0.99999);
  s.add("optim.max_grad_norm", &o.max_grad_norm, "Gradient clipping norm (0: none)")
      .range(0.0, 1e6);
  s.add("optim.gradient_accumulation_steps", &o.gradient_accumulation_steps,
        "Micro-batches per optimizer step")
      .range(1, 4096);
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerSection& o) {
  std::vector<torch::Tensor> decay;
  std::vector<torch::Tensor> no_decay;
  for (const auto& p : model.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    // Decay pulls a weight towards zero; that regularises a matrix, but a norm's scale, a bias or
    // an embedding row would only be dragged off the value it needs.
    const bool embedding = p.key().find("embed") != std::string::npos;
    (p.value().dim() >= 2 && !embedding ? decay : no_decay).push_back(p.value());
  }
  auto adamw = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(o.learning_rate)
                                                            .betas({o.adam_beta1, o.adam_beta2})
                                                            .weight_decay(wd));
  };
  return std::make_unique<torch::optim::AdamW>(
      std::vector<torch::optim::OptimizerParamGroup>{
          torch::optim::OptimizerParamGroup(decay, adamw(o.weight_decay)),
          torch::optim::OptimizerParamGroup(no_decay, adamw(0.0))},
      torch::optim::AdamWOptions(o.learning_rate));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }
}

double learning_rate_at(const OptimizerSection& o, int step, int total_steps) {
  // transformers' lr lambdas (optimization.py): a factor of the peak, one per update.
  if (o.lr_scheduler_type == "constant") return o.learning_rate;
  // The warm-up is Hugging Face's one update ahead: its first update trains at rate 0, which
  // moves AdamW's moments but not the weights; here the first trains at 1 / warmup_steps.
  if (step < o.warmup_steps) {
    return o.learning_rate * (static_cast<double>(step + 1) / o.warmup_steps);
  }
  const double remaining = std::max(1, total_steps - o.warmup_steps);
  if (o.lr_scheduler_type == "linear") {
    return o.learning_rate * std::max(0.0, (total_steps - step) / remaining);
  }
  // Past the last update the cosine stays at its floor, where transformers' would rise again.
  const double progress = std::min(1.0, (step - o.warmup_steps) / remaining);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return o.learning_rate * (cosine * (1.0 - o.min_lr_ratio) + o.min_lr_ratio);
}

void check_schedule(const OptimizerSection& o) {
  if (o.lr_scheduler_type == "constant" && o.warmup_steps > 0) {
    throw RecipeError("optim.warmup_steps: " + std::to_string(o.warmup_steps) +
                      " with optim.lr_scheduler_type constant, which has no warm-up (Hugging "
                      "Face's ignores it); for a warm-up then a constant rate use cosine with "
                      "optim.min_lr_ratio 1");
  }
}

void move_optimizer_state(torch::optim::Optimizer& optimizer, torch::Device device) {
  for (auto& [key, state] : optimizer.state()) {
    auto* s = dynamic_cast<torch::optim::AdamWParamState*>(state.get());
    if (s == nullptr) continue;  // make_optimizer builds AdamW only
    s->exp_avg(s->exp_avg().to(device));
    s->exp_avg_sq(s->exp_avg_sq().to(device));
    if (s->max_exp_avg_sq().defined()) s->max_exp_avg_sq(s->max_exp_avg_sq().to(device));
  }
}

}  // namespace corl::train
