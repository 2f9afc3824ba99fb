// Trains the VQ image tokenizer on two cores (or loads one), then measures it on held-out
// ShapeWorld scenes.
//
//   bench_vq [--n N] [--eval-seed S] [--load PATH] [--save PATH] [--threads T]
//            [--steps N] [--batch-size B] [--learning-rate X] [--beta X] [--boundary-weight X]
//            [--restart-every N] [--seed S] [--channels C] [--codebook-size K] ...
//
// Prints: training time; the GenEval-style judge's agreement with each prompt spec on the
// original renders and on their reconstructions (the reconstruction ceiling of every generation
// score), overall and per category; PSNR; the fraction of codes used; encode and decode
// images/s. Training draws scenes from the sampler seeded with --seed, evaluation from one
// seeded with --eval-seed, so the evaluation scenes are unseen.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "corl/config/recipes.h"  // defines: config::WorldRecipe
#include "corl/data/detect.h"
#include "corl/data/geneval.h"
#include "corl/data/render.h"
#include "corl/data/world.h"
#include "corl/tokenize/vq.h"
#include "corl/tokenize/vq_trainer.h"
#include "corl/util/threads.h"  // defines: set_thread_count

namespace {

using corl::data::kAllCategories;
using corl::data::Sample;

struct Options {
  int n = 1000;
  std::uint64_t eval_seed = 20261101;
  int eval_batch = 50;
  std::string load;
  std::string save;
  corl::tokenize::VQConfig config;
  corl::tokenize::VQTrainOptions train;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr, "bench_vq: %s\nsee the comment at the top of tools/bench_vq.cpp\n",
               problem.c_str());
  std::exit(2);
}

double number(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const double x = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0') usage(flag + ": '" + value + "' is not a number");
  return x;
}

std::vector<int> int_list(const std::string& flag, const std::string& value) {
  std::vector<int> out;
  size_t begin = 0;
  while (begin <= value.size()) {
    const size_t end = std::min(value.find(',', begin), value.size());
    out.push_back(static_cast<int>(number(flag, value.substr(begin, end - begin))));
    begin = end + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  auto& c = o.config;
  auto& t = o.train;
  const std::map<std::string, std::function<void(const std::string&, const std::string&)>> flags = {
      {"--n", [&](auto& f, auto& v) { o.n = int(number(f, v)); }},
      {"--eval-seed", [&](auto& f, auto& v) { o.eval_seed = std::uint64_t(number(f, v)); }},
      {"--load", [&](auto&, auto& v) { o.load = v; }},
      {"--save", [&](auto&, auto& v) { o.save = v; }},
      {"--channels", [&](auto& f, auto& v) { c.channels = int(number(f, v)); }},
      {"--channel-mult", [&](auto& f, auto& v) { c.channel_mult = int_list(f, v); }},
      {"--num-res-blocks", [&](auto& f, auto& v) { c.num_res_blocks = int(number(f, v)); }},
      {"--z-channels", [&](auto& f, auto& v) { c.z_channels = int(number(f, v)); }},
      {"--codebook-size", [&](auto& f, auto& v) { c.codebook_size = int(number(f, v)); }},
      {"--codebook-dim", [&](auto& f, auto& v) { c.codebook_dim = int(number(f, v)); }},
      {"--norm-groups", [&](auto& f, auto& v) { c.norm_groups = int(number(f, v)); }},
      {"--steps", [&](auto& f, auto& v) { t.steps = int(number(f, v)); }},
      {"--batch-size", [&](auto& f, auto& v) { t.batch_size = int(number(f, v)); }},
      {"--learning-rate", [&](auto& f, auto& v) { t.learning_rate = number(f, v); }},
      {"--warmup-steps", [&](auto& f, auto& v) { t.warmup_steps = int(number(f, v)); }},
      {"--weight-decay", [&](auto& f, auto& v) { t.weight_decay = number(f, v); }},
      {"--beta", [&](auto& f, auto& v) { t.beta = number(f, v); }},
      {"--codebook-weight", [&](auto& f, auto& v) { t.codebook_weight = number(f, v); }},
      {"--reconstruction-loss", [&](auto&, auto& v) { t.reconstruction_loss = v; }},
      {"--boundary-weight", [&](auto& f, auto& v) { t.boundary_weight = number(f, v); }},
      {"--restart-every", [&](auto& f, auto& v) { t.restart_every = int(number(f, v)); }},
      {"--restart-until", [&](auto& f, auto& v) { t.restart_until = number(f, v); }},
      {"--seed", [&](auto& f, auto& v) { t.seed = std::uint64_t(number(f, v)); }},
      {"--threads", [&](auto& f, auto& v) { t.threads = int(number(f, v)); }},
      {"--log-every", [&](auto& f, auto& v) { t.log_every = int(number(f, v)); }},
  };
  for (int i = 1; i < argc; ++i) {
    const auto it = flags.find(argv[i]);
    if (it == flags.end()) usage(std::string("unknown flag '") + argv[i] + "'");
    if (i + 1 >= argc) usage(std::string(argv[i]) + " needs a value");
    it->second(argv[i], argv[i + 1]);
    ++i;
  }
  if (o.n < 1) usage("--n must be positive");
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Tally {
  int passed = 0;
  int total = 0;
  double rate() const { return total ? double(passed) / total : 0.0; }
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  corl::set_thread_count(options.train.threads);
  const auto spec = corl::data::WorldSpec::from_recipe(corl::config::WorldRecipe{});

  corl::tokenize::VQModel model{nullptr};
  if (!options.load.empty()) {
    model = corl::tokenize::load_vq(options.load);
  } else {
    torch::manual_seed(options.train.seed);  // the initial weights are part of the run
    model = corl::tokenize::VQModel(options.config);
    const auto& c = options.config;
    std::printf(
        "training: channels %d, %zu levels, %d res blocks, z %d, codebook %d x %d, "
        "%lld parameters\n",
        c.channels, c.channel_mult.size(), c.num_res_blocks, c.z_channels, c.codebook_size,
        c.codebook_dim, [&] {
          long long n = 0;
          for (const auto& p : model->parameters()) n += p.numel();
          return n;
        }());
    std::fflush(stdout);
    const auto result = corl::tokenize::train_vq(
        model, corl::tokenize::world_batches(spec, options.train.seed), options.train);
    std::printf(
        "trained: %d steps x %d images in %.1f s (%.1f images/s), last loss %.4f, "
        "psnr %.2f dB, %lld codes restarted\n",
        result.steps, options.train.batch_size, result.seconds,
        result.steps * options.train.batch_size / result.seconds, result.reconstruction_loss,
        result.psnr, static_cast<long long>(result.restarted));
    if (!options.save.empty()) corl::tokenize::save_vq(model, options.save);
  }
  model->eval();
  const auto& config = model->config;

  corl::data::WorldSampler sampler(spec, options.eval_seed);
  std::array<Tally, kAllCategories.size()> original{}, reconstructed{};
  Tally original_all, reconstructed_all;
  auto used = torch::zeros({config.codebook_size}, torch::kBool);
  double encode_s = 0.0, decode_s = 0.0, squared_error = 0.0;
  std::map<std::string, int> reasons;
  for (int begin = 0; begin < options.n; begin += options.eval_batch) {
    const int count = std::min(options.eval_batch, options.n - begin);
    std::vector<Sample> samples;
    std::vector<cv::Mat> images;
    for (int i = 0; i < count; ++i) {
      samples.push_back(sampler.next());
      images.push_back(corl::data::render(samples.back().scene, spec.resolution));
    }
    const auto x = corl::tokenize::images_to_tensor(images);
    auto start = std::chrono::steady_clock::now();
    const auto codes = model->encode(x);
    encode_s += seconds_since(start);
    start = std::chrono::steady_clock::now();
    const auto y = model->decode(codes);
    decode_s += seconds_since(start);
    used.index_put_({codes.view({-1})}, true);
    const auto out = corl::tokenize::tensor_to_images(y);
    // PSNR of the 8-bit images the judge sees.
    squared_error += (corl::tokenize::images_to_tensor(out) - x).pow(2).sum().item<double>() / 4;
    for (int i = 0; i < count; ++i) {
      const auto& s = samples[i];
      const size_t k = static_cast<size_t>(s.spec.category);
      const bool a =
          corl::data::judge(s.spec, corl::data::detect(images[i]), {spec.position_margin, true}).correct;
      const auto b = corl::data::judge(s.spec, corl::data::detect(out[i]), {spec.position_margin, true});
      original[k].total++, reconstructed[k].total++, original_all.total++,
          reconstructed_all.total++;
      original[k].passed += a, original_all.passed += a;
      reconstructed[k].passed += b.correct, reconstructed_all.passed += b.correct;
      if (!b.correct) reasons[b.reason]++;
    }
  }
  const double pixels = double(options.n) * 3 * spec.resolution * spec.resolution;
  const double psnr = 10.0 * std::log10(1.0 / (squared_error / pixels));
  std::printf("eval: n = %d held-out scenes (eval seed %llu), %d x %d codes per image\n", options.n,
              static_cast<unsigned long long>(options.eval_seed), config.grid(), config.grid());
  std::printf("agreement: originals %.3f, reconstructions %.3f, ratio %.3f (target >= 0.95)\n",
              original_all.rate(), reconstructed_all.rate(),
              reconstructed_all.rate() / std::max(original_all.rate(), 1e-9));
  for (size_t k = 0; k < kAllCategories.size(); ++k) {
    std::printf("  %-14s originals %.3f  reconstructions %.3f  (n = %d)\n",
                corl::data::name(kAllCategories[k]).c_str(), original[k].rate(),
                reconstructed[k].rate(), original[k].total);
  }
  std::vector<std::pair<int, std::string>> worst;
  for (const auto& [reason, count] : reasons) worst.emplace_back(count, reason);
  std::sort(worst.rbegin(), worst.rend());
  for (size_t i = 0; i < std::min<size_t>(5, worst.size()); ++i) {
    std::printf("  failure x%d: %s\n", worst[i].first, worst[i].second.c_str());
  }
  std::printf("psnr: %.2f dB (8-bit reconstructions)\n", psnr);
  std::printf("codebook usage: %.3f (%lld of %d codes)\n",
              used.sum().item<double>() / config.codebook_size,
              static_cast<long long>(used.sum().item<int64_t>()), config.codebook_size);
  std::printf("speed: encode %.0f images/s, decode %.0f images/s (batch %d, %d threads)\n",
              options.n / encode_s, options.n / decode_s, options.eval_batch,
              options.train.threads);
  return 0;
}
