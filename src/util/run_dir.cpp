#include "corl/util/run_dir.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/log.h"

namespace corl::util {

RunDir::RunDir(std::string path, const std::string& resolved_recipe, bool writer, Metrics metrics)
    : path_(std::move(path)), writer_(writer), start_(std::chrono::steady_clock::now()) {
  if (!writer_) return;
  std::error_code error;
  std::filesystem::create_directories(path_, error);
  if (error) throw DataError(path_ + ": cannot create run folder: " + error.message());
  write_file_atomic(file("recipe.yaml"), resolved_recipe);
  log::to_file(file("log.txt"));
  metrics_.open(file("metrics.jsonl"), metrics == Metrics::kAppend ? std::ios::app : std::ios::trunc);
  if (!metrics_) throw DataError(file("metrics.jsonl") + ": cannot open for writing");
}

std::string RunDir::file(const std::string& name) const {
  return (std::filesystem::path(path_) / name).string();
}

void RunDir::metric(nlohmann::json row) {
  if (!writer_) return;
  row["time"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  metrics_ << row.dump() << '\n';
  metrics_.flush();
}

int RunDir::drop_metrics_after(int step) {
  if (!writer_) return 0;
  metrics_.close();
  std::istringstream lines(read_file(file("metrics.jsonl")));
  std::string kept;
  int dropped = 0;
  double kept_seconds = 0.0;  // the run's clock at the last kept line
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool later = row.is_object() && row.contains("step") && row["step"].is_number() &&
                       row["step"].get<double>() > step;
    if (row.is_discarded() || later) {
      ++dropped;
    } else {
      kept += line + '\n';
      if (row.is_object() && row.contains("time") && row["time"].is_number()) {
        kept_seconds = std::max(kept_seconds, row["time"].get<double>());
      }
    }
  }
  // The resumed run's clock goes on from there, so "time" rises through the file.
  start_ = std::chrono::steady_clock::now() -
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(kept_seconds));
  write_file_atomic(file("metrics.jsonl"), kept);
  // The old stream still points at the file the rename replaced.
  metrics_.open(file("metrics.jsonl"), std::ios::app);
  if (!metrics_) throw DataError(file("metrics.jsonl") + ": cannot open for writing");
  return dropped;
}

std::string run_path(const std::string& out, const std::string& name) {
  return out.empty() ? (std::filesystem::path("runs") / name).string() : out;
}

}  // namespace corl::util
