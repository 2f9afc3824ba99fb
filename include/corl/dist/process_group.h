// Data-parallel communication over LibTorch's c10d: Gloo between CPU processes, NCCL between
// GPUs. Ranks find each other as torchrun's do, from RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR
// and MASTER_PORT, through a c10d TCPStore served by rank 0; so torchrun, Slurm scripts that
// export those variables, and `corl train --nproc N` all start the same program.
//
// Every collective and the rendezvous itself are bounded by one timeout: a peer that never
// arrives or a rank that dies ends the others with an error naming the rank, the address and
// the timeout, never a hang.
//
// The group owns the device its backend needs (NCCL takes CUDA tensors only, Gloo CPU ones):
// every collective moves what it is given there and its results back to where they came from,
// so callers hand it tensors wherever they keep them.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace c10d {
class Backend;
}  // namespace c10d

namespace corl::dist {

// Where this process sits in the job, as a launcher describes it.
struct RankEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool launched = false;  // WORLD_SIZE was set: started by a launcher (even with one rank)
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; a single process when WORLD_SIZE
// is unset. Malformed or inconsistent values are a UsageError naming the variable.
RankEnv rank_env();

// "gloo" or "nccl" for a recipe's dist.backend ("auto": nccl when `cuda` is true).
std::string resolve_backend(const std::string& backend, bool cuda);

// Whether this build can make the group at all (Gloo needs Gloo's headers at build time, NCCL
// a CUDA LibTorch and nccl.h).
bool backend_built(const std::string& backend);

class ProcessGroup {
 public:
  // A world of one: every collective leaves its tensors as they are, so one process runs the
  // same code as many.
  ProcessGroup();
  // Rendezvous through the TCPStore at MASTER_ADDR:MASTER_PORT, then the backend's own
  // connections; both within `timeout`, which also bounds every later collective. NCCL's
  // collectives run on the GPU LOCAL_RANK names (where the stage places this rank's policy).
  ProcessGroup(const RankEnv& env, const std::string& backend, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const std::string& backend() const { return backend_name_; }
  // Where the backend takes its tensors: cuda:LOCAL_RANK under NCCL, else the CPU.
  const torch::Device& device() const { return device_; }

  // Puts `wrap(backend)` in the backend's place, taking tensors on `device` (tests: a backend
  // that checks or records what reaches it).
  using BackendWrapper =
      std::function<c10::intrusive_ptr<c10d::Backend>(c10::intrusive_ptr<c10d::Backend>)>;
  void wrap_backend(const BackendWrapper& wrap, torch::Device device);

  // In place, every tensor summed over ranks; all are launched before the first is waited on.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  void all_reduce_max(torch::Tensor& tensor);
  // [world_size, ...]: row r is rank r's `tensor` (same shape on every rank).
  torch::Tensor all_gather(const torch::Tensor& tensor);
  void broadcast(torch::Tensor& tensor, int root);
  // `input` [W * n] summed over ranks, rank r receiving elements [r n, (r + 1) n) in `output`
  // [n] (ZeRO's gradient reduction).
  void reduce_scatter_sum(torch::Tensor& input, torch::Tensor& output);
  // `output` [W * n]: rank r's `input` [n] at [r n, (r + 1) n) (ZeRO's weight gathering).
  void all_gather_into(torch::Tensor& output, torch::Tensor& input);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int world_size_ = 1;
  std::string backend_name_;
  torch::Device device_{torch::kCPU};
  std::chrono::milliseconds timeout_;
};

// Sums the gradients of `parameters` over the group, flattened into buckets of about
// `bucket_bytes` (one collective each, all in flight at once). A gradient some rank has and
// another lacks (a part of the model only its micro-batches reached) counts as zeros there; one
// no rank has stays undefined, so the optimiser skips it as a single process would.
void all_reduce_gradients(ProcessGroup& group, const std::vector<torch::Tensor>& parameters,
                          int64_t bucket_bytes);

// Every rank's values [n_r] (any shape, read flat) as one float64 tensor, rank by rank; the ranks
// may hold different counts. Collective.
torch::Tensor gather_ragged(ProcessGroup& group, const torch::Tensor& values);

// The first parameter (by index) whose bits differ from rank 0's, or -1 when every rank holds
// the same weights: an exact check, the sum of each parameter's bit patterns as integers.
int64_t first_differing_parameter(ProcessGroup& group,
                                  const std::vector<torch::Tensor>& parameters);

}  // namespace corl::dist
