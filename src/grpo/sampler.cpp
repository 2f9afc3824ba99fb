#include "corl/grpo/sampler.h"

#include <cmath>
#include <random>
#include <string>

#include "corl/data/dataset.h"  // defines: split_seed
#include "corl/util/error.h"

namespace corl::grpo {

int64_t batches_per_epoch(size_t rows, int64_t groups) {
  return static_cast<int64_t>(rows) / groups;
}

std::vector<int> generation_rows(int seed, size_t rows, int64_t groups, int64_t batch) {
  const int64_t per_epoch = batches_per_epoch(rows, groups);
  if (per_epoch == 0) {
    throw DataError("the training data has " + std::to_string(rows) +
                    " rows, fewer than the " + std::to_string(groups) +
                    " distinct prompts of one generation batch (groups per rank x ranks)");
  }
  const int64_t epoch = batch / per_epoch;
  // Fisher-Yates with the generator's raw draws, so that the permutation is the same with every
  // standard library.
  std::mt19937_64 rng(data::split_seed(seed, "grpo/epoch/" + std::to_string(epoch)));
  std::vector<int> order(rows);
  for (size_t i = 0; i < rows; ++i) order[i] = static_cast<int>(i);
  for (size_t i = rows - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);
  const auto first = order.begin() + (batch % per_epoch) * groups;
  return {first, first + groups};
}

int64_t updates_of_epochs(double epochs, int64_t per_epoch, int iterations) {
  return static_cast<int64_t>(std::ceil(epochs * static_cast<double>(per_epoch * iterations)));
}

}  // namespace corl::grpo
