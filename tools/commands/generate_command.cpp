// corl generate and corl answer: a checkpoint's two abilities, one prompt at a time, or a file of
// prompts into GenEval's folder layout (eval/geneval_folder.h).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands/commands.h"
#include "corl/data/dataset.h"
#include "corl/data/render.h"
#include "corl/eval/geneval_folder.h"
#include "corl/model/sampling.h"
#include "corl/rollout/rollout.h"
#include "corl/train/checkpoint.h"
#include "corl/util/error.h"
#include "corl/util/log.h"
#include "corl/util/progress.h"
#include "corl/util/threads.h"

namespace corl::tools {
namespace {

std::string fmt_seconds(const std::string& what, double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f s", seconds);
  return what + text;
}

}  // namespace

void add_generate_command(CLI::App& app) {
  struct Options {
    std::string checkpoint, prompt, prompts, out = "runs/generate";
    int n = 4, seed = 0, threads = 2, top_k = 0, batch_size = 64, grid_columns = 0;
    double cfg_weight = 5.0, temperature = 1.0, top_p = 1.0;
    bool grid = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "generate",
      "Sample images for a prompt (PNG files), or for a file of prompts in GenEval's "
      "folder layout");
  command->add_option("--ckpt", o->checkpoint, "Checkpoint folder, or a run folder")->required();
  auto* prompt = command->add_option("--prompt,-p", o->prompt, "What to draw");
  auto* prompts = command->add_option(
      "--prompts", o->prompts,
      "A file of prompts: GenEval's evaluation_metadata.jsonl, or plain text, one a line. Writes "
      "OUT/<index>/metadata.jsonl and OUT/<index>/samples/<n>.png (GenEval's layout), drawing as "
      "`corl eval` draws with run.seed = --seed");
  prompt->excludes(prompts);
  command->add_option("--n", o->n, "Images to sample (per prompt)")->check(CLI::Range(1, 4096));
  command
      ->add_option("--batch-size", o->batch_size,
                   "With --prompts: images sampled at once (as eval's decode.batch_size)")
      ->check(CLI::Range(1, 100000));
  command->add_flag("--grid", o->grid, "With --prompts: also write OUT/<index>/grid.png");
  command->add_option("--grid-columns", o->grid_columns, "Images per row of grid.png (0: all)")
      ->check(CLI::Range(0, 4096));
  command->add_option("--out,-o", o->out, "Folder of the PNG files");
  command->add_option("--cfg-weight", o->cfg_weight, "Classifier-free guidance weight (1: none)")
      ->check(CLI::Range(0.0, 100.0));
  command->add_option("--temperature", o->temperature, "Sampling temperature (0: greedy)")
      ->check(CLI::Range(0.0, 100.0));
  command->add_option("--top-k", o->top_k, "Sample among the k likeliest codes (0: all)")
      ->check(CLI::Range(0, 1000000));
  command->add_option("--top-p", o->top_p, "Nucleus mass (1: all)")->check(CLI::Range(0.0, 1.0));
  command->add_option("--seed", o->seed, "Sampling seed");
  command->add_option("--threads", o->threads, "Intra-op threads")->check(CLI::Range(1, 256));
  command->callback([o] {
    if (o->prompt.empty() && o->prompts.empty()) {
      throw UsageError("generate: give --prompt TEXT or --prompts FILE");
    }
    set_thread_count(o->threads);
    model::ImageSamplingOptions options;
    options.cfg_weight = o->cfg_weight;
    options.temperature = o->temperature;
    options.top_k = o->top_k;
    options.top_p = o->top_p;
    if (!o->prompts.empty()) {
      // Read before the model loads, so that a bad row costs nothing.
      const auto prompts = eval::read_prompt_file(o->prompts);
      auto policy = train::load_policy(o->checkpoint);
      eval::FolderOptions folder;
      folder.sampling.sampling = options;
      folder.sampling.images_per_prompt = o->n;
      folder.sampling.prompts_per_batch = std::max(1, o->batch_size / o->n);
      folder.grid = o->grid;
      folder.grid_columns = o->grid_columns;
      // The stream `corl eval` draws its geneval images from, given its run.seed.
      auto generator =
          at::make_generator<at::CPUGeneratorImpl>(data::split_seed(o->seed, "eval/images"));
      util::Progress progress("generate", static_cast<int64_t>(prompts.size()), "prompts");
      const size_t images =
          eval::write_geneval_folder(policy, prompts, folder, generator, o->out, &progress);
      progress.finish();
      log::info("generate: wrote " + std::to_string(images) + " images of " +
                std::to_string(prompts.size()) + " prompts to " + o->out);
      return;
    }
    using Clock = std::chrono::steady_clock;
    const auto seconds = [](Clock::time_point from) {
      return std::chrono::duration<double>(Clock::now() - from).count();
    };
    const auto start = Clock::now();
    auto policy = train::load_policy(o->checkpoint);
    const double load = seconds(start);
    const model::SequenceBuilder builder(*policy.text, policy.model->config);
    auto generator = at::make_generator<at::CPUGeneratorImpl>(o->seed);
    const auto sampled = Clock::now();
    // N images of one prompt are a GRPO group: the rollout's own path (sampling, VQ decode, RGB
    // bytes), so that the command is as fast as the rollout it shares its code with.
    rollout::RolloutOptions group;
    group.num_generations = o->n;
    group.cfg_weight = o->cfg_weight;
    group.temperature = o->temperature;
    group.top_k = o->top_k;
    group.top_p = o->top_p;
    const auto images =
        rollout::roll_images(policy.model, builder, policy.vq, {o->prompt}, group, generator)
            .images;
    const double sampling = seconds(sampled);
    const auto written = Clock::now();
    std::filesystem::create_directories(o->out);
    for (size_t i = 0; i < images.size(); ++i) {
      const auto path = (std::filesystem::path(o->out) / ("image_" + std::to_string(i) + ".png"));
      data::write_png(images[i], path.string());
      std::cout << path.string() << "\n";
    }
    log::info(fmt_seconds("generate: " + std::to_string(images.size()) + " images; load ", load) +
              fmt_seconds(", sampling and VQ decode ", sampling) +
              fmt_seconds(", PNG files ", seconds(written)));
  });
}

void add_answer_command(CLI::App& app) {
  struct Options {
    std::string checkpoint, image, question;
    int seed = 0, threads = 2, max_new_tokens = 128;
    double temperature = 0.0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("answer", "Answer a question about an image");
  command->add_option("--ckpt", o->checkpoint, "Checkpoint folder, or a run folder")->required();
  command->add_option("--image,-i", o->image, "Image file (any size; resized)")->required();
  command->add_option("--question,-q", o->question, "The question")->required();
  command->add_option("--temperature", o->temperature, "Sampling temperature (0: greedy)")
      ->check(CLI::Range(0.0, 100.0));
  command->add_option("--max-new-tokens", o->max_new_tokens, "Longest answer")
      ->check(CLI::Range(1, 100000));
  command->add_option("--seed", o->seed, "Sampling seed");
  command->add_option("--threads", o->threads, "Intra-op threads")->check(CLI::Range(1, 256));
  command->callback([o] {
    set_thread_count(o->threads);
    auto policy = train::load_policy(o->checkpoint);
    const int size = policy.model->config.image_size;
    const auto image = model::image_to_tensor(data::read_image(o->image, size), size);
    const model::SequenceBuilder builder(*policy.text, policy.model->config);
    model::SamplingOptions options;
    options.greedy = o->temperature == 0.0;
    options.temperature = o->temperature;
    options.max_new_tokens = o->max_new_tokens;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(o->seed);
    const auto answer = model::generate_text(
        policy.model, builder, {builder.image_to_text(image, o->question)}, options, generator);
    std::cout << answer.texts.at(0) << std::endl;
  });
}

}  // namespace corl::tools
