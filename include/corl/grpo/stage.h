// A GRPO stage, start to finish: the unified stage (`corl train`) and the refined stages
// (`corl refine`) differ only in their recipes.
//
// Each step, from the step's own seed:
//   1. draws per_device_train_batch_size unified samples (prompt c, image I, question q);
//   2. rolls out G images for c (with CFG) and G answers for (I, q);
//   3. scores them with the recipe's rewards and turns the rewards into group advantages
//      (unified: r = r_t2i + lambda r_mm2t shared by image i and answer i, or A_t2i + lambda
//      A_mm2t);
//   4. makes num_iterations policy updates of the clipped objective (+ beta k3 KL), loss =
//      loss_t2i + mm2t_loss_weight x loss_mm2t, over gradient_accumulation_steps micro-batches.
// Everything random in a step follows from (seed, step), so a run resumed from a checkpoint
// reaches the same weights as one that never stopped.
#pragma once

#include <string>

#include "corl/dist/process_group.h"
#include "corl/grpo/recipe.h"
#include "corl/util/run_dir.h"

namespace corl::grpo {

struct StageOptions {
  bool resume = false;     // go on from the run folder's latest checkpoint
  std::string dump_batch;  // folder to write the first step's batch to (JSON), when not empty
  // Data parallel when world_size > 1 (dist/data_parallel.h): this process rolls out and trains
  // on its share of each step's global batch; rank 0 alone writes the run folder.
  dist::RankEnv ranks;
};

// Trains from recipe.init and writes RUN/final; returns its held-out figures as JSON.
void run_stage(const GrpoRecipe& recipe, util::RunDir& run, const StageOptions& options);

}  // namespace corl::grpo
