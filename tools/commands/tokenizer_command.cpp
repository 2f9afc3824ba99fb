// corl tokenizer: trains the text tokenizer on a dataset's prompts, questions and solutions.
#include "commands/commands.h"
#include "corl/config/recipes.h"
#include "corl/data/dataset.h"
#include "corl/tokenize/text_tokenizer.h"
#include "corl/util/error.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"
#include "corl/util/run_dir.h"
#include "corl/util/threads.h"

namespace corl::tools {

void add_tokenizer_command(CLI::App& app) {
  auto options = std::make_shared<RecipeOptions>();
  CLI::App* command = app.add_subcommand(
      "tokenizer", "Train the text tokenizer (SentencePiece) and write RUN/text.model");
  add_recipe_options(*command, *options);
  command->callback([options] {
    config::TokenizerRecipe recipe;
    config::Schema schema;
    config::load_recipe(options->config, options->overrides, recipe, schema);
    set_thread_count(recipe.run.threads);
    util::RunDir run(util::run_path(options->out, recipe.run.name), schema.resolved_yaml());

    data::ReadOptions read;
    read.load_images = false;
    read.skip_bad_rows = recipe.text.skip_bad_rows;
    const auto dataset = data::read_dataset(recipe.text.data, read);
    if (dataset.records.empty()) throw DataError(recipe.text.data + ": no rows to train on");
    std::vector<std::string> sentences;
    for (const auto& r : dataset.records) {
      sentences.push_back(r.prompt);
      sentences.push_back(r.qa_problem);
      sentences.push_back(r.qa_solution);
    }
    log::info("tokenizer: training on " + std::to_string(sentences.size()) + " sentences from " +
              recipe.text.data);

    tokenize::TextTokenizerOptions text;
    text.vocab_size = recipe.text.vocab_size;
    text.model_type = recipe.text.model_type;
    text.character_coverage = recipe.text.character_coverage;
    text.byte_fallback = recipe.text.byte_fallback;
    text.seed = recipe.run.seed;
    text.threads = recipe.run.threads;
    tokenize::TextTokenizer::train(sentences, run.file("text"), text);

    // Every sentence must come back exactly: prompts and solutions are compared as text later.
    const tokenize::TextTokenizer tokenizer(run.file("text.model"));
    util::Progress progress("tokenizer: round trip", static_cast<int64_t>(sentences.size()),
                            "sentences");
    size_t tokens = 0;
    int mismatches = 0;
    for (const auto& sentence : sentences) {
      const auto ids = tokenizer.encode(sentence);
      tokens += ids.size();
      if (tokenizer.decode(ids) != sentence && mismatches++ == 0) {
        log::warn("tokenizer: does not round-trip: \"" + sentence + "\"");
      }
      progress.advance();
    }
    progress.finish();
    run.metric({{"sentences", sentences.size()},
                {"vocab_size", tokenizer.vocab_size()},
                {"tokens_per_sentence", static_cast<double>(tokens) / sentences.size()},
                {"round_trip_failures", mismatches}});
    log::info("tokenizer: vocabulary " + std::to_string(tokenizer.vocab_size()) + ", " +
              std::to_string(static_cast<double>(tokens) / sentences.size()) +
              " tokens per sentence; wrote " + run.file("text.model"));
    if (mismatches > 0) {
      throw DataError(run.file("text.model") + ": " + std::to_string(mismatches) +
                      " sentences do not round-trip");
    }
  });
}

}  // namespace corl::tools
