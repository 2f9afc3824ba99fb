// corl tokenizer: trains the text tokenizer on a dataset's prompts, questions and solutions.
#include "commands/commands.h"
#include "corl/data/dataset.h"
#include "corl/tokenize/recipe.h"
#include "corl/tokenize/text_tokenizer.h"
#include "corl/tokenize/vq.h"
#include "corl/tokenize/vq_trainer.h"
#include "corl/util/error.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"
#include "corl/util/run_dir.h"
#include "corl/util/threads.h"

namespace corl::tools {

void add_tokenizer_command(CLI::App& app) {
  auto options = std::make_shared<RecipeOptions>();
  CLI::App* command = app.add_subcommand("tokenizer",
                                         "Train the text (SentencePiece) and image (VQ) "
                                         "tokenizers: RUN/text.model, RUN/vq.safetensors");
  add_recipe_options(*command, *options);
  command->callback([options] {
    tokenize::TokenizerRecipe recipe;
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

    if (!recipe.image.train) return;
    data::ReadOptions images_read;
    images_read.resolution = recipe.image.vq.image_size;
    images_read.skip_bad_rows = recipe.text.skip_bad_rows;
    auto image_rows = data::read_dataset(recipe.image.data, images_read);
    std::vector<cv::Mat> images;
    for (auto& r : image_rows.records) images.push_back(std::move(r.image));
    if (images.empty()) throw DataError(recipe.image.data + ": no images to train on");
    log::info("tokenizer: training the VQ tokenizer on " + std::to_string(images.size()) +
              " images from " + recipe.image.data);
    auto optim = recipe.image.optim;
    optim.seed = static_cast<std::uint64_t>(recipe.run.seed);
    optim.threads = recipe.run.threads;
    torch::manual_seed(recipe.run.seed);
    tokenize::VQModel vq(recipe.image.vq);
    const auto result =
        tokenize::train_vq(vq, tokenize::image_batches(std::move(images), optim.seed), optim);
    tokenize::save_vq(vq, run.file("vq.safetensors"));
    run.metric({{"vq_steps", result.steps},
                {"vq_seconds", result.seconds},
                {"vq_reconstruction_loss", result.reconstruction_loss},
                {"vq_psnr", result.psnr},
                {"vq_codebook_usage", result.codebook_usage},
                {"vq_restarted", result.restarted}});
    log::info("tokenizer: VQ psnr " + std::to_string(result.psnr) + " dB, codebook usage " +
              std::to_string(result.codebook_usage) + "; wrote " + run.file("vq.safetensors"));
  });
}

}  // namespace corl::tools
