#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "corl/grpo/recipe.h"
#include "corl/grpo/sampler.h"
#include "corl/util/error.h"

namespace corl::grpo {
namespace {

std::multiset<int> rows_of_epoch(int seed, size_t rows, int64_t groups, int64_t epoch) {
  std::multiset<int> seen;
  const int64_t per_epoch = batches_per_epoch(rows, groups);
  for (int64_t b = epoch * per_epoch; b < (epoch + 1) * per_epoch; ++b) {
    for (int r : generation_rows(seed, rows, groups, b)) seen.insert(r);
  }
  return seen;
}

// TRL's RepeatSampler docstring: 7 rows in batches of 3 distinct prompts give [4, 3, 0] and
// [1, 2, 6]; the seventh row waits for another epoch.
TEST(GrpoSampler, AnEpochIsWholeBatchesOfDistinctRows) {
  EXPECT_EQ(batches_per_epoch(7, 3), 2);
  EXPECT_EQ(batches_per_epoch(100, 16), 6);
  EXPECT_EQ(batches_per_epoch(16, 16), 1);
  for (int64_t epoch = 0; epoch < 5; ++epoch) {
    const auto seen = rows_of_epoch(1234, 7, 3, epoch);
    EXPECT_EQ(seen.size(), 6u);
    EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), 6u) << "a row twice in an epoch";
    for (int r : seen) EXPECT_TRUE(r >= 0 && r < 7);
  }
  // Rows a multiple of the batch: every row exactly once an epoch.
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto seen = rows_of_epoch(7, 12, 4, epoch);
    std::multiset<int> all;
    for (int r = 0; r < 12; ++r) all.insert(r);
    EXPECT_EQ(seen, all);
  }
}

TEST(GrpoSampler, EachEpochHasItsOwnOrderAndABatchDependsOnlyOnItsIndex) {
  const auto first = generation_rows(1234, 50, 5, 0);
  EXPECT_EQ(generation_rows(1234, 50, 5, 0), first);  // a resumed run draws the same
  EXPECT_NE(generation_rows(1234, 50, 5, 10), first);  // batch 0 of epoch 1
  EXPECT_NE(generation_rows(99, 50, 5, 0), first);
  // Which rows an epoch leaves out changes from epoch to epoch.
  std::set<std::multiset<int>> epochs;
  for (int64_t epoch = 0; epoch < 6; ++epoch) epochs.insert(rows_of_epoch(3, 7, 3, epoch));
  EXPECT_GT(epochs.size(), 1u);
}

// A uniform permutation puts each row in the first batch with probability groups / rows: over
// 4000 epochs 1200 times for 3 of 10, with a binomial s.d. of 29; five s.d. either way.
TEST(GrpoSampler, EveryRowIsAsLikelyToComeFirst) {
  std::vector<int> first(10, 0);
  for (int64_t epoch = 0; epoch < 4000; ++epoch) {
    for (int r : generation_rows(1234, 10, 3, epoch * 3)) ++first[r];
  }
  for (int r = 0; r < 10; ++r) {
    EXPECT_NEAR(first[r], 1200, 5 * 29) << "row " << r;
  }
}

TEST(GrpoSampler, FewerRowsThanABatchIsAnError) {
  try {
    generation_rows(1, 5, 8, 0);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("5 rows, fewer than the 8"), std::string::npos)
        << e.what();
  }
}

// TRL: max_steps = ceil(num_train_epochs x num_update_steps_per_epoch), an epoch's updates being
// its generation batches x num_iterations.
TEST(GrpoSampler, EpochsMakeTrlsUpdateCount) {
  EXPECT_EQ(updates_of_epochs(3.0, 6, 1), 18);
  EXPECT_EQ(updates_of_epochs(3.0, 6, 2), 36);
  EXPECT_EQ(updates_of_epochs(1.1, 6, 1), 7);  // 6.6, rounded up
  EXPECT_EQ(updates_of_epochs(0.5, 7, 1), 4);  // 3.5
}

}  // namespace
}  // namespace corl::grpo
