// corl train / refine / merge: the reinforcement-learning stages and the merge of refined models.
#include <cstdlib>
#include <filesystem>

#include "commands/commands.h"
#include "corl/dist/launch.h"
#include "corl/dist/process_group.h"
#include "corl/grpo/stage.h"
#include "corl/train/checkpoint.h"
#include "corl/train/merge.h"
#include "corl/util/error.h"
#include "corl/util/log.h"
#include "corl/util/run_dir.h"
#include "corl/util/threads.h"

namespace corl::tools {

namespace {

struct StageArguments {
  RecipeOptions recipe;
  std::string init;
  std::string dump_batch;
  bool resume = false;
  int nproc = 0;
};

void add_stage_options(CLI::App& command, StageArguments& args) {
  add_recipe_options(command, args.recipe);
  command.add_option("--init", args.init,
                     "Checkpoint or run folder to start from (overrides the recipe's init)");
  command.add_flag("--resume", args.resume, "Go on from the run folder's latest checkpoint");
  command.add_option("--dump-batch", args.dump_batch,
                     "Write the first step's rewards, advantages, log-probs, masks and loss to "
                     "DIR/batch.json");
  command
      .add_option("--nproc", args.nproc,
                  "Data parallel over N local ranks: starts N copies of this command as "
                  "torchrun would (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each with "
                  "per_device_train_batch_size completions per micro-step")
      ->check(CLI::Range(1, 4096));
}

void run(const StageArguments& args, std::vector<std::string> forced) {
  if (args.nproc > 0 && std::getenv(dist::kLaunchedVariable) == nullptr) {
    const int status = dist::launch_local(args.nproc, dist::without_nproc(program_arguments()));
    if (status != 0) {
      log::flush();
      std::exit(status);
    }
    return;
  }
  const auto ranks = dist::rank_env();
  if (ranks.rank != 0) log::warnings_only();
  grpo::GrpoRecipe recipe;
  config::Schema schema;
  auto overrides = args.recipe.overrides;
  if (!args.init.empty()) overrides.push_back("init=" + args.init);
  for (auto& f : forced) overrides.push_back(std::move(f));
  config::load_recipe(args.recipe.config, overrides, recipe, schema);
  set_thread_count(recipe.run.threads);
  auto run_dir = train::open_training_run(util::run_path(args.recipe.out, recipe.run.name),
                                          schema.resolved_yaml(), /*writer=*/ranks.rank == 0,
                                          args.resume);
  grpo::run_stage(recipe, run_dir, {args.resume, args.dump_batch, ranks});
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<StageArguments>();
  CLI::App* command = app.add_subcommand(
      "train", "Unified stage: GRPO on text->image and image->text at once (CoRL stage 1)");
  add_stage_options(*command, *args);
  command->callback([args] { run(*args, {}); });
}

void add_refine_command(CLI::App& app) {
  auto args = std::make_shared<StageArguments>();
  auto task = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand(
      "refine", "Refined stage: GRPO on one task, t2i, mcq or oe (CoRL stage 2)");
  command->add_option("--task", *task, "t2i (images), mcq or oe (answers of that type)")
      ->required()
      ->check(CLI::IsMember({"t2i", "mcq", "oe"}));
  add_stage_options(*command, *args);
  command->callback([args, task] {
    StageArguments a = *args;
    if (a.recipe.config.empty()) {
      a.recipe.config = "configs/refine_" + *task + ".yaml";
      if (!std::filesystem::exists(a.recipe.config)) {
        throw UsageError("refine: no --config given and " + a.recipe.config + " does not exist");
      }
    }
    // --task decides what the stage trains, whatever the recipe says.
    std::vector<std::string> forced;
    if (*task == "t2i") {
      forced = {"task=t2i"};
    } else {
      forced = {"task=mm2t", std::string("data.qa_types=[") + (*task == "mcq" ? "MC" : "OE") + "]"};
    }
    run(a, forced);
  });
}

void add_merge_command(CLI::App& app) {
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto weights = std::make_shared<std::vector<double>>();
  auto out = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand(
      "merge", "Weighted average of models of one architecture (e.g. the mcq and oe refinements)");
  command->add_option("--inputs", *inputs, "Checkpoints or run folders")->required();
  command->add_option("--weights", *weights, "One weight per input (default: equal)");
  command->add_option("--out", *out, "Checkpoint folder to write")->required();
  command->callback([inputs, weights, out] {
    std::vector<double> w = *weights;
    if (w.empty()) w.assign(inputs->size(), 1.0 / inputs->size());
    if (w.size() != inputs->size()) {
      throw UsageError("merge: " + std::to_string(w.size()) + " weights for " +
                       std::to_string(inputs->size()) + " inputs");
    }
    train::merge_checkpoints(*inputs, w, *out);
  });
}

}  // namespace corl::tools
