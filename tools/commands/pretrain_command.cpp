// corl pretrain: the supervised warm start of the base model.
#include "commands/commands.h"
#include "corl/train/checkpoint.h"
#include "corl/train/pretrain.h"
#include "corl/util/run_dir.h"
#include "corl/util/threads.h"

namespace corl::tools {

void add_pretrain_command(CLI::App& app) {
  auto options = std::make_shared<RecipeOptions>();
  auto resume = std::make_shared<bool>(false);
  CLI::App* command = app.add_subcommand(
      "pretrain", "Supervised warm start: text->image, image->caption, image+question->solution");
  add_recipe_options(*command, *options);
  command->add_flag("--resume", *resume, "Go on from the run folder's latest checkpoint");
  command->callback([options, resume] {
    train::PretrainRecipe recipe;
    config::Schema schema;
    config::load_recipe(options->config, options->overrides, recipe, schema);
    set_thread_count(recipe.run.threads);
    auto run = train::open_training_run(util::run_path(options->out, recipe.run.name),
                                        schema.resolved_yaml(), /*writer=*/true, *resume);
    train::pretrain(recipe, run, *resume);
  });
}

}  // namespace corl::tools
