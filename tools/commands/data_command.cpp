// corl data: renders the embedded ShapeWorld into a JSON-lines dataset.
#include "commands/commands.h"
#include "corl/config/recipes.h"
#include "corl/data/dataset.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"
#include "corl/util/run_dir.h"
#include "corl/util/threads.h"

namespace corl::tools {

void add_data_command(CLI::App& app) {
  auto options = std::make_shared<RecipeOptions>();
  CLI::App* command = app.add_subcommand(
      "data", "Render the embedded synthetic world to DIR/{train,eval}.jsonl and DIR/images/");
  add_recipe_options(*command, *options);
  command->callback([options] {
    config::WorldRecipe recipe;
    config::Schema schema;
    config::load_recipe(options->config, options->overrides, recipe, schema);
    set_thread_count(recipe.run.threads);
    util::RunDir run(util::run_path(options->out, recipe.run.name), schema.resolved_yaml());
    log::info("data: rendering " + std::to_string(recipe.data.train_size) + " train and " +
              std::to_string(recipe.data.eval_size) + " eval samples into " + run.path());
    util::Progress progress("data", recipe.data.train_size + recipe.data.eval_size, "samples");
    const auto written = data::write_world_dataset(recipe, run.path(), [&] { progress.advance(); });
    progress.finish();
    run.metric({{"train", written.train},
                {"eval", written.eval},
                {"eval_duplicates_dropped", written.eval_duplicates_dropped},
                {"held_out_prompts", written.held_out_prompts}});
    if (written.held_out_prompts > 0) {
      log::info("data: " + std::to_string(written.held_out_prompts) +
                " prompts held out for the benchmarks, in " + run.file("held_out_prompts.txt"));
    }
    log::info("data: wrote " + run.file("train.jsonl") + " and " + run.file("eval.jsonl"));
  });
}

}  // namespace corl::tools
