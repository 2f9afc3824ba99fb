// dist_check: the data-parallel process group, checked against single-process arithmetic.
//
//   dist_check --backend gloo --nproc 2     # two local CPU ranks
//   dist_check --backend nccl --nproc 1     # one GPU (scripts/dist_check_gpu.sh)
//   RANK=.. WORLD_SIZE=.. MASTER_ADDR=.. MASTER_PORT=.. dist_check ...   # any launcher
//
// Each rank checks all-reduce, all-gather and broadcast against their closed forms, and the
// bucketed gradient all-reduce against the gradient of the whole batch computed alone: a small
// MLP, each rank's loss normalised by the global sample count, so the summed gradients must be
// the single-process gradient. --exit-rank R makes rank R die once the group is formed, to show
// that the others stop with an error within --timeout instead of hanging; --hold S keeps every
// rank alive S seconds after its checks, to show that the ranks end with a killed launcher.
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "corl/dist/launch.h"
#include "corl/dist/process_group.h"
#include "corl/util/error.h"

namespace {

using corl::dist::ProcessGroup;

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("check failed: " + what);
}

double max_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kDouble) - b.to(torch::kCPU, torch::kDouble))
      .abs()
      .max()
      .item<double>();
}

void check_collectives(ProcessGroup& group, const torch::Device& device) {
  const int W = group.world_size();
  const int r = group.rank();
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  std::vector<torch::Tensor> sums{torch::full({1000}, r + 1.0, opts),
                                  torch::arange(5, opts) * (r + 1)};
  group.all_reduce_sum(sums);
  const double triangle = W * (W + 1) / 2.0;
  expect(max_difference(sums[0], torch::full({1000}, triangle)) == 0.0, "all-reduce of constants");
  expect(max_difference(sums[1], torch::arange(5) * triangle) == 0.0, "all-reduce of a range");

  auto mx = torch::tensor({r, -r}, torch::TensorOptions().dtype(torch::kInt32).device(device));
  group.all_reduce_max(mx);
  expect(mx[0].item<int>() == W - 1 && mx[1].item<int>() == 0, "all-reduce max");

  const auto gathered = group.all_gather(torch::tensor({1.0f * r, 2.0f * r}, opts));
  for (int q = 0; q < W; ++q) {
    expect(gathered[q][0].item<float>() == q && gathered[q][1].item<float>() == 2 * q,
           "all-gather row " + std::to_string(q));
  }
  auto b = r == 0 ? torch::arange(7, opts) : torch::zeros({7}, opts);
  group.broadcast(b, 0);
  expect(max_difference(b, torch::arange(7)) == 0.0, "broadcast from rank 0");
  group.barrier();
}

struct Mlp : torch::nn::Module {
  Mlp() {
    first = register_module("first", torch::nn::Linear(16, 64));
    second = register_module("second", torch::nn::Linear(64, 4));
    // Reached only by rank 0's samples: its gradient exists on one rank only.
    rank0_only = register_module("rank0_only", torch::nn::Linear(4, 4));
  }
  torch::nn::Linear first{nullptr}, second{nullptr}, rank0_only{nullptr};
};

// Loss of samples [begin, end) of the batch, normalised by `count` (the whole batch's).
torch::Tensor shard_loss(Mlp& m, const torch::Tensor& x, const torch::Tensor& y, int64_t begin,
                         int64_t end, double count, bool with_rank0_head) {
  auto h = m.second(torch::tanh(m.first(x.narrow(0, begin, end - begin))));
  if (with_rank0_head) h = m.rank0_only(h);
  return (h - y.narrow(0, begin, end - begin)).pow(2).sum() / count;
}

void check_gradients(ProcessGroup& group, const torch::Device& device, int64_t bucket_bytes) {
  const int W = group.world_size();
  const int r = group.rank();
  torch::manual_seed(7);  // the same weights and batch on every rank
  Mlp mine, alone;
  mine.to(device);
  alone.to(device);
  {
    torch::NoGradGuard no_grad;
    auto a = alone.parameters();
    auto p = mine.parameters();
    for (size_t i = 0; i < p.size(); ++i) a[i].copy_(p[i]);
  }
  const int64_t per_rank = 5;
  const int64_t n = per_rank * W;
  const auto x = torch::randn({n, 16}).to(device);
  const auto y = torch::randn({n, 4}).to(device);
  // Single process: the whole batch, rank 0's samples through the extra head as on rank 0.
  (shard_loss(alone, x, y, 0, per_rank, n, true) + shard_loss(alone, x, y, per_rank, n, n, false))
      .backward();
  shard_loss(mine, x, y, r * per_rank, (r + 1) * per_rank, n, r == 0).backward();
  corl::dist::all_reduce_gradients(group, mine.parameters(), bucket_bytes);
  const auto p = mine.parameters();
  const auto a = alone.parameters();
  for (size_t i = 0; i < p.size(); ++i) {
    expect(p[i].grad().defined(), "gradient " + std::to_string(i) + " defined after all-reduce");
    const double scale = std::max(1e-12, a[i].grad().abs().max().item<double>());
    const double error = max_difference(p[i].grad(), a[i].grad()) / scale;
    expect(error < 1e-5, "gradient " + std::to_string(i) + " relative error " +
                             std::to_string(error) + " against the single-process gradient");
  }
  expect(corl::dist::first_differing_parameter(group, p) == -1, "weights identical on all ranks");
  if (W > 1) {
    torch::NoGradGuard no_grad;
    if (r == W - 1) p[2].view(-1)[3].add_(1e-6);
    expect(corl::dist::first_differing_parameter(group, p) == 2,
           "a changed weight on the last rank is found");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dist_check: checks the data-parallel process group", "dist_check"};
  std::string backend = "gloo";
  int nproc = 0;
  double timeout_s = 60;
  int exit_rank = -1;
  double bucket_kb = 4;
  app.add_option("--backend", backend, "gloo or nccl")->check(CLI::IsMember({"gloo", "nccl"}));
  app.add_option("--nproc", nproc, "Start this many local ranks");
  app.add_option("--timeout", timeout_s, "Seconds for the rendezvous and every collective");
  app.add_option("--exit-rank", exit_rank, "This rank dies once the group is formed");
  app.add_option("--bucket-kb", bucket_kb, "Gradient bucket size (small: several buckets)");
  double hold_s = 0;
  app.add_option("--hold", hold_s, "Seconds every rank waits after its checks before it exits");
  CLI11_PARSE(app, argc, argv);
  try {
    if (nproc > 0 && std::getenv(corl::dist::kLaunchedVariable) == nullptr) {
      return corl::dist::launch_local(
          nproc, corl::dist::without_nproc(std::vector<std::string>(argv + 1, argv + argc)));
    }
    torch::set_num_threads(1);
    const auto env = corl::dist::rank_env();
    const torch::Device device = backend == "nccl" ? torch::Device(torch::kCUDA, env.local_rank)
                                                   : torch::Device(torch::kCPU);
    const auto start = std::chrono::steady_clock::now();
    ProcessGroup group(env, backend,
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    if (group.rank() == exit_rank) {
      std::fprintf(stderr, "dist_check: rank %d exits as asked\n", exit_rank);
      ::_exit(3);
    }
    check_collectives(group, device);
    check_gradients(group, device, static_cast<int64_t>(bucket_kb * 1024));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "dist_check: rank %d of %d (%s, %s): collectives and gradient all-reduce ok "
        "(%.2f s)\n",
        group.rank(), group.world_size(), backend.c_str(), device.str().c_str(), seconds);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(hold_s));
    return 0;
  } catch (const corl::UsageError& e) {
    std::fprintf(stderr, "dist_check: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_check: %s\n", e.what());
    return 1;
  }
}
