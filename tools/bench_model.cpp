// Benchmark of the unified model at the default recipe's sizes: image-generation tokens/s with
// and without the KV cache (and their ratio), text-generation tokens/s, and training tokens/s.
//
//   bench_model [--threads 2] [--batch 8] [--steps 5]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "corl/model/sampling.h"
#include "corl/model/ulm.h"
#include "corl/util/threads.h"

namespace {

using corl::model::ModelConfig;
namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

const corl::tokenize::TextTokenizer& tokenizer() {
  static const corl::tokenize::TextTokenizer instance = [] {
    std::vector<std::string> corpus;
    for (const char* shape : {"circle", "square", "triangle", "diamond"}) {
      for (const char* color : {"red", "green", "blue", "yellow", "purple", "orange"}) {
        corpus.push_back(std::string("a photo of a ") + color + " " + shape);
        corpus.push_back(std::string("What color is the ") + shape + "? Options: A. red B. blue");
        corpus.push_back(std::string("<think>The ") + shape + " is " + color + ".</think><answer>" +
                         color + "</answer>");
      }
    }
    const fs::path dir = fs::temp_directory_path() / "corl_bench_model";
    fs::create_directories(dir);
    corl::tokenize::TextTokenizerOptions options;
    options.vocab_size = 512;
    corl::tokenize::TextTokenizer::train(corpus, (dir / "text").string(), options);
    return corl::tokenize::TextTokenizer((dir / "text.model").string());
  }();
  return instance;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int batch = 8;
  int steps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::stoi(argv[i + 1]);
    if (flag == "--threads")
      threads = value;
    else if (flag == "--batch")
      batch = value;
    else if (flag == "--steps")
      steps = value;
    else {
      std::fprintf(stderr, "bench_model: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  corl::set_thread_count(threads);
  ModelConfig config;  // the default recipe's sizes
  config.vocab_size = tokenizer().vocab_size();
  torch::manual_seed(0);
  corl::model::UnifiedModel model(config);
  model->eval();
  const corl::model::SequenceBuilder builder(tokenizer(), config);
  const std::vector<std::string> prompts(batch, "a photo of a red circle left of a blue square");
  std::printf(
      "model: hidden %d, %d layers, %d heads (%d kv), %d image tokens, batch %d, "
      "%d threads\n",
      config.hidden_size, config.num_layers, config.num_heads, config.num_kv_heads,
      config.image_tokens, batch, threads);

  double cached_rate = 0.0;
  for (bool cache : {true, false}) {
    corl::model::ImageSamplingOptions options;
    options.cfg_weight = 3.0;
    options.use_cache = cache;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    const auto start = std::chrono::steady_clock::now();
    const auto samples = corl::model::generate_images(model, builder, prompts, options, generator);
    const double rate = samples.codes.numel() / seconds_since(start);
    std::printf("image generation, %s cache: %.0f tokens/s (CFG, %d images of %d tokens)\n",
                cache ? "with" : "without", rate, batch, config.image_tokens);
    if (cache) {
      cached_rate = rate;
    } else {
      std::printf("cache speed-up: %.2fx\n", cached_rate / rate);
    }
  }

  {
    corl::model::SamplingOptions options;
    options.max_new_tokens = 48;
    options.temperature = 1.0;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    std::vector<corl::model::Sequence> prefixes;
    for (int i = 0; i < batch; ++i) {
      prefixes.push_back(builder.image_to_text(
          torch::zeros({3, config.image_size, config.image_size}), "What color is the circle?"));
    }
    const auto start = std::chrono::steady_clock::now();
    const auto answers = corl::model::generate_text(model, builder, prefixes, options, generator);
    int64_t tokens = 0;
    for (const auto& t : answers.tokens) tokens += static_cast<int64_t>(t.size());
    std::printf("text generation, with cache: %.0f tokens/s\n", tokens / seconds_since(start));
  }

  {
    model->train();
    torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
    std::vector<corl::model::Sequence> t2i;
    std::vector<corl::model::Sequence> mm2t;
    for (int i = 0; i < 16; ++i) {
      t2i.push_back(builder.text_to_image(
          prompts[0], torch::randint(0, config.image_vocab_size, {config.image_tokens})));
    }
    for (int i = 0; i < 16; ++i) {
      mm2t.push_back(builder.image_to_text(
          torch::zeros({3, config.image_size, config.image_size}), "What color is the circle?",
          "<think>The circle is red.</think><answer>red</answer>"));
    }
    const auto t2i_batch = builder.collate(t2i, corl::model::Padding::kRight);
    const auto mm2t_batch = builder.collate(mm2t, corl::model::Padding::kRight);
    const int64_t tokens = t2i_batch.attention_mask.sum().item<int64_t>() +
                           mm2t_batch.attention_mask.sum().item<int64_t>();
    const auto start = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s) {
      optimizer.zero_grad();
      const auto a = corl::model::supervised_losses(model, t2i_batch);
      const auto b = corl::model::supervised_losses(model, mm2t_batch);
      (a.image + b.text).backward();
      optimizer.step();
    }
    const double elapsed = seconds_since(start);
    std::printf("training: %.0f tokens/s (%.3f s per step of 16 + 16 sequences)\n",
                steps * tokens / elapsed, elapsed / steps);
  }
  return 0;
}
