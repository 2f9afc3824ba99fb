// The subcommands of `corl`; each registers itself on the app and runs from its callback.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace corl::tools {

// Options every recipe-driven command takes.
struct RecipeOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;
};
void add_recipe_options(CLI::App& command, RecipeOptions& options);

// The command line the program was started with, without the program name (for --nproc, which
// starts copies of it).
const std::vector<std::string>& program_arguments();

void add_data_command(CLI::App& app);
void add_tokenizer_command(CLI::App& app);
void add_detect_command(CLI::App& app);
void add_recipes_command(CLI::App& app);
void add_pretrain_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_answer_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_refine_command(CLI::App& app);
void add_merge_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_export_command(CLI::App& app);

}  // namespace corl::tools
