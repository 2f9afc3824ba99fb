#include "corl/grpo/stage.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "corl/dist/process_group.h"
#include "corl/dist/zero.h"     // defines: ShardedAdamW
#include "corl/grpo/batch.h"    // defines: make_step_batch, StageInputs
#include "corl/grpo/dump.h"     // defines: write_batch_dump, write_gradient_dump
#include "corl/grpo/metrics.h"  // defines: batch_metrics
#include "corl/grpo/sampler.h"  // defines: batches_per_epoch
#include "corl/grpo/update.h"   // defines: accumulate_gradients
#include "corl/model/autocast.h"
#include "corl/train/checkpoint.h"
#include "corl/train/evaluate.h"
#include "corl/train/optimizer.h"  // defines: make_optimizer, learning_rate_at, set_learning_rate
#include "corl/util/error.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"

namespace corl::grpo {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class Stage {
 public:
  Stage(const GrpoRecipe& recipe, util::RunDir& run, const StageOptions& options)
      : recipe_(recipe), run_(run), options_(options) {}

  void run();

 private:
  void start();
  // Counts a step whose rewards, loss or gradient were not finite; stops the run after
  // grpo.max_bad_steps of them in a row.
  void account(int step, bool finite, int updates, nlohmann::json& metrics);
  void save(const std::string& dir, int step, bool with_optimizer);
  // Every rank's shard of a checkpoint's optimizer.pt.
  void load_sharded_state(const std::string& checkpoint, torch::Device device);
  void evaluate();
  // Optimizer updates of generation batch `step`: updates_per_generation, or the fewer left at
  // the end.
  int updates_at(int step) const;

  const GrpoRecipe& recipe_;
  util::RunDir& run_;
  StageOptions options_;
  std::unique_ptr<dist::ProcessGroup> group_;  // a world of one without a launcher
  StageInputs in_;
  // The unsharded AdamW: it steps the policy when dist.zero_stage is 0; under ZeRO it keeps no
  // state between checkpoints and is the layout optimizer.pt is written and read in.
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<dist::ShardedAdamW> sharded_;  // dist.zero_stage 1 or 2
  train::CheckpointSources sources_;
  int updates_ = 0;  // optimizer updates of the whole stage (total_updates)
  int start_step_ = 0;
  int bad_in_row_ = 0;
  int bad_total_ = 0;
};

void Stage::start() {
  const auto& ranks = options_.ranks;
  const int gpus = recipe_.device == "cuda" && torch::cuda::is_available()
                       ? static_cast<int>(torch::cuda::device_count())
                       : 0;
  const torch::Device device = policy_device(recipe_, ranks.local_rank, gpus);
  if (ranks.world_size > 1) {
    const auto backend = dist::resolve_backend(recipe_.dist.backend, device.is_cuda());
    if (backend == "nccl" && !device.is_cuda()) {
      throw UsageError(
          "dist.backend nccl: NCCL moves GPU tensors but the policy is on the CPU; "
          "use gloo (or auto)");
    }
    group_ = std::make_unique<dist::ProcessGroup>(ranks, backend,
                                                  std::chrono::seconds(recipe_.dist.timeout_s));
    log::info(recipe_.run.name + ": " + std::to_string(group_->world_size()) + " ranks over " +
              backend + ", a global batch of " +
              std::to_string(groups_per_rank(recipe_) * group_->world_size()) +
              " groups per generation batch");
  } else {
    group_ = std::make_unique<dist::ProcessGroup>();
  }

  check_generation_batch(recipe_, group_->world_size());
  log::info(recipe_.run.name + ": starting policy " + start_from(recipe_) + " on " + device.str());
  if (recipe_.autocast == "bf16" && device.is_cpu() && !model::cpu_has_bf16_products()) {
    log::warn(recipe_.run.name +
              ": run.autocast bf16 on a CPU without bfloat16 products (AVX512-BF16, AMX): "
              "emulated, slower than run.autocast none");
  }
  in_ = load_stage_inputs(recipe_, device);
  updates_ = total_updates(recipe_, in_.rows.size(), group_->world_size());
  sources_ = train::checkpoint_sources(in_.policy);
  const int64_t trained = model::apply_training(in_.policy.model, recipe_.training);
  log::info(recipe_.run.name + ": training " + std::to_string(trained) + " parameter values" +
            (recipe_.training.gradient_checkpointing ? ", decoder layers checkpointed" : ""));
  optimizer_ = train::make_optimizer(*in_.policy.model, recipe_.optim);
  const bool zero = recipe_.dist.zero_stage > 0;
  if (!options_.dump_batch.empty() &&
      steps_per_generation_of(recipe_) != recipe_.optim.gradient_accumulation_steps) {
    throw UsageError(
        "--dump-batch records a generation batch trained in one update per pass; with "
        "grpo.steps_per_generation above optim.gradient_accumulation_steps a batch takes several, "
        "so leave steps_per_generation -1 for the dump");
  }
  if (zero && !options_.dump_batch.empty() && recipe_.dist.zero_stage == 2) {
    throw UsageError(
        "--dump-batch writes the whole summed gradient, which dist.zero_stage 2 never holds; "
        "use zero_stage 0 or 1 for the dump");
  }
  std::optional<train::ResumePoint> point;
  if (options_.resume) {
    point = train::resume_latest(run_, *in_.policy.model, *optimizer_,
                                 /*with_optimizer_state=*/!zero);
    if (point) {
      start_step_ = point->step;
      bad_in_row_ = point->trainer.value("bad_steps_in_row", 0);
      bad_total_ = point->trainer.value("bad_steps", 0);
      log::info(recipe_.run.name + ": resuming from " + point->checkpoint + " at step " +
                std::to_string(start_step_));
    } else {
      log::warn(recipe_.run.name + ": --resume given but " + run_.path() +
                " has no checkpoint; starting anew");
    }
  }
  // Every rank read the same files; rank 0's weights are made everyone's all the same, so that a
  // node with a stale copy of the starting checkpoint cannot make the ranks drift apart.
  torch::NoGradGuard no_grad;
  for (auto& p : in_.policy.model->parameters()) group_->broadcast(p, 0);
  if (zero) {
    sharded_ = std::make_unique<dist::ShardedAdamW>(
        *group_, *optimizer_, recipe_.dist.zero_stage,
        static_cast<int64_t>(recipe_.dist.bucket_mb * (1 << 20)));
    if (point) load_sharded_state(point->checkpoint, device);
    log::info(recipe_.run.name + ": ZeRO stage " + std::to_string(recipe_.dist.zero_stage) +
              ", this rank holds AdamW state of " + std::to_string(sharded_->shard_numel()) +
              " parameter values");
  }
}

void Stage::load_sharded_state(const std::string& checkpoint, torch::Device device) {
  // The file holds the whole state (58.7 GB of moments at Janus-Pro-7B); a node's ranks read it
  // in turn, by LOCAL_RANK, so that one copy at a time sits in the node's host memory.
  auto turns = torch::tensor({static_cast<int64_t>(options_.ranks.local_rank)}).to(device);
  group_->all_reduce_max(turns);
  const int64_t count = turns.cpu().item<int64_t>() + 1;
  for (int64_t turn = 0; turn < count; ++turn) {
    if (turn == options_.ranks.local_rank) {
      train::load_optimizer(checkpoint, *optimizer_);
      sharded_->scatter_state();
      optimizer_->state().clear();
    }
    group_->barrier();
  }
}

void Stage::run() {
  start();
  const auto& g = recipe_.grpo;
  const auto& o = recipe_.optim;
  auto& model = in_.policy.model;
  const auto parameters = model->parameters();
  // A step is a generation batch (TRL's generation, the data position of a checkpoint) with its
  // k x num_iterations optimizer updates (k = steps_per_generation / gradient_accumulation_steps);
  // max_steps counts the updates.
  const int steps = generation_batches(recipe_, updates_);
  const int windows = updates_per_pass(recipe_);
  const int per_generation = updates_per_generation(recipe_);
  const int64_t per_epoch = batches_per_epoch(
      in_.rows.size(), static_cast<int64_t>(groups_per_rank(recipe_)) * group_->world_size());
  log::info(recipe_.run.name + ": " + std::to_string(in_.rows.size()) + " training rows, " +
            std::to_string(updates_) + " optimizer updates: " + std::to_string(steps) +
            " generation batches of " + std::to_string(groups_per_rank(recipe_)) + " groups x " +
            std::to_string(g.num_generations) + (group_->world_size() > 1 ? " a rank" : "") +
            ", each trained on " + std::to_string(g.num_iterations) + " time(s) in " +
            std::to_string(windows) + " update(s) of " +
            std::to_string(o.gradient_accumulation_steps) + " micro-steps (" + recipe_.task +
            "); an epoch is " + std::to_string(per_epoch) + " generation batches");

  const model::Autocast autocast(recipe_.autocast == "bf16",
                                 recipe_.device == "cuda" ? at::kCUDA : at::kCPU);
  std::optional<util::Progress> progress;
  if (run_.writer()) progress.emplace(recipe_.run.name, steps - start_step_, "steps");
  for (int step = start_step_; step < steps; ++step) {
    // 1. The step's whole batch: rollouts, rewards, advantages, old and reference log-probs.
    const StepBatch batch = make_step_batch(in_, recipe_, step, *group_);
    nlohmann::json metrics = batch_metrics(batch, recipe_, *group_);
    metrics["step"] = step + 1;
    metrics["epoch"] = static_cast<double>(step + 1) / static_cast<double>(per_epoch);
    const bool dumping = !options_.dump_batch.empty() && step == start_step_;
    nlohmann::json micro_dump = nlohmann::json::array();

    // 2. Its policy updates, mu passes of k each, TRL's order (update j trains on window
    // j mod k): accumulate -> all-reduce -> clip -> optimizer step.
    const auto updating = Clock::now();
    bool finite = batch.rewards_finite;
    int updates = 0;
    for (int iteration = 0; finite && batch.kept_groups > 0 && iteration < updates_at(step);
         ++iteration) {
      const size_t window = static_cast<size_t>(iteration % windows);
      // Fewer kept groups than updates in a pass leave some without any: no update.
      if (batch.windows[window].first == batch.windows[window].second) continue;
      const bool first = updates == 0;
      optimizer_->zero_grad();
      const UpdateResult update =
          accumulate_gradients(in_, recipe_, batch, window, first, *group_,
                               dumping && first ? &micro_dump : nullptr);
      double grad_norm = std::numeric_limits<double>::quiet_NaN();
      if (update.finite && sharded_) {
        grad_norm = sharded_->reduce_gradients(o.max_grad_norm);
        if (dumping && first && run_.writer()) write_gradient_dump(options_.dump_batch, *model);
      } else if (update.finite) {
        // The sum of the ranks' gradients is the gradient of the step's loss.
        dist::all_reduce_gradients(*group_, parameters,
                                   static_cast<int64_t>(recipe_.dist.bucket_mb * (1 << 20)));
        if (dumping && first && run_.writer()) write_gradient_dump(options_.dump_batch, *model);
        grad_norm = clip_gradients(parameters, o.max_grad_norm);
      }
      finite = update.finite && std::isfinite(grad_norm);
      if (!finite) {
        optimizer_->zero_grad();
        break;
      }
      // The schedule advances per optimizer update, over max_steps of them (TRL).
      const double lr = train::learning_rate_at(o, step * per_generation + iteration, updates_);
      if (sharded_) {
        sharded_->step(lr);
      } else {
        train::set_learning_rate(*optimizer_, lr);
        optimizer_->step();
      }
      autocast.refresh();  // the next rollouts and updates read the new weights
      ++updates;
      if (recipe_.dist.check_weights && group_->world_size() > 1) {
        const auto named = model->named_parameters();
        const int64_t differs = dist::first_differing_parameter(*group_, named.values());
        if (differs >= 0) {
          throw DataError("dist: after step " + std::to_string(step + 1) + ", rank " +
                          std::to_string(group_->rank()) + "'s weights differ from rank 0's " +
                          "(first: " + named.keys()[differs] + ")");
        }
      }
      if (first) {
        metrics.update(update.stats);
        metrics["grad_norm"] = grad_norm;
        metrics["lr"] = lr;
      } else if (iteration + 1 == updates_at(step)) {
        // GSPO's ratio is 1 at the first update by construction: its spread is the last one's.
        for (const char* name : {"sequence_ratio_t2i", "sequence_ratio_mm2t"}) {
          if (update.stats.contains(name)) metrics[name] = update.stats.at(name);
        }
      }
    }

    // 3. Log and checkpoint.
    account(step, finite, updates, metrics);
    metrics["time_rollout"] = batch.rollout_seconds;
    metrics["time_reward"] = batch.score_seconds;
    if (!in_.remote_rewards.empty()) metrics["time_reward_wait"] = batch.remote_wait_seconds;
    metrics["time_update"] = seconds_since(updating);
    run_.metric(metrics);
    if (dumping && run_.writer() && group_->world_size() == 1) {
      write_batch_dump(options_.dump_batch, recipe_, batch, micro_dump);
    }
    if (progress) progress->advance();
    const int done = step + 1;
    if (recipe_.train.checkpoint_every > 0 && done % recipe_.train.checkpoint_every == 0 &&
        done < steps) {
      if (sharded_) sharded_->gather_state();  // every rank takes part; rank 0 holds the result
      if (run_.writer()) save(train::step_checkpoint(run_.path(), done), done, true);
      if (sharded_) optimizer_->state().clear();
    }
  }
  if (!run_.writer()) return;  // rank 0 writes the model and judges it for every rank
  progress->finish();
  save(run_.path() + "/final", steps, false);
  evaluate();
}

int Stage::updates_at(int step) const {
  const int per_generation = updates_per_generation(recipe_);
  return std::min(per_generation, updates_ - step * per_generation);
}

void Stage::account(int step, bool finite, int updates, nlohmann::json& metrics) {
  const int planned = updates_at(step);
  metrics["updates"] = updates;
  if (finite) {
    bad_in_row_ = 0;
  } else {
    ++bad_total_;
    ++bad_in_row_;
    metrics["skipped_updates"] = planned - updates;
    const std::string what =
        updates == 0 ? "non-finite reward, loss or gradient; step skipped, no update applied"
                     : "update " + std::to_string(updates + 1) + " of " + std::to_string(planned) +
                           " had a non-finite loss or gradient; " + std::to_string(updates) +
                           " applied, the rest skipped";
    log::warn(recipe_.run.name + ": step " + std::to_string(step + 1) + ": " + what + " (" +
              std::to_string(bad_in_row_) + " bad steps in a row)");
  }
  metrics["bad_steps"] = bad_total_;
  if (bad_in_row_ >= recipe_.grpo.max_bad_steps) {
    throw DataError(recipe_.run.name + ": " + std::to_string(bad_in_row_) +
                    " non-finite steps in a row (grpo.max_bad_steps); stopping. The last good "
                    "checkpoint in " +
                    run_.path() + "/checkpoints is intact");
  }
}

void Stage::save(const std::string& dir, int step, bool with_optimizer) {
  const nlohmann::json trainer = {{"step", step},
                                  {"stage", recipe_.run.name},
                                  {"task", recipe_.task},
                                  {"init", recipe_.init},
                                  // The rows and the rollout generator of step s follow from (seed,
                                  // s): the data position and the random state are the step itself.
                                  {"seed", recipe_.run.seed},
                                  {"data_position", step},
                                  {"bad_steps_in_row", bad_in_row_},
                                  {"bad_steps", bad_total_}};
  train::save_checkpoint(dir, in_.policy.model, sources_, trainer,
                         with_optimizer ? optimizer_.get() : nullptr);
}

// Held-out figures of the trained policy.
void Stage::evaluate() {
  if (recipe_.eval.prompts == 0 && recipe_.eval.questions == 0) return;
  data::ReadOptions read;
  read.resolution = in_.policy.model->config.image_size;
  read.skip_bad_rows = recipe_.data.skip_bad_rows;
  const auto eval_rows = data::read_dataset(recipe_.data.eval, read);
  const auto scores = train::evaluate_tasks(in_.policy.model, *in_.builder, in_.policy.vq,
                                            eval_rows.records, recipe_.eval, recipe_.run.seed);
  run_.metric({{"step", generation_batches(recipe_, updates_)},
               {"geneval", scores.geneval},
               {"geneval_categories", scores.categories},
               {"answer_accuracy", scores.answer_accuracy},
               {"format_rate", scores.format_rate},
               {"prompts", scores.prompts},
               {"questions", scores.questions}});
  char line[256];
  std::snprintf(line, sizeof line,
                "held-out geneval %.3f (n = %d), answer accuracy %.3f, well-formed %.3f (n = %d)",
                scores.geneval, scores.prompts, scores.answer_accuracy, scores.format_rate,
                scores.questions);
  log::info(recipe_.run.name + ": " + line + "; wrote " + run_.path() + "/final");
}

}  // namespace

void run_stage(const GrpoRecipe& recipe, util::RunDir& run, const StageOptions& options) {
  Stage(recipe, run, options).run();
}

}  // namespace corl::grpo
