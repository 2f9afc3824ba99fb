// corl's half of the side-by-side benchmark against transformers (scripts/bench_transformers.sh,
// docs/benchmarks.md): the rollouts and the update of a GRPO step on a Hugging Face Janus folder,
// timed as the stage runs them. Prints one JSON object; with --inputs, first writes the token ids
// it feeds, so that transformers is timed on exactly the same sequences.
//
//   bench_janus --ckpt DIR [--threads 2] [--batches 4,8] [--repeats 3] [--answer-tokens 32]
//               [--cfg 5] [--inputs FILE] [--profile FILE] [--profile-update FILE]
//               [--device cpu|cuda] [--dtype fp32|bf16] [--no-update]
//
// images   G images per prompt with CFG, KV cache, sampling at temperature 1 and VQ decode to RGB
//          bytes on the host (rollout::roll_images), at each batch size (two or more); the time
//          of each (image_seconds), and of its sampling alone (generation_seconds: the prefill
//          and the decoding steps, no VQ); on CUDA also the sampling with eager decoding steps
//          at the largest batch (generation_seconds_eager: no CUDA graph). Seconds per image is
//          the marginal cost over the batches (tools/bench_janus_hf.py report: a least-squares
//          slope), so the fixed cost of a step (the prompt, the loop) drops out
// answers  G answers to one image and question at temperature 1 (rollout::roll_answers), of
//          --answer-tokens each (a random model rarely draws <eos>; the program says when one
//          ended early), timed at each batch; tokens/s at the largest, and the marginal rate
// update   forward and backward of the log-probs of image codes and of answer tokens (what
//          grpo::accumulate_gradients differentiates), at the largest batch; tokens/s counts
//          every position of the sequences (left out with --no-update)
//
// --device cuda --dtype bf16 runs the model in bf16 on the GPU (tools/bench_janus_gpu.sh).
//
// --profile writes a Chrome trace of one image rollout at the larger batch (LibTorch's profiler)
// and exits; --profile-update the same of one update of image rollouts (forward and backward).
// `tools/bench_janus_hf.py profile FILE` sums a trace by operator.
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "corl/model/inputs.h"
#include "corl/model/sampling.h"
#include "corl/rollout/rollout.h"
#include "corl/train/checkpoint.h"
#include "corl/util/threads.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr const char* kPrompt = "a red circle to the left of a blue square";
constexpr const char* kQuestion = "How many circles are in the image? Answer with a number.";

struct Options {
  std::string checkpoint, inputs, profile, profile_update, device = "cpu", dtype = "fp32";
  int threads = 2, repeats = 3, answer_tokens = 32;
  std::vector<int> batches = {4, 8};
  double cfg = 5.0;
  bool update = true;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--no-update") {
      o.update = false;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("bench_janus: " + flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--ckpt") {
      o.checkpoint = value;
    } else if (flag == "--profile") {
      o.profile = value;
    } else if (flag == "--profile-update") {
      o.profile_update = value;
    } else if (flag == "--inputs") {
      o.inputs = value;
    } else if (flag == "--threads") {
      o.threads = std::stoi(value);
    } else if (flag == "--repeats") {
      o.repeats = std::stoi(value);
    } else if (flag == "--answer-tokens") {
      o.answer_tokens = std::stoi(value);
    } else if (flag == "--device") {
      o.device = value;
    } else if (flag == "--dtype") {
      o.dtype = value;
    } else if (flag == "--cfg") {
      o.cfg = std::stod(value);
    } else if (flag == "--batches") {
      o.batches.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');) o.batches.push_back(std::stoi(item));
    } else {
      throw std::invalid_argument("bench_janus: unknown flag " + flag);
    }
  }
  if (o.checkpoint.empty()) throw std::invalid_argument("bench_janus: --ckpt DIR is required");
  if (o.batches.size() < 2 || o.batches[0] < 1 ||
      !std::is_sorted(o.batches.begin(), o.batches.end(), std::less_equal<int>())) {
    throw std::invalid_argument("bench_janus: --batches takes two or more sizes, rising");
  }
  if (o.dtype != "fp32" && o.dtype != "bf16") {
    throw std::invalid_argument("bench_janus: --dtype is fp32 or bf16");
  }
  return o;
}

// Waits for the GPU's queued work (every timed call also ends with a copy to the host).
void synchronize() {
  if (torch::cuda::is_available()) torch::cuda::synchronize();
}

// The fastest of `repeats` runs of `work`, in seconds, after one untimed run.
template <class Work>
double best_of(int repeats, Work&& work) {
  work();
  synchronize();
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    work();
    synchronize();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  corl::set_thread_count(o.threads);
  torch::manual_seed(0);
  auto policy = corl::train::load_policy(o.checkpoint);
  auto& model = policy.model;
  model->eval();
  const torch::Device device(o.device);
  const auto dtype = o.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  model->to(device, dtype);
  policy.vq->to(device, dtype);
  const auto& config = model->config;
  const corl::model::SequenceBuilder builder(*policy.text, config);
  const auto image = torch::rand({3, config.image_size, config.image_size}) * 2 - 1;

  if (!o.inputs.empty()) {
    std::ofstream file(o.inputs);
    file << json{{"t2i", builder.text_to_image(kPrompt).ids},
                 {"t2i_unconditional", builder.text_to_image(kPrompt, {}, true).ids},
                 {"mm2t", builder.image_to_text(image, kQuestion).ids},
                 {"eos", builder.eos_id()}}
                .dump();
    if (!file) throw std::runtime_error("bench_janus: cannot write " + o.inputs);
  }

  json out;
  out["device"] = o.device;
  out["dtype"] = o.dtype;
  out["threads"] = o.threads;
  out["batches"] = o.batches;
  int64_t decoder = 0;
  for (const auto& p : model->language_model->model->layers->parameters()) decoder += p.numel();
  out["decoder_parameters"] = decoder;
  out["image_tokens"] = config.image_tokens;

  // Update of image rollouts: forward and backward of the log-probs of G code sequences.
  const int rows = o.batches.back();
  const std::vector<std::string> prompts(rows, kPrompt);
  const auto codes = torch::randint(0, config.image_vocab_size, {rows, config.image_tokens});
  const auto update_images = [&] {
    model->zero_grad();
    corl::rollout::score_images(model, builder, prompts, codes, {}).logp.sum().backward();
  };
  if (!o.profile_update.empty()) {
    model->train();
    update_images();  // warm
    torch::autograd::profiler::RecordProfile trace(o.profile_update);
    update_images();
    return 0;
  }

  // Images: one prompt, G = batch images of it, as a GRPO group.
  corl::rollout::RolloutOptions images;
  images.cfg_weight = o.cfg;
  images.temperature = 1.0;
  if (!o.profile.empty()) {
    images.num_generations = o.batches.back();
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    corl::rollout::roll_images(model, builder, policy.vq, {kPrompt}, images, generator);  // warm
    torch::autograd::profiler::RecordProfile trace(o.profile);
    corl::rollout::roll_images(model, builder, policy.vq, {kPrompt}, images, generator);
    return 0;
  }
  json image_times = json::object();
  json generation_times = json::object();
  for (int b : o.batches) {
    images.num_generations = b;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    image_times[std::to_string(b)] = best_of(o.repeats, [&] {
      corl::rollout::roll_images(model, builder, policy.vq, {kPrompt}, images, generator);
    });
  }
  out["image_seconds"] = image_times;
  // The sampling alone (what the decode step's share of the memory bandwidth is drawn from), and
  // on CUDA the same without a CUDA graph at the largest batch.
  corl::model::ImageSamplingOptions sampling;
  sampling.cfg_weight = o.cfg;
  sampling.temperature = 1.0;
  const auto generation = [&](int b, bool graphs) {
    sampling.cuda_graphs = graphs;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    const std::vector<std::string> group(b, kPrompt);
    return best_of(o.repeats, [&] {
      corl::model::generate_images(model, builder, group, sampling, generator);
    });
  };
  for (int b : o.batches) generation_times[std::to_string(b)] = generation(b, true);
  out["generation_seconds"] = generation_times;
  if (device.is_cuda()) {
    out["generation_seconds_eager"] = {
        {std::to_string(o.batches.back()), generation(o.batches.back(), false)}};
  }

  // Answers: G = batch answers to one image and question, none ending early.
  corl::rollout::RolloutOptions answers;
  answers.temperature = 1.0;
  answers.max_completion_length = o.answer_tokens;
  json answer_times = json::object();
  double largest = 0;
  int64_t produced = 0;
  for (int b : o.batches) {
    answers.num_generations = b;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(0);
    largest = best_of(o.repeats, [&] {
      const auto rolled =
          corl::rollout::roll_answers(model, builder, {image}, {kQuestion}, answers, generator);
      produced = 0;
      for (auto length : rolled.lengths) produced += length;
    });
    answer_times[std::to_string(b)] = largest;
  }
  const int64_t wanted = static_cast<int64_t>(o.batches.back()) * o.answer_tokens;
  if (produced != wanted) {
    std::fprintf(stderr, "bench_janus: %lld of %lld answer tokens (an <eos> came early)\n",
                 static_cast<long long>(produced), static_cast<long long>(wanted));
  }
  // The marginal rates are fitted by the report over every batch (a least-squares slope with
  // its error), from these times.
  out["answer_seconds"] = answer_times;
  out["answer_tokens_per_s"] = static_cast<double>(wanted) / largest;
  if (!o.update) {
    std::cout << out.dump() << "\n";
    return 0;
  }

  // Update: forward and backward of the rollouts' log-probs at the larger batch.
  model->train();
  const double image_update = best_of(o.repeats, update_images);
  const int64_t image_positions =
      rows *
      (static_cast<int64_t>(builder.text_to_image(kPrompt).ids.size()) + config.image_tokens);
  out["update_image_tokens_per_s"] = image_positions / image_update;

  std::vector<corl::model::Sequence> sequences;
  const auto prefix = builder.image_to_text(image, kQuestion);
  // Answers of plain text (a random id could be an image placeholder): the question's own ids.
  const auto words = policy.text->encode(kQuestion);
  for (int r = 0; r < rows; ++r) {
    std::vector<int64_t> completion;
    for (int t = 0; t < o.answer_tokens; ++t) completion.push_back(words[(r + t) % words.size()]);
    sequences.push_back(builder.with_completion(prefix, completion));
  }
  const double answer_update = best_of(o.repeats, [&] {
    model->zero_grad();
    corl::rollout::score_completions(model, builder, sequences).logp.sum().backward();
  });
  out["update_answer_tokens_per_s"] =
      rows * static_cast<double>(sequences[0].ids.size()) / answer_update;
  std::cout << out.dump() << "\n";
  return 0;
} catch (const std::exception& error) {
  std::fprintf(stderr, "%s\n", error.what());
  return 1;
}
