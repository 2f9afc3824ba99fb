// The supervised warm start of the base model: a mixture of text -> image (image-token loss),
// image -> caption and image + question -> <think>...</think><answer>...</answer>.
#pragma once

#include <string>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/model/config.h"
#include "corl/model/training.h"
#include "corl/train/evaluate.h"
#include "corl/train/optimizer.h"
#include "corl/util/run_dir.h"

namespace corl::train {

struct PretrainRecipe {
  config::RunSection run{"pretrain"};
  struct Data {
    std::string train = "runs/data/train.jsonl";
    std::string eval = "runs/data/eval.jsonl";
    bool skip_bad_rows = false;
  } data;
  std::string tokenizer = "runs/tokenizer";  // folder with text.model and vq.safetensors
  model::ModelConfig model;
  model::TrainingSection training;  // model.freeze, model.gradient_checkpointing
  OptimizerSection optim;
  struct Train {
    int steps = 1000;
    int t2i_batch = 40;     // text -> image sequences per micro-batch
    int caption_batch = 2;  // image -> caption sequences per micro-batch
    // What a caption sequence teaches: "prompt" (the row's text -> image prompt) or "scene"
    // (every object's colour, shape and quarter of the image, from the row's scene).
    std::string caption_text = "prompt";
    int qa_batch = 8;  // image + question -> solution sequences per micro-batch
    double image_loss_weight = 1.0;
    // Share of text -> image rows whose prompt is padded away, so the model also learns the
    // unconditional distribution that classifier-free guidance subtracts (Janus drops 10%).
    double uncond_prob = 0.1;
    int checkpoint_every = 250;
    int log_every = 25;
  } train;
  EvalSection eval;
};

void bind(config::Schema& schema, PretrainRecipe& recipe);
void validate(const PretrainRecipe& recipe);

// Trains (or, with `resume`, goes on from the run's latest checkpoint) and writes RUN/final.
void pretrain(const PretrainRecipe& recipe, util::RunDir& run, bool resume);

}  // namespace corl::train
