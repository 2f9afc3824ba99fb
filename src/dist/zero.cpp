#include "corl/dist/zero.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace corl::dist {
namespace {

torch::optim::AdamWOptions& adamw_options(torch::optim::OptimizerParamGroup& group) {
  return static_cast<torch::optim::AdamWOptions&>(group.options());
}

}  // namespace

ShardedAdamW::ShardedAdamW(ProcessGroup& group, torch::optim::AdamW& full, int stage,
                           int64_t bucket_bytes)
    : group_(group), full_(full), stage_(stage) {
  if (stage != 1 && stage != 2) {
    throw std::invalid_argument("ShardedAdamW: stage " + std::to_string(stage) +
                                ", expected 1 or 2");
  }
  const int64_t world = group.world_size();
  const int64_t rank = group.rank();
  std::vector<int64_t> group_of;  // each parameter's group in `full`
  for (size_t g = 0; g < full.param_groups().size(); ++g) {
    for (const auto& p : full.param_groups()[g].params()) {
      parameters_.push_back(p);
      group_of.push_back(static_cast<int64_t>(g));
    }
  }
  // Buckets of consecutive parameters of one dtype, about bucket_bytes each.
  std::vector<int64_t> bucket_numel;
  int64_t bytes = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& p = parameters_[i];
    const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    if (buckets_.empty() || bytes + size > bucket_bytes ||
        parameters_[buckets_.back().members.front()].scalar_type() != p.scalar_type()) {
      buckets_.emplace_back();
      bucket_numel.push_back(0);
      bytes = 0;
    }
    buckets_.back().members.push_back(static_cast<int64_t>(i));
    buckets_.back().offsets.push_back(bucket_numel.back());
    bucket_numel.back() += p.numel();
    bytes += size;
  }
  torch::NoGradGuard no_grad;
  std::vector<std::vector<torch::Tensor>> group_pieces(full.param_groups().size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    auto& bucket = buckets_[b];
    const auto& first = parameters_[bucket.members.front()];
    bucket.shard = (bucket_numel[b] + world - 1) / world;
    bucket.weights = torch::zeros({bucket.shard}, first.options());
    bucket.grad = torch::zeros({bucket.shard}, first.options());
    const int64_t lo = rank * bucket.shard;
    const int64_t hi = lo + bucket.shard;
    for (size_t m = 0; m < bucket.members.size(); ++m) {
      const int64_t index = bucket.members[m];
      const auto& p = parameters_[index];
      const int64_t begin = std::max(lo, bucket.offsets[m]);
      const int64_t end = std::min(hi, bucket.offsets[m] + p.numel());
      if (begin >= end) continue;
      Piece piece;
      piece.parameter = index;
      piece.bucket = static_cast<int64_t>(b);
      piece.begin = begin - bucket.offsets[m];
      piece.start = begin - lo;
      piece.length = end - begin;
      piece.weight = bucket.weights.narrow(0, piece.start, piece.length);
      piece.weight.copy_(p.detach().reshape(-1).narrow(0, piece.begin, piece.length));
      group_pieces[group_of[index]].push_back(piece.weight);
      pieces_.push_back(piece);
    }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (size_t g = 0; g < full.param_groups().size(); ++g) {
    groups.emplace_back(group_pieces[g], std::make_unique<torch::optim::AdamWOptions>(
                                             adamw_options(full.param_groups()[g])));
  }
  shard_optimizer_ = std::make_unique<torch::optim::AdamW>(
      std::move(groups), static_cast<const torch::optim::AdamWOptions&>(full.defaults()));
  has_gradient_.assign(parameters_.size(), false);
}

int64_t ShardedAdamW::shard_numel() const {
  int64_t n = 0;
  for (const auto& bucket : buckets_) n += bucket.shard;
  return n;
}

double ShardedAdamW::reduce_gradients(double max_norm) {
  torch::NoGradGuard no_grad;
  const int world = group_.world_size();
  const int rank = group_.rank();
  if (parameters_.empty()) return 0.0;
  const auto device = parameters_.front().device();
  // Which parameters any rank has a gradient for: one small collective per update.
  std::vector<int32_t> local(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i) local[i] = parameters_[i].grad().defined();
  auto has = torch::tensor(local, torch::kInt32).to(device);
  group_.all_reduce_max(has);
  const auto any = has.to(torch::kCPU);
  const auto* flags = any.data_ptr<int32_t>();
  for (size_t i = 0; i < parameters_.size(); ++i) has_gradient_[i] = flags[i] != 0;

  // One bucket at a time, so that the reduction needs one bucket of memory beyond the gradients.
  for (auto& bucket : buckets_) {
    auto flat = torch::zeros({bucket.shard * world}, bucket.grad.options());
    for (size_t m = 0; m < bucket.members.size(); ++m) {
      auto& p = parameters_[bucket.members[m]];
      if (!p.grad().defined()) continue;
      flat.narrow(0, bucket.offsets[m], p.numel()).copy_(p.grad().reshape(-1));
      if (stage_ == 2) p.mutable_grad() = torch::Tensor();
    }
    if (stage_ == 2) {
      group_.reduce_scatter_sum(flat, bucket.grad);
    } else {
      std::vector<torch::Tensor> one{flat};
      group_.all_reduce_sum(one);
      bucket.grad.copy_(flat.narrow(0, rank * bucket.shard, bucket.shard));
      for (size_t m = 0; m < bucket.members.size(); ++m) {
        auto& p = parameters_[bucket.members[m]];
        if (!has_gradient_[bucket.members[m]]) continue;
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        p.mutable_grad().copy_(flat.narrow(0, bucket.offsets[m], p.numel()).view_as(p));
      }
    }
  }
  // The global norm from every rank's shard (padding and absent gradients are zeros).
  auto squares = torch::zeros({1}, torch::TensorOptions().dtype(torch::kDouble).device(device));
  for (const auto& bucket : buckets_) squares += bucket.grad.to(torch::kDouble).pow(2).sum();
  std::vector<torch::Tensor> total{squares};
  group_.all_reduce_sum(total);
  const double norm = std::sqrt(total[0].item<double>());
  if (max_norm > 0.0 && std::isfinite(norm)) {
    // clip_grad_norm_'s rule: scale by min(1, max_norm / (norm + 1e-6)).
    const double coefficient = max_norm / (norm + 1e-6);
    if (coefficient < 1.0) {
      for (auto& bucket : buckets_) bucket.grad.mul_(coefficient);
    }
  }
  return norm;
}

void ShardedAdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  for (auto& group : shard_optimizer_->param_groups()) adamw_options(group).lr(lr);
  for (auto& piece : pieces_) {
    piece.weight.mutable_grad() =
        has_gradient_[piece.parameter]
            ? buckets_[piece.bucket].grad.narrow(0, piece.start, piece.length)
            : torch::Tensor();
  }
  shard_optimizer_->step();
  for (auto& piece : pieces_) piece.weight.mutable_grad() = torch::Tensor();
  const int world = group_.world_size();
  for (auto& bucket : buckets_) {
    auto flat = torch::empty({bucket.shard * world}, bucket.weights.options());
    group_.all_gather_into(flat, bucket.weights);
    for (size_t m = 0; m < bucket.members.size(); ++m) {
      auto& p = parameters_[bucket.members[m]];
      p.view(-1).copy_(flat.narrow(0, bucket.offsets[m], p.numel()));
    }
  }
}

void ShardedAdamW::gather_state() {
  torch::NoGradGuard no_grad;
  const int world = group_.world_size();
  const bool root = group_.rank() == 0;
  if (parameters_.empty()) return;
  const auto device = parameters_.front().device();
  // A parameter's step count, from the rank holding its first element (every piece of a
  // parameter is updated together, so they agree).
  auto steps = torch::zeros({static_cast<int64_t>(parameters_.size())},
                            torch::TensorOptions().dtype(torch::kInt64));
  for (const auto& piece : pieces_) {
    if (piece.begin != 0) continue;
    auto it = shard_optimizer_->state().find(piece.weight.unsafeGetTensorImpl());
    if (it == shard_optimizer_->state().end()) continue;
    steps[piece.parameter] = static_cast<torch::optim::AdamWParamState&>(*it->second).step();
  }
  std::vector<torch::Tensor> total{steps.to(device)};
  group_.all_reduce_sum(total);
  steps = total[0].to(torch::kCPU);
  auto& state = full_.state();
  state.clear();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    auto& bucket = buckets_[b];
    auto exp_avg = torch::zeros({bucket.shard}, bucket.weights.options());
    auto exp_avg_sq = torch::zeros({bucket.shard}, bucket.weights.options());
    for (const auto& piece : pieces_) {
      if (piece.bucket != static_cast<int64_t>(b)) continue;
      auto it = shard_optimizer_->state().find(piece.weight.unsafeGetTensorImpl());
      if (it == shard_optimizer_->state().end()) continue;
      const auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      exp_avg.narrow(0, piece.start, piece.length).copy_(s.exp_avg().reshape(-1));
      exp_avg_sq.narrow(0, piece.start, piece.length).copy_(s.exp_avg_sq().reshape(-1));
    }
    auto all_avg = torch::empty({bucket.shard * world}, exp_avg.options());
    auto all_avg_sq = torch::empty({bucket.shard * world}, exp_avg.options());
    group_.all_gather_into(all_avg, exp_avg);
    group_.all_gather_into(all_avg_sq, exp_avg_sq);
    if (!root) continue;
    all_avg = all_avg.to(torch::kCPU);
    all_avg_sq = all_avg_sq.to(torch::kCPU);
    for (size_t m = 0; m < bucket.members.size(); ++m) {
      const int64_t index = bucket.members[m];
      const int64_t step = steps[index].item<int64_t>();
      if (step == 0) continue;  // never updated: no state, as in the unsharded optimizer
      const auto& p = parameters_[index];
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(step);
      s->exp_avg(all_avg.narrow(0, bucket.offsets[m], p.numel()).view(p.sizes()).clone());
      s->exp_avg_sq(all_avg_sq.narrow(0, bucket.offsets[m], p.numel()).view(p.sizes()).clone());
      state[p.unsafeGetTensorImpl()] = std::move(s);
    }
  }
}

void ShardedAdamW::scatter_state() {
  torch::NoGradGuard no_grad;
  auto& shard_state = shard_optimizer_->state();
  shard_state.clear();
  for (const auto& piece : pieces_) {
    const auto& p = parameters_[piece.parameter];
    auto it = full_.state().find(p.unsafeGetTensorImpl());
    if (it == full_.state().end()) continue;
    const auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    auto mine = std::make_unique<torch::optim::AdamWParamState>();
    mine->step(s.step());
    auto part = [&](const torch::Tensor& whole) {
      return whole.reshape(-1).narrow(0, piece.begin, piece.length).to(p.device()).clone();
    };
    mine->exp_avg(part(s.exp_avg()));
    mine->exp_avg_sq(part(s.exp_avg_sq()));
    shard_state[piece.weight.unsafeGetTensorImpl()] = std::move(mine);
  }
}

}  // namespace corl::dist
