// `corl train --dump-batch DIR`: the first step of a run, written for checks outside the program.
//
//   DIR/batch.json        (one process) the recipe's GRPO settings, rewards by name and per
//                         task, advantages, kept groups, and each micro-batch's rollouts,
//                         log-probs, old and reference log-probs, masks, advantages and losses
//                         (tests/grpo_dump_check.py recomputes the losses from it)
//   DIR/grad.safetensors  (rank 0, any number of ranks) the step's gradient summed over ranks,
//                         before clipping and the optimizer (tests/dp_compare.py)
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "corl/grpo/batch.h"
#include "corl/grpo/recipe.h"

namespace corl::grpo {

// A tensor as nested JSON lists of numbers (a number for a scalar).
nlohmann::json tensor_json(const torch::Tensor& t);

// `micro_batches` is what accumulate_gradients recorded.
void write_batch_dump(const std::string& dir, const GrpoRecipe& recipe, const StepBatch& batch,
                      const nlohmann::json& micro_batches);

// The parameters' .grad by parameter name (a parameter without one is left out).
void write_gradient_dump(const std::string& dir, const torch::nn::Module& model);

}  // namespace corl::grpo
