// A GRPO stage, start to finish: the unified stage (`corl train`) and the refined stages
// (`corl refine`) differ only in their recipes. Each step (a generation batch; max_steps /
// num_iterations of them, rounded up), in src/grpo/stage.cpp's loop:
//
//   1. batch    (grpo/batch.h) groups_per_rank rows per rank, drawn without replacement
//               (grpo/sampler.h) as unified samples, G images
//               (CFG) and G answers for each, their rewards, group advantages (grpo/advantages.h)
//               and the old and reference log-probs: all before any update;
//   2. metrics  (grpo/metrics.h) of the whole step's batch, gathered over ranks;
//   3. for each of num_iterations policy updates (the last step: the updates left): accumulate the gradient of
//               loss_t2i + mm2t_loss_weight x loss_mm2t over the micro-batches (grpo/update.h,
//               divided as loss_type divides the whole step: grpo/loss.h), sum it over ranks,
//               clip, optimizer step at the learning rate of that update (the schedule
//               advances per update, over max_steps);
//   4. log metrics, checkpoint.
//
// One process is a world of one: the same code runs on one rank or many (dist/data_parallel.h).
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
  std::string dump_batch;  // folder for the first step's batch and gradient (grpo/dump.h)
  // Data parallel when world_size > 1 (dist/data_parallel.h): this process rolls out and trains
  // on its share of each step's global batch; rank 0 alone writes the run folder.
  dist::RankEnv ranks;
};

// Trains from recipe.init, writes RUN/final and logs its held-out figures to metrics.jsonl.
void run_stage(const GrpoRecipe& recipe, util::RunDir& run, const StageOptions& options);

}  // namespace corl::grpo
