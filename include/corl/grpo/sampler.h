// The prompts of each generation batch, as TRL's RepeatSampler draws them: without replacement.
// An epoch is one pass over a permutation of the training rows, cut into generation batches of
// `groups` distinct rows (every rank's groups together); the last cut, shorter than a batch, is
// dropped, so an epoch makes floor(rows / groups) generation batches. Each epoch has its own
// permutation, drawn from (seed, epoch) alone: the rows of generation batch b depend on nothing
// but b, so a resumed run draws what an uninterrupted one draws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace corl::grpo {

// Generation batches of `groups` rows one epoch over `rows` rows makes: floor(rows / groups).
int64_t batches_per_epoch(size_t rows, int64_t groups);

// The `groups` rows, distinct, of generation batch `batch` (0-based, counted over epochs), in
// the order the global batch lays out its groups. Throws DataError when rows < groups.
std::vector<int> generation_rows(int seed, size_t rows, int64_t groups, int64_t batch);

// Optimizer updates of `epochs` passes (TRL's num_train_epochs, which may be fractional) of
// `per_epoch` generation batches, each trained on `iterations` (mu) times:
// ceil(epochs x per_epoch x iterations), TRL's max_steps for max_steps -1.
int64_t updates_of_epochs(double epochs, int64_t per_epoch, int iterations);

}  // namespace corl::grpo
