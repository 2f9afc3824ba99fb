// The supervised warm start of the base model: a mixture of text -> image (image-token loss),
// image -> caption and image + question -> <think>...</think><answer>...</answer>.
#pragma once

#include <string>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/model/config.h"
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
    int t2i_batch = 16;     // text -> image sequences per micro-batch
    int caption_batch = 4;  // image -> caption sequences per micro-batch
    int qa_batch = 12;      // image + question -> solution sequences per micro-batch
    double image_loss_weight = 1.0;
    int checkpoint_every = 250;
    int log_every = 25;
  } train;
  struct Eval {
    int prompts = 300;    // held-out prompts judged at the end
    int questions = 300;  // held-out questions answered at the end
    double cfg_weight = 3.0;
    double temperature = 1.0;
    int max_new_tokens = 96;
    int batch_size = 50;
  } eval;
};

void bind(config::Schema& schema, PretrainRecipe& recipe);
void validate(const PretrainRecipe& recipe);

// Trains (or, with `resume`, goes on from the run's latest checkpoint) and writes RUN/final.
void pretrain(const PretrainRecipe& recipe, util::RunDir& run, bool resume);

// Learning rate at `step` (0-based): linear warm-up, then cosine decay to min_lr_ratio.
double learning_rate_at(const OptimizerSection& optim, int step, int total_steps);

}  // namespace corl::train
