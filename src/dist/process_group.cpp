#include "corl/dist/process_group.h"

#include <cstdlib>
#include <stdexcept>
#include <torch/csrc/distributed/c10d/Backend.hpp>  // defines: c10d::Backend, Work
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#ifdef CORL_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef CORL_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "corl/util/error.h"
#include "corl/util/log.h"

namespace corl::dist {
namespace {

int env_int(const char* name, int fallback, int low, int high) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < low || value > high) {
    throw UsageError(std::string("environment variable ") + name + "=" + text +
                     ": expected an integer in [" + std::to_string(low) + ", " +
                     std::to_string(high) + "]");
  }
  return static_cast<int>(value);
}

// c10's errors carry a C++ backtrace in what(); a user needs the first line.
std::string reason(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

std::string seconds(std::chrono::milliseconds timeout) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", timeout.count() / 1000.0);
  return text;
}

}  // namespace

RankEnv rank_env() {
  RankEnv env;
  const char* world = std::getenv("WORLD_SIZE");
  if (world == nullptr || *world == '\0') {
    if (std::getenv("RANK") != nullptr) {
      throw UsageError(
          "environment variable RANK is set but WORLD_SIZE is not; a launcher sets "
          "both (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)");
    }
    return env;
  }
  env.launched = true;
  env.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  env.rank = env_int("RANK", -1, 0, env.world_size - 1);
  if (env.rank < 0) {
    throw UsageError("environment variable WORLD_SIZE=" + std::to_string(env.world_size) +
                     " is set but RANK is not");
  }
  env.local_rank = env_int("LOCAL_RANK", env.rank, 0, 1 << 20);
  env.master_port = env_int("MASTER_PORT", env.master_port, 1, 65535);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') {
    env.master_addr = addr;
  } else if (env.world_size > 1) {
    throw UsageError("environment variable MASTER_ADDR is not set: rank " +
                     std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                     " cannot find rank 0");
  }
  return env;
}

std::string resolve_backend(const std::string& backend, bool cuda) {
  if (backend == "auto") return cuda ? "nccl" : "gloo";
  return backend;
}

bool backend_built(const std::string& backend) {
#ifdef CORL_HAVE_GLOO
  if (backend == "gloo") return true;
#endif
#ifdef CORL_HAVE_NCCL
  if (backend == "nccl") return true;
#endif
  return false;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

ProcessGroup::ProcessGroup() : backend_name_("none"), timeout_(0) {}

ProcessGroup::ProcessGroup(const RankEnv& env, const std::string& backend,
                           std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()),
      rank_(env.rank),
      world_size_(env.world_size),
      backend_name_(backend),
      device_(backend == "nccl" ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(
                                                                  env.local_rank))
                                : torch::Device(torch::kCPU)),
      timeout_(timeout) {
  if (!backend_built(backend)) {
    throw UsageError("dist.backend " + backend + ": this build of corl has no " + backend +
                     (backend == "gloo" ? " (Gloo's headers, Debian's libgloo-dev, were missing "
                                          "when it was configured)"
                                        : " (it needs a CUDA LibTorch and nccl.h)"));
  }
  const std::string where = "rank " + std::to_string(rank_) + " of " + std::to_string(world_size_) +
                            " at " + env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = rank_ == 0;
    options.numWorkers = world_size_;
    options.waitWorkers = true;  // rank 0 returns only once every rank has connected
    options.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  } catch (const std::exception& e) {
    throw DataError("dist: " + where + ": not every rank arrived within dist.timeout_s (" +
                    seconds(timeout) + "): " + reason(e));
  }
  // One key space per backend, as torch.distributed does for its default group.
  auto store = c10::make_intrusive<c10d::PrefixStore>("corl/" + backend, impl_->store);
  try {
#ifdef CORL_HAVE_GLOO
    if (backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // Bind where the peers can reach this rank: GLOO_SOCKET_IFNAME's interface when set (as in
      // torch.distributed), the loopback for single-host jobs, else this host's name.
      const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
      if (interface != nullptr && *interface != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
      } else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl_->backend =
          c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank_, world_size_, options);
    }
#endif
#ifdef CORL_HAVE_NCCL
    if (backend == "nccl") {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl_->backend =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, world_size_, options);
    }
#endif
  } catch (const std::exception& e) {
    throw DataError("dist: " + where + ": could not connect the " + backend + " group within " +
                    seconds(timeout) + ": " + reason(e));
  }
}

ProcessGroup::~ProcessGroup() {
  // A normal exit shuts the backend down (NCCL's communicators; a no-op for Gloo) rather than
  // leaving it to the destructor, which warns and may hang on a communicator still in use.
  if (!impl_ || !impl_->backend) return;
  try {
    impl_->backend->shutdown();
  } catch (const std::exception& e) {
    log::warn("dist: rank " + std::to_string(rank_) + ": shutting the " + backend_name_ +
              " backend down failed: " + e.what());
  }
}

namespace {

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works, const std::string& what, int rank,
              std::chrono::milliseconds timeout) {
  try {
    for (auto& work : works) work->wait(timeout);
  } catch (const std::exception& e) {
    throw DataError("dist: rank " + std::to_string(rank) + ": " + what +
                    " failed (a peer died or stalled past dist.timeout_s, " + seconds(timeout) +
                    "): " + reason(e));
  }
}

}  // namespace

namespace {

// What a collective hands its backend: `t` itself when it already lies, contiguous, on the
// backend's device, else a copy there. The one place tensors cross to the backend's device.
torch::Tensor on_device(const torch::Tensor& t, const torch::Device& device) {
  return t.to(device).contiguous();
}

// A collective's result returned to the caller's tensor, when it was staged in a copy (moved to
// the caller's device first: not every backend's device copies into another device's tensor).
void give_back(torch::Tensor& caller, const torch::Tensor& staged) {
  if (!staged.is_same(caller)) caller.copy_(staged.to(caller.device()));
}

}  // namespace

void ProcessGroup::wrap_backend(const BackendWrapper& wrap, torch::Device device) {
  if (impl_ && impl_->backend) impl_->backend = wrap(impl_->backend);
  device_ = device;
}

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  if (world_size_ == 1) return;
  std::vector<torch::Tensor> staged;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : tensors) {
    staged.push_back(on_device(t, device_));
    std::vector<at::Tensor> one{staged.back()};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    works.push_back(impl_->backend->allreduce(one, options));
  }
  wait_all(works, "all-reduce", rank_, timeout_);
  for (size_t i = 0; i < tensors.size(); ++i) give_back(tensors[i], staged[i]);
}

void ProcessGroup::all_reduce_max(torch::Tensor& tensor) {
  if (world_size_ == 1) return;
  const auto staged = on_device(tensor, device_);
  std::vector<at::Tensor> one{staged};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->backend->allreduce(one, options)};
  wait_all(works, "all-reduce", rank_, timeout_);
  give_back(tensor, staged);
}

torch::Tensor ProcessGroup::all_gather(const torch::Tensor& tensor) {
  if (world_size_ == 1) return tensor.unsqueeze(0);
  const auto input = on_device(tensor, device_);
  std::vector<at::Tensor> outputs;
  for (int r = 0; r < world_size_; ++r) outputs.push_back(torch::empty_like(input));
  std::vector<std::vector<at::Tensor>> output_lists{outputs};
  std::vector<at::Tensor> inputs{input};
  std::vector<c10::intrusive_ptr<c10d::Work>> works{
      impl_->backend->allgather(output_lists, inputs)};
  wait_all(works, "all-gather", rank_, timeout_);
  return torch::stack(output_lists[0]).to(tensor.device());
}

void ProcessGroup::broadcast(torch::Tensor& tensor, int root) {
  if (world_size_ == 1) return;
  const auto staged = on_device(tensor, device_);
  std::vector<at::Tensor> one{staged};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->backend->broadcast(one, options)};
  wait_all(works, "broadcast", rank_, timeout_);
  give_back(tensor, staged);
}

void ProcessGroup::reduce_scatter_sum(torch::Tensor& input, torch::Tensor& output) {
  if (world_size_ == 1) {
    output.copy_(input);
    return;
  }
  auto in = on_device(input, device_);
  auto out = on_device(output, device_);
  c10d::ReduceScatterOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  std::vector<c10::intrusive_ptr<c10d::Work>> works{
      impl_->backend->_reduce_scatter_base(out, in, options)};
  wait_all(works, "reduce-scatter", rank_, timeout_);
  give_back(output, out);
}

void ProcessGroup::all_gather_into(torch::Tensor& output, torch::Tensor& input) {
  if (world_size_ == 1) {
    output.copy_(input);
    return;
  }
  auto in = on_device(input, device_);
  auto out = on_device(output, device_);
  std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->backend->_allgather_base(out, in)};
  wait_all(works, "all-gather", rank_, timeout_);
  give_back(output, out);
}

void ProcessGroup::barrier() {
  if (world_size_ == 1) return;
  std::vector<c10::intrusive_ptr<c10d::Work>> works{impl_->backend->barrier()};
  wait_all(works, "barrier", rank_, timeout_);
}

void all_reduce_gradients(ProcessGroup& group, const std::vector<torch::Tensor>& parameters,
                          int64_t bucket_bytes) {
  if (group.world_size() == 1) return;
  std::vector<torch::Tensor> trained;
  for (const auto& p : parameters) {
    if (p.requires_grad()) trained.push_back(p);
  }
  if (trained.empty()) return;
  const auto device = trained.front().device();
  // Which parameters any rank has a gradient for: one small collective per update.
  auto has = torch::zeros({static_cast<int64_t>(trained.size())},
                          torch::TensorOptions().dtype(torch::kInt32).device(device));
  {
    std::vector<int32_t> local(trained.size());
    for (size_t i = 0; i < trained.size(); ++i) local[i] = trained[i].grad().defined();
    has.copy_(torch::tensor(local, torch::kInt32));
  }
  group.all_reduce_max(has);
  const auto any = has.to(torch::kCPU);
  std::vector<torch::Tensor> grads;
  for (size_t i = 0; i < trained.size(); ++i) {
    if (any[i].item<int32_t>() == 0) continue;
    auto& p = trained[i];
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  // Buckets of consecutive gradients of one dtype, flattened so that a collective moves
  // bucket_bytes at a time instead of one small tensor per parameter.
  std::vector<std::vector<torch::Tensor>> buckets;
  std::vector<torch::Tensor> flat;
  int64_t bytes = 0;
  for (const auto& g : grads) {
    const int64_t size = g.numel() * static_cast<int64_t>(g.element_size());
    if (buckets.empty() || bytes + size > bucket_bytes ||
        buckets.back().front().scalar_type() != g.scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(g);
    bytes += size;
  }
  for (const auto& bucket : buckets) {
    std::vector<torch::Tensor> views;
    for (const auto& g : bucket) views.push_back(g.reshape(-1));
    flat.push_back(torch::cat(views));
  }
  group.all_reduce_sum(flat);
  for (size_t b = 0; b < buckets.size(); ++b) {
    int64_t offset = 0;
    for (auto& g : buckets[b]) {
      g.copy_(flat[b].narrow(0, offset, g.numel()).view_as(g));
      offset += g.numel();
    }
  }
}

torch::Tensor gather_ragged(ProcessGroup& group, const torch::Tensor& values) {
  // Padded to the longest with a sentinel below any value, then gathered.
  auto width = torch::tensor({static_cast<double>(values.numel())}, torch::kDouble);
  group.all_reduce_max(width);
  const auto n = static_cast<int64_t>(width.item<double>());
  if (n == 0) return torch::zeros({0}, torch::kDouble);  // every rank sees the same n
  constexpr double kSentinel = -1e300;
  auto padded = torch::full({n}, kSentinel, torch::kDouble);
  padded.narrow(0, 0, values.numel()).copy_(values.to(torch::kDouble).reshape(-1));
  const auto all = group.all_gather(padded).reshape(-1);
  return all.masked_select(all.gt(kSentinel));
}

int64_t first_differing_parameter(ProcessGroup& group,
                                  const std::vector<torch::Tensor>& parameters) {
  if (parameters.empty()) return -1;
  std::vector<torch::Tensor> sums;
  for (const auto& p : parameters) {
    const auto bits = p.detach().contiguous().reshape(-1);
    torch::ScalarType as;
    switch (bits.element_size()) {
      case 8:
        as = torch::kInt64;
        break;
      case 4:
        as = torch::kInt32;
        break;
      case 2:
        as = torch::kInt16;
        break;
      default:
        as = torch::kInt8;
        break;
    }
    sums.push_back(bits.view(as).to(torch::kInt64).sum());
  }
  const auto local = torch::stack(sums);
  const auto all = group.all_gather(local).to(torch::kCPU);
  const auto differs = all.ne(all[0].unsqueeze(0)).any(0);
  const auto where = differs.nonzero();
  return where.numel() == 0 ? -1 : where[0][0].item<int64_t>();
}

}  // namespace corl::dist
