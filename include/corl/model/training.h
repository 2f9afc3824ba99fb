// How a trainer treats the unified model, beyond its architecture (keys model.freeze and
// model.gradient_checkpointing, shared by pretraining and the GRPO stages): which parts stay
// frozen, and whether the decoder layers recompute their activations in the backward pass.
// Neither is saved with the model; a recipe says it for each run.
#pragma once

#include <string>
#include <vector>

#include "corl/config/schema.h"
#include "corl/model/ulm.h"

namespace corl::model {

struct TrainingSection {
  bool gradient_checkpointing = false;
  // Parts that get no gradient and no optimizer state (the VQ tokenizer is never trained):
  // vision_model, aligner, gen_embed, gen_aligner, gen_head. ULM-R1 trains the language model
  // alone: all five.
  std::vector<std::string> freeze;
};
void bind(config::Schema& schema, TrainingSection& training);  // keys model.freeze, ...

// The parts model.freeze may name, in the model's own (Janus') module names.
const std::vector<std::string>& freezable_parts();

// Turns the named parts' parameters to requires_grad(false) and sets the decoder's activation
// checkpointing. Returns the number of parameter values left to train.
int64_t apply_training(UnifiedModel& model, const TrainingSection& training);

}  // namespace corl::model
