// Benchmarks ShapeWorld on two cores and checks that its judge agrees with its renderer.
//
//   bench_world [--n N] [--seed S]
//
// (1) samples and renders N scenes, then again with PNG encoding, and prints samples/s;
// (2) renders N samples, reads each back with detect() and judges it against its own prompt
//     spec: every rendered sample should pass, so "agreement" is the detector's accuracy as the
//     GenEval-style judge, overall and per category. The same on a Gaussian blur of each image
//     (sigma 0.8 px) shows how far the judge can be trusted on soft, generated images.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "corl/config/recipes.h"  // defines: config::WorldRecipe
#include "corl/data/detect.h"
#include "corl/data/geneval.h"
#include "corl/data/render.h"
#include "corl/data/world.h"  // defines: WorldSampler, WorldSpec

namespace {

using corl::data::Category;
using corl::data::kAllCategories;
using corl::data::Sample;
using corl::data::WorldSampler;
using corl::data::WorldSpec;

// The benchmark's budget: two cores, whatever the machine has.
constexpr int kThreads = 2;

// Blur of the degraded agreement check, in pixels: about a VQ decoder's softness at 64 px.
constexpr double kBlurSigma = 0.8;

struct Options {
  int n = 4000;
  std::uint64_t seed = 0;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr, "bench_world: %s\nusage: bench_world [--n N] [--seed S]\n", problem.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag != "--n" && flag != "--seed") usage("unknown flag '" + flag + "'");
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    char* end = nullptr;
    const unsigned long long number = std::strtoull(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || value[0] == '-') {
      usage(
          std::string(flag).append(": '").append(value).append("' is not a non-negative integer"));
    }
    if (flag == "--n") {
      if (number < 1 || number > 10'000'000) usage("--n must be in [1, 10000000]");
      options.n = static_cast<int>(number);
    } else {
      options.seed = number;
    }
  }
  return options;
}

// Runs work(thread, begin, end) over [0, n) split between the threads; returns wall seconds.
double run_split(int n, const std::function<void(int, int, int)>& work) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(work, t, n * t / kThreads, n * (t + 1) / kThreads);
  }
  for (std::thread& thread : threads) thread.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Each thread samples its own stream so that no sampler is shared.
WorldSampler sampler_for(const WorldSpec& spec, const Options& options, int thread) {
  return WorldSampler(spec, options.seed * kThreads + thread);
}

struct Tally {
  int passed = 0;
  int total = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  // Our two threads are the parallelism; OpenCV must not add its own.
  cv::setNumThreads(1);
  const WorldSpec spec = WorldSpec::from_recipe(corl::config::WorldRecipe{});
  std::printf("world: %d x %d, %zu categories, n = %d, %d threads\n", spec.resolution,
              spec.resolution, spec.categories.size(), options.n, kThreads);

  // (1) Throughput. The checksums keep the compiler from dropping unused renders.
  std::array<std::uint64_t, kThreads> checksum{};
  const double render_seconds = run_split(options.n, [&](int thread, int begin, int end) {
    WorldSampler sampler = sampler_for(spec, options, thread);
    for (int i = begin; i < end; ++i) {
      const Sample sample = sampler.next();
      checksum[thread] +=
          static_cast<std::uint64_t>(cv::sum(corl::data::render(sample.scene, spec.resolution))[0]);
    }
  });
  std::printf("render: %.0f samples/s (sample + render)\n", options.n / render_seconds);

  std::array<std::uint64_t, kThreads> png_bytes{};
  const double png_seconds = run_split(options.n, [&](int thread, int begin, int end) {
    WorldSampler sampler = sampler_for(spec, options, thread);
    std::vector<unsigned char> png;
    cv::Mat bgr;
    for (int i = begin; i < end; ++i) {
      const Sample sample = sampler.next();
      cv::cvtColor(corl::data::render(sample.scene, spec.resolution), bgr, cv::COLOR_RGB2BGR);
      cv::imencode(".png", bgr, png);
      png_bytes[thread] += png.size();
    }
  });
  std::printf(
      "render+png: %.0f samples/s (%.0f bytes per image)\n", options.n / png_seconds,
      double(std::accumulate(png_bytes.begin(), png_bytes.end(), std::uint64_t{0})) / options.n);

  // (2) Agreement of the judge with the renderer, on clean and on blurred renders.
  enum Variant { kClean, kBlurred, kVariants };
  using CategoryTallies = std::array<Tally, kAllCategories.size()>;
  std::array<std::array<CategoryTallies, kVariants>, kThreads> tallies{};
  std::array<double, kThreads> detect_seconds{};
  std::mutex print_mutex;
  int failures_shown = 0;
  run_split(options.n, [&](int thread, int begin, int end) {
    WorldSampler sampler = sampler_for(spec, options, thread);
    cv::Mat blurred;
    for (int i = begin; i < end; ++i) {
      const Sample sample = sampler.next();
      const cv::Mat image = corl::data::render(sample.scene, spec.resolution);
      const auto start = std::chrono::steady_clock::now();
      const corl::data::Scene seen = corl::data::detect(image);
      detect_seconds[thread] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      cv::GaussianBlur(image, blurred, cv::Size(0, 0), kBlurSigma);
      const auto category = static_cast<std::size_t>(sample.spec.category);
      for (Variant variant : {kClean, kBlurred}) {
        const corl::data::Scene found = variant == kClean ? seen : corl::data::detect(blurred);
        const corl::data::Judgement judgement =
            corl::data::judge(sample.spec, found, {spec.position_margin, true});
        Tally& tally = tallies[thread][variant][category];
        ++tally.total;
        tally.passed += judgement.correct;
        if (!judgement.correct && variant == kClean) {
          std::lock_guard<std::mutex> lock(print_mutex);
          if (failures_shown++ < 5) {
            std::printf("  disagreement %s: \"%s\": %s\n    scene %s\n    seen  %s\n",
                        sample.id.c_str(), sample.prompt.c_str(), judgement.reason.c_str(),
                        corl::data::to_json(sample.scene).dump().c_str(),
                        corl::data::to_json(found).dump().c_str());
          }
        }
      }
    }
  });

  for (Variant variant : {kClean, kBlurred}) {
    Tally overall;
    std::string per_category;
    for (Category category : kAllCategories) {
      Tally tally;
      for (const auto& thread_tallies : tallies) {
        tally.passed += thread_tallies[variant][static_cast<std::size_t>(category)].passed;
        tally.total += thread_tallies[variant][static_cast<std::size_t>(category)].total;
      }
      if (tally.total == 0) continue;
      overall.passed += tally.passed;
      overall.total += tally.total;
      char line[128];
      std::snprintf(line, sizeof(line), "  %-14s %.4f (%d/%d)\n",
                    corl::data::name(category).c_str(), double(tally.passed) / tally.total,
                    tally.passed, tally.total);
      per_category += line;
    }
    if (variant == kClean) {
      std::printf("agreement: %.4f (%d/%d)\n%s", double(overall.passed) / overall.total,
                  overall.passed, overall.total, per_category.c_str());
    } else {
      std::printf("agreement on blurred renders (sigma %.1f px): %.4f (%d/%d)\n%s", kBlurSigma,
                  double(overall.passed) / overall.total, overall.passed, overall.total,
                  per_category.c_str());
    }
  }
  // Per core: each thread timed only its own detect() calls on clean renders.
  std::printf("detect: %.0f images/s per core\n",
              options.n / std::accumulate(detect_seconds.begin(), detect_seconds.end(), 0.0));
  return std::accumulate(checksum.begin(), checksum.end(), std::uint64_t{0}) == 0
             ? 1
             : 0;  // an all-black world is a broken world
}
