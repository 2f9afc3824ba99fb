// CUDA graphs for decoding steps. A generation's decoding step (embed the drawn token, the
// decoder through a static KV cache, the head, guidance, sampling from pre-drawn uniforms) has the
// same shapes and addresses at every position, so on a CUDA device it is captured once and
// replayed for every later position: one launch per step instead of one per operator, and no
// host round-trip. Where a graph cannot be used (the host, a build without CUDA, a capture that
// fails), the step runs eagerly and the reason is logged once.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

namespace corl::model {

// Whether a generation's decoding steps run as a captured CUDA graph, and if not, why.
struct DecodePlan {
  bool graph = false;
  bool on_cuda = false;  // the model is on a CUDA device: a reason not to graph is worth a log line
  std::string reason;    // why not, when not
};

// True in a build whose LibTorch has CUDA (the graph code compiled in); a CPU-only LibTorch leaves
// it out.
bool cuda_graphs_built();

// The plan for a model on `device`: graphs when wanted (SamplingOptions::cuda_graphs), decoding
// through the cache (a recomputed sequence grows every step) and the device is a CUDA one in a
// build that has them.
DecodePlan plan_decode(torch::Device device, bool wanted, bool use_cache);

// Logs `message` as a warning the first time this process gives it; returns whether it did.
bool log_once(const std::string& message);

// Runs one generation's decoding steps. Without a graph plan, each call runs the step. With one:
// the first call runs it eagerly (every lazy initialisation, cuBLAS handles and autocast's cast
// weights among them, happens outside the capture), the second captures it and replays the
// capture, every later call replays. A capture that fails is logged once and the steps go on
// eagerly. The step must read and write only tensors that outlive the runner, at addresses fixed
// before the second call, and change no host state that a replay would have to repeat.
// While a graph plan's runner lives, the current CUDA stream is a side stream (captures cannot be
// made on the default one), ordered after and before the caller's.
class StepRunner {
 public:
  StepRunner(const DecodePlan& plan, std::string what);
  ~StepRunner();
  StepRunner(const StepRunner&) = delete;
  StepRunner& operator=(const StepRunner&) = delete;
  void operator()(const std::function<void()>& step);
  // Whether the steps replay a captured graph (after the second call).
  bool replaying() const;

 private:
  struct Graph;  // the CUDA part; absent without a graph plan
  std::unique_ptr<Graph> graph_;
};

}  // namespace corl::model
