#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "corl/util/fs.h"
#include "corl/util/run_dir.h"

namespace corl::util {
namespace {

namespace fs = std::filesystem;

class RunDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("corl_util_run_dir_test_" + std::to_string(::getpid()));
    remove_tree(root_.string());
  }
  void TearDown() override { remove_tree(root_.string()); }

  // Each line of metrics.jsonl without its "time": what a row said.
  std::vector<std::string> rows() const {
    std::istringstream in(read_file((root_ / "metrics.jsonl").string()));
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      auto row = nlohmann::json::parse(line);
      row.erase("time");
      out.push_back(row.dump());
    }
    return out;
  }

  fs::path root_;
};

TEST_F(RunDirTest, DropsTheStepsAfterTheCheckpointAndAppendsAfterTheKeptOnes) {
  RunDir run(root_.string(), "recipe: 1\n");
  for (int step = 1; step <= 5; ++step) run.metric({{"step", step}, {"loss", step * 0.5}});
  run.metric({{"summary", "no step"}});
  {
    // A killed run's last write, cut short in the middle of a line.
    std::ofstream torn(root_ / "metrics.jsonl", std::ios::app);
    torn << R"({"step": 6, "lo)";
  }
  EXPECT_EQ(run.drop_metrics_after(3), 3);  // steps 4 and 5, and the torn line
  run.metric({{"step", 4}, {"loss", 9.0}});
  EXPECT_EQ(rows(),
            (std::vector<std::string>{R"({"loss":0.5,"step":1})", R"({"loss":1.0,"step":2})",
                                      R"({"loss":1.5,"step":3})", R"({"summary":"no step"})",
                                      R"({"loss":9.0,"step":4})"}));
}

TEST_F(RunDirTest, DroppingFromStepZeroKeepsOnlyLinesWithoutAStep) {
  RunDir run(root_.string(), "");
  run.metric({{"step", 1}});
  run.metric({{"rows", 10}});
  EXPECT_EQ(run.drop_metrics_after(0), 1);
  EXPECT_EQ(rows(), (std::vector<std::string>{R"({"rows":10})"}));
}

TEST_F(RunDirTest, AResumedRunsClockGoesOnFromTheKeptLines) {
  fs::create_directories(root_);
  {
    std::ofstream earlier(root_ / "metrics.jsonl");
    earlier << R"({"step": 1, "time": 100.0})" << '\n'
            << R"({"step": 2, "time": 200.0})" << '\n'
            << R"({"step": 3, "time": 300.0})" << '\n';
  }
  RunDir run(root_.string(), "", /*writer=*/true, RunDir::Metrics::kAppend);
  EXPECT_EQ(run.drop_metrics_after(2), 1);
  run.metric({{"step", 3}});
  std::ifstream in(root_ / "metrics.jsonl");
  std::vector<double> times;
  for (std::string line; std::getline(in, line);) {
    times.push_back(nlohmann::json::parse(line).at("time").get<double>());
  }
  ASSERT_EQ(times.size(), 3u);
  // Step 3 again, logged at once: the clock reads step 2's 200 s and the moment since, not 0.
  EXPECT_GE(times[2], 200.0);
  EXPECT_LT(times[2], 260.0);
}

TEST_F(RunDirTest, ANewRunReplacesTheMetricsAResumedRunAppendsToThem) {
  {
    RunDir first(root_.string(), "");
    first.metric({{"step", 1}});
  }
  {
    RunDir resumed(root_.string(), "", /*writer=*/true, RunDir::Metrics::kAppend);
    resumed.metric({{"step", 2}});
  }
  EXPECT_EQ(rows(), (std::vector<std::string>{R"({"step":1})", R"({"step":2})"}));
  {
    RunDir again(root_.string(), "");
    again.metric({{"step", 7}});
  }
  EXPECT_EQ(rows(), (std::vector<std::string>{R"({"step":7})"}));
}

TEST_F(RunDirTest, ANonWritingRunDirLeavesTheFileAlone) {
  {
    RunDir writer(root_.string(), "");
    writer.metric({{"step", 2}});
  }
  RunDir reader(root_.string(), "", /*writer=*/false);
  EXPECT_EQ(reader.drop_metrics_after(1), 0);
  EXPECT_EQ(rows(), (std::vector<std::string>{R"({"step":2})"}));
}

}  // namespace
}  // namespace corl::util
