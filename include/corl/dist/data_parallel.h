// How a GRPO step's global batch is shared between data-parallel ranks, and the recipe keys
// (dist.*) of the communication.
//
// A step's global batch (TRL's generation batch) is grpo::groups_per_rank x world_size groups
// (per_device_train_batch_size completions x gradient_accumulation_steps micro-steps / G a rank),
// drawn as a single process with that batch would draw them. Rank r rolls out groups r, r + W, r + 2W, ... (round
// robin, W the world size): a group is never split, so its advantages need no communication.
// The micro-batches of gradient accumulation are those of the single process, over the global
// batch's kept groups; each rank trains on its members of each, and the loss divides by the
// whole step's counts over every rank (grpo/loss.h). Summing the ranks' gradients then gives
// the single-process gradient, up to float reassociation (bnpo aside: its normaliser is each
// rank's own tokens, as TRL's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "corl/config/schema.h"

namespace corl::dist {

struct DistSection {
  std::string backend = "auto";  // auto | gloo | nccl
  int timeout_s = 300;           // rendezvous and every collective
  double bucket_mb = 25.0;       // gradient all-reduce bucket size
  bool check_weights = false;    // compare every rank's weights with rank 0's after each update
  int zero_stage = 0;            // 0: replicated; 1: sharded AdamW moments; 2: and gradients
};
void bind(config::Schema& schema, DistSection& dist);  // keys dist.*

// The global group indices rank `rank` of `world` rolls out, in its local order: group
// j * world + rank is its j-th.
std::vector<int64_t> rank_groups(int64_t per_rank, int rank, int world);

// Micro-batches over the global batch's groups, kept[g] != 0 for the groups trained on:
// min(accumulation, kept groups) runs of consecutive kept groups, as a single process splits
// its batch. Each entry lists global group indices.
std::vector<std::vector<int64_t>> micro_batches(const std::vector<int64_t>& kept, int accumulation);

}  // namespace corl::dist
