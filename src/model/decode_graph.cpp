#include "corl/model/decode_graph.h"

#include <mutex>
#include <set>
#include <utility>

#include "corl/util/log.h"

#ifdef CORL_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAEvent.h>                 // defines: at::cuda::CUDAEvent
#include <ATen/cuda/CUDAGraph.h>                 // defines: at::cuda::CUDAGraph
#include <c10/cuda/CUDACachingAllocator.h>       // defines: endAllocateToPool, releasePool
#include <c10/cuda/CUDAGuard.h>                  // defines: c10::cuda::CUDAStreamGuard
#include <c10/cuda/CUDAStream.h>                 // defines: getStreamFromPool, getCurrentCUDAStream
#include <cuda_runtime_api.h>                    // defines: cudaGetLastError
#endif

namespace corl::model {

bool cuda_graphs_built() {
#ifdef CORL_WITH_CUDA_GRAPHS
  return true;
#else
  return false;
#endif
}

DecodePlan plan_decode(torch::Device device, bool wanted, bool use_cache) {
  if (!device.is_cuda()) {
    return {false, false, "the model is on the " + device.str() + ": CUDA graphs are for CUDA devices"};
  }
  if (!wanted) return {false, true, "CUDA graphs are off (cuda_graphs: false)"};
  if (!use_cache) {
    return {false, true, "decoding recomputes the sequence (no KV cache): its shapes grow every step"};
  }
  if (!cuda_graphs_built()) {
    return {false, true, "this build of corl has no CUDA graph support (a LibTorch without CUDA)"};
  }
  return {true, true, ""};
}

bool log_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> said;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    if (!said.insert(message).second) return false;
  }
  log::warn(message);
  return true;
}

#ifdef CORL_WITH_CUDA_GRAPHS

struct StepRunner::Graph {
  explicit Graph(std::string what)
      : what(std::move(what)),
        caller(c10::cuda::getCurrentCUDAStream()),
        side(c10::cuda::getStreamFromPool()),
        guard(side) {
    // The side stream starts after the caller's work (the prefill inputs, the weights) and the
    // caller's resumes after the side stream's (the destructor).
    at::cuda::CUDAEvent ready;
    ready.record(caller);
    ready.block(side);
  }

  ~Graph() {
    at::cuda::CUDAEvent done;
    done.record(side);
    done.block(caller);
  }

  void run(const std::function<void()>& step) {
    ++calls;
    if (failed || calls == 1) {
      step();
      return;
    }
    if (!captured) {
      try {
        graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
        step();
        graph.capture_end();
        captured = true;
      } catch (const std::exception& error) {
        abandon_capture();
        failed = true;
        log_once(what + ": the decoding step could not be captured as a CUDA graph; decoding "
                        "eagerly (" + first_line(error.what()) + ")");
        step();
        return;
      }
    }
    graph.replay();
  }

  // Ends a capture that an exception interrupted, so that the stream and the allocator are usable.
  void abandon_capture() {
    cudaGraph_t partial = nullptr;
    if (cudaStreamEndCapture(side.stream(), &partial) == cudaSuccess && partial != nullptr) {
      cudaGraphDestroy(partial);
    }
    const auto device = side.device_index();
    try {
      c10::cuda::CUDACachingAllocator::endAllocateToPool(device, graph.pool());
      c10::cuda::CUDACachingAllocator::releasePool(device, graph.pool());
    } catch (const std::exception&) {
      // capture_begin itself failed before it allocated to the pool.
    }
    (void)cudaGetLastError();
  }

  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  std::string what;
  c10::cuda::CUDAStream caller;
  c10::cuda::CUDAStream side;
  c10::cuda::CUDAStreamGuard guard;
  at::cuda::CUDAGraph graph;
  int64_t calls = 0;
  bool captured = false;
  bool failed = false;
};

StepRunner::StepRunner(const DecodePlan& plan, std::string what) {
  if (plan.graph) {
    graph_ = std::make_unique<Graph>(std::move(what));
  } else if (plan.on_cuda) {
    log_once(what + ": decoding eagerly, " + plan.reason);
  }
}

#else  // no CUDA LibTorch: every step runs eagerly

struct StepRunner::Graph {
  void run(const std::function<void()>& step) { step(); }
  bool captured = false;
};

StepRunner::StepRunner(const DecodePlan& plan, std::string what) {
  if (plan.on_cuda) log_once(what + ": decoding eagerly, " + plan.reason);
}

#endif

StepRunner::~StepRunner() = default;

void StepRunner::operator()(const std::function<void()>& step) {
  if (graph_) {
    graph_->run(step);
  } else {
    step();
  }
}

bool StepRunner::replaying() const { return graph_ && graph_->captured; }

}  // namespace corl::model
