// corl: co-reinforcement learning of unified multimodal models.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands/commands.h"
#include "corl/util/error.h"
#include "corl/util/heap.h"
#include "corl/util/log.h"

namespace corl::tools {

namespace {
std::vector<std::string> arguments;
}  // namespace

const std::vector<std::string>& program_arguments() { return arguments; }

void add_recipe_options(CLI::App& command, RecipeOptions& options) {
  command.add_option("--config,-c", options.config, "Recipe file (YAML); defaults when omitted")
      ->check(CLI::ExistingFile);
  command.add_option("--set", options.overrides, "Override a recipe key: --set key.sub=value")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  command.add_option("--out,-o", options.out, "Run folder (default: runs/RUN_NAME)");
}

}  // namespace corl::tools

int main(int argc, char** argv) {
  // Before LibTorch allocates: it changes where freed blocks go, not what any block holds.
  corl::util::keep_freed_memory();
  corl::tools::arguments.assign(argv + 1, argv + argc);
  CLI::App app{"corl: co-reinforcement learning of unified multimodal models", "corl"};
  app.set_version_flag("--version", "corl 0.1.0");
  app.require_subcommand(1);
  corl::tools::add_data_command(app);
  corl::tools::add_tokenizer_command(app);
  corl::tools::add_pretrain_command(app);
  corl::tools::add_train_command(app);
  corl::tools::add_refine_command(app);
  corl::tools::add_merge_command(app);
  corl::tools::add_eval_command(app);
  corl::tools::add_export_command(app);
  corl::tools::add_generate_command(app);
  corl::tools::add_answer_command(app);
  corl::tools::add_detect_command(app);
  corl::tools::add_recipes_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const corl::UsageError& e) {
    corl::log::error(e.what());
    return 2;
  } catch (const corl::DataError& e) {
    corl::log::error(e.what());
    return 1;
  } catch (const std::exception& e) {
    corl::log::error(std::string("internal error: ") + e.what());
    return 1;
  }
  corl::log::flush();
  return 0;
}
