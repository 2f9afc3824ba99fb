// ZeRO stages 1 and 2 (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training
// Trillion Parameter Models") over a ProcessGroup: each of W ranks keeps AdamW's moments (stage
// 1) and the reduced gradients (stage 2) of its own 1/W of the trained parameters, updates that
// shard, and all-gathers the weights.
//
// The trained parameters are laid end to end in buckets of about dist.bucket_mb (consecutive
// parameters of one dtype), each padded to a multiple of W; rank r owns elements
// [r n, (r + 1) n) of every bucket of W n elements, whatever parameters they cut through. A
// parameter's part in a shard is trained by LibTorch's own AdamW with the options of the group
// the parameter has in the unsharded optimizer, so the per-element arithmetic is exactly stage
// 0's; only the gradient sum's order can differ.
//
//   stage 1: per bucket, all-reduce the local gradients (every rank then holds the whole
//            reduced gradient in .grad, as stage 0); AdamW's moments are sharded.
//   stage 2: per bucket, reduce-scatter; a rank keeps only its shard of the reduced gradient
//            and frees the local gradients bucket by bucket as they are reduced.
//
// The local gradients themselves are whole while the backward passes accumulate them (the
// reduction runs once per update, after the last micro-batch, not inside the backward pass).
//
// Checkpoints hold the state gathered into the unsharded optimizer's layout (optimizer.pt as
// stage 0 writes it), so a run resumes under any stage and any number of ranks.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "corl/dist/process_group.h"

namespace corl::dist {

class ShardedAdamW {
 public:
  // Shards the parameters of `full` (every group's, in order; each its group's options) over
  // `group`. `full` must outlive this object; it keeps no state of its own between checkpoints
  // and serves gather_state and scatter_state. The parameters must already be equal on every
  // rank (their shards are copied now).
  ShardedAdamW(ProcessGroup& group, torch::optim::AdamW& full, int stage, int64_t bucket_bytes);

  // Sums the ranks' local gradients (.grad of the parameters) into this rank's shard, and
  // clips the shard by the global norm as clip_grad_norm_ clips (max_norm 0: no clipping).
  // Returns the global norm before clipping (not finite: skip the update). A parameter no rank
  // has a gradient for is skipped by AdamW, as a single process skips it. Collective.
  double reduce_gradients(double max_norm);
  // AdamW on this rank's shard at learning rate `lr`, then every rank's weights all-gathered
  // into the parameters. Collective.
  void step(double lr);

  // Fills the unsharded optimizer's state from every rank's shard, on rank 0 only and in host
  // memory (the other ranks take part and keep nothing). Collective.
  void gather_state();
  // Takes this rank's shard of the unsharded optimizer's state (read from a checkpoint by every
  // rank); the caller then clears that state.
  void scatter_state();

  int stage() const { return stage_; }
  // Values of the trained parameters this rank owns (padding included): AdamW keeps two moments
  // of each, stage 2 one reduced gradient.
  int64_t shard_numel() const;

 private:
  struct Bucket {
    std::vector<int64_t> members;  // indices into parameters_
    std::vector<int64_t> offsets;  // each member's first element in the bucket
    int64_t shard = 0;             // elements per rank
    torch::Tensor weights;         // this rank's shard of the bucket's weights [shard]
    torch::Tensor grad;            // this rank's shard of the reduced gradient [shard]
  };
  // A parameter's part in this rank's shard of a bucket.
  struct Piece {
    int64_t parameter = 0;
    int64_t bucket = 0;
    int64_t begin = 0;  // first element in the parameter
    int64_t start = 0;  // first element in the shard
    int64_t length = 0;
    torch::Tensor weight;  // view of the bucket's `weights`: what AdamW updates
  };

  ProcessGroup& group_;
  torch::optim::AdamW& full_;
  int stage_;
  std::vector<torch::Tensor> parameters_;
  std::vector<Bucket> buckets_;
  std::vector<Piece> pieces_;
  std::vector<bool> has_gradient_;  // per parameter, on any rank, at the last reduction
  std::unique_ptr<torch::optim::AdamW> shard_optimizer_;
};

}  // namespace corl::dist
