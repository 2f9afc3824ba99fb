// corl recipes: every key of every recipe, with type, default, allowed values and meaning.
#include <iostream>

#include "commands/commands.h"
#include "corl/config/recipes.h"
#include "corl/eval/suites.h"
#include "corl/grpo/recipe.h"
#include "corl/tokenize/recipe.h"
#include "corl/train/pretrain.h"

namespace corl::tools {
namespace {

template <class Recipe>
std::string table() {
  Recipe recipe;
  config::Schema schema;
  bind(schema, recipe);
  return schema.markdown();
}

}  // namespace

void add_recipes_command(CLI::App& app) {
  auto which = std::make_shared<std::string>("all");
  CLI::App* command = app.add_subcommand(
      "recipes", "Print every recipe key with its type, default, range and meaning (Markdown)");
  command->add_option("name", *which, "Recipe: world, tokenizers, pretrain, grpo, eval or all")
      ->check(CLI::IsMember({"world", "tokenizers", "pretrain", "grpo", "eval", "all"}));
  command->callback([which] {
    if (*which == "world" || *which == "all") {
      std::cout << "## world (`corl data`)\n\n" << table<config::WorldRecipe>() << "\n";
    }
    if (*which == "tokenizers" || *which == "all") {
      std::cout << "## tokenizers (`corl tokenizer`)\n\n"
                << table<tokenize::TokenizerRecipe>() << "\n";
    }
    if (*which == "pretrain" || *which == "all") {
      std::cout << "## pretrain (`corl pretrain`)\n\n" << table<train::PretrainRecipe>() << "\n";
    }
    if (*which == "grpo" || *which == "all") {
      std::cout << "## grpo (`corl train`, `corl refine`)\n\n" << table<grpo::GrpoRecipe>() << "\n";
    }
    if (*which == "eval" || *which == "all") {
      std::cout << "## eval (`corl eval`)\n\n" << table<eval::EvalRecipe>() << "\n";
    }
  });
}

}  // namespace corl::tools
