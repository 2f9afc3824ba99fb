#include "corl/model/training.h"

namespace corl::model {

const std::vector<std::string>& freezable_parts() {
  static const std::vector<std::string> parts = {"vision_model", "aligner", "gen_embed",
                                                 "gen_aligner", "gen_head"};
  return parts;
}

void bind(config::Schema& s, TrainingSection& t) {
  s.add("model.gradient_checkpointing", &t.gradient_checkpointing,
        "Activation checkpointing of the decoder layers: each keeps only its input during the "
        "forward pass and recomputes the rest in the backward pass (same gradients, about one "
        "more forward pass of compute, far less activation memory)");
  s.add("model.freeze", &t.freeze,
        "Parts of the unified model that are not trained: no gradient, no optimizer state (the VQ "
        "tokenizer never is). ULM-R1 freezes all five and trains the language model alone")
      .choices(freezable_parts());
}

int64_t apply_training(UnifiedModel& model, const TrainingSection& t) {
  for (const auto& part : t.freeze) {
    torch::nn::Module* module = nullptr;
    if (part == "vision_model") module = model->vision_model.get();
    if (part == "aligner") module = model->aligner.get();
    if (part == "gen_embed") module = model->gen_embed.get();
    if (part == "gen_aligner") module = model->gen_aligner.get();
    if (part == "gen_head") module = model->gen_head.get();
    if (module == nullptr) continue;  // the schema's choices admit only the five
    for (auto& p : module->parameters()) p.set_requires_grad(false);
  }
  model->language_model->model->gradient_checkpointing = t.gradient_checkpointing;
  int64_t trained = 0;
  for (const auto& p : model->parameters()) {
    if (p.requires_grad()) trained += p.numel();
  }
  return trained;
}

}  // namespace corl::model
