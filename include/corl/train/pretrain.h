// The supervised warm start of the base model: a mixture of text -> image (image-token loss),
// image -> caption and image + question -> <think>...</think><answer>...</answer>.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/model/config.h"
#include "corl/train/evaluate.h"
#include "corl/util/run_dir.h"

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

struct PretrainRecipe {
  config::RunSection run{"pretrain"};
  struct Data {
    std::string train = "runs/data/train.jsonl";
    std::string eval = "runs/data/eval.jsonl";
    bool skip_bad_rows = false;
  } data;
  std::string tokenizer = "runs/tokenizer";  // folder with text.model and vq.safetensors
  model::ModelConfig model;
  OptimizerSection optim;
  struct Train {
    int steps = 1000;
    int t2i_batch = 40;     // text -> image sequences per micro-batch
    int caption_batch = 2;  // image -> caption sequences per micro-batch
    // What a caption sequence teaches: "prompt" (the row's text -> image prompt) or "scene"
    // (every object's colour, shape and quarter of the image, from the row's scene).
    std::string caption_text = "prompt";
    int qa_batch = 8;       // image + question -> solution sequences per micro-batch
    double image_loss_weight = 1.0;
    // Share of text -> image rows whose prompt is padded away, so the model also learns the
    // unconditional distribution that classifier-free guidance subtracts (Janus drops 10%).
    double uncond_prob = 0.1;
    int checkpoint_every = 250;
    int log_every = 25;
  } train;
  EvalSection eval;
};

void bind(config::Schema& schema, OptimizerSection& optim);  // keys optim.*
void bind(config::Schema& schema, EvalSection& eval);        // keys eval.*
void bind(config::Schema& schema, PretrainRecipe& recipe);
void validate(const PretrainRecipe& recipe);

// Trains (or, with `resume`, goes on from the run's latest checkpoint) and writes RUN/final.
void pretrain(const PretrainRecipe& recipe, util::RunDir& run, bool resume);

// AdamW over the trainable parameters: matrices decay; norms, biases and embeddings do not.
std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    const OptimizerSection& optim);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// Learning rate at `step` (0-based): linear warm-up, then cosine decay to min_lr_ratio.
double learning_rate_at(const OptimizerSection& optim, int step, int total_steps);

}  // namespace corl::train
