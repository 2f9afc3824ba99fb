// corl eval: the GenEval-style and understanding suites on one or more checkpoints, with a report.
#include <filesystem>

#include "commands/commands.h"
#include "corl/eval/report.h"
#include "corl/eval/suites.h"
#include "corl/train/checkpoint.h"
#include "corl/util/error.h"
#include "corl/util/log.h"
#include "corl/util/run_dir.h"
#include "corl/util/threads.h"

namespace corl::tools {

void add_eval_command(CLI::App& app) {
  auto options = std::make_shared<RecipeOptions>();
  auto suite = std::make_shared<std::string>("all");
  auto checkpoints = std::make_shared<std::vector<std::string>>();
  auto data = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand(
      "eval", "Benchmark suites (geneval, mcq, oe) on checkpoints: results.json and report.html");
  add_recipe_options(*command, *options);
  command->add_option("--suite", *suite, "geneval, mcq, oe or all")
      ->check(CLI::IsMember({"geneval", "mcq", "oe", "all"}));
  command->add_option("--ckpt", *checkpoints, "Checkpoint or run folder (repeat for several)")
      ->required();
  command->add_option("--data", *data, "Evaluate this JSON-lines dataset instead of the suites");
  command->callback([options, suite, checkpoints, data] {
    eval::EvalRecipe recipe;
    config::Schema schema;
    auto overrides = options->overrides;
    if (!data->empty()) overrides.push_back("data=" + *data);
    config::load_recipe(options->config, overrides, recipe, schema);
    set_thread_count(recipe.run.threads);
    // Every checkpoint is found before the run folder is opened or any model evaluated, so a
    // mistyped path costs nothing and leaves an earlier report untouched.
    for (const auto& path : *checkpoints) train::resolve_checkpoint(path);
    util::RunDir run(util::run_path(options->out, recipe.run.name), schema.resolved_yaml());

    const auto suites = eval::build_suites(recipe);
    auto wanted = [&](const char* name) { return *suite == "all" || *suite == name; };
    std::vector<eval::CheckpointResults> results;
    for (const auto& path : *checkpoints) {
      eval::CheckpointResults r;
      r.path = path;
      r.name = eval::checkpoint_name(path);
      for (const auto& other : results) {
        if (other.name == r.name) r.name += "_" + std::to_string(results.size());
      }
      r.run_dir = eval::run_of(path);
      auto policy = train::load_policy(path);
      log::info("eval: " + r.name + " (" + policy.dir + ")");
      if (wanted("geneval") && !suites.geneval.empty()) {
        r.suites["geneval"] = eval::run_geneval(policy, suites.geneval, recipe);
      }
      if (wanted("mcq") && !suites.mcq.empty()) {
        r.suites["mcq"] = eval::run_questions(policy, suites.mcq, recipe);
      }
      if (wanted("oe") && !suites.oe.empty()) {
        r.suites["oe"] = eval::run_questions(policy, suites.oe, recipe);
      }
      for (const auto& [name, result] : r.suites) {
        const auto& f = result.figures;
        const char* key = name == "geneval" ? "overall" : "accuracy";
        char line[160];
        std::snprintf(line, sizeof line, "eval: %s %s %s %.3f ± %.3f", r.name.c_str(), name.c_str(),
                      key, f[key].get<double>(), f["se"][key].get<double>());
        log::info(line);
        run.metric({{"checkpoint", r.name}, {"suite", name}, {"figures", f}});
      }
      results.push_back(std::move(r));
    }
    if (results.empty() || results.front().suites.empty()) {
      throw UsageError("eval: nothing to evaluate (no items for --suite " + *suite + ")");
    }
    eval::write_report(run.path(), results, recipe);
    log::info("eval: wrote " + run.path() + "/results.json and report.html");
  });
}

}  // namespace corl::tools
