// The folder every run writes: the resolved recipe (recipe.yaml), the log (log.txt) and metrics
// as JSON lines (metrics.jsonl), beside whatever the command itself produces.
#pragma once

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace corl::util {

class RunDir {
 public:
  // What becomes of a metrics.jsonl the folder already holds: a new run replaces it, so that the
  // file holds only this run's rows; a resumed run appends to it (and drops the rows past its
  // checkpoint, drop_metrics_after).
  enum class Metrics { kReplace, kAppend };

  // Creates PATH (and its parents), writes the recipe atomically and starts logging to the file.
  // A non-writing RunDir (data-parallel ranks other than 0) only names the folder: it creates
  // and writes nothing, and metric() drops its rows; rank 0 writes for every rank.
  RunDir(std::string path, const std::string& resolved_recipe, bool writer = true,
         Metrics metrics = Metrics::kReplace);

  bool writer() const { return writer_; }

  const std::string& path() const { return path_; }
  // PATH/NAME
  std::string file(const std::string& name) const;
  // Appends one line to metrics.jsonl, with the seconds the run has run as "time" (a resumed
  // run's clock goes on from its checkpoint's line, drop_metrics_after);
  // flushed at once so that a killed run keeps every line it logged.
  void metric(nlohmann::json row);
  // Drops the metrics.jsonl lines of steps after `step`, which a killed run logged past the
  // checkpoint a resumed run goes on from and which the resumed run logs again. A line without a
  // "step" (a command's own summary) is kept; one that is not JSON, a write a kill cut short, is
  // dropped. The file is replaced atomically and appended to from then on, and "time" goes on
  // from the last kept line's (time spent while the run was stopped is not counted). Returns the
  // number of lines dropped (0 for a non-writing RunDir, which writes nothing).
  int drop_metrics_after(int step);

 private:
  std::string path_;
  bool writer_ = true;
  std::ofstream metrics_;
  std::chrono::steady_clock::time_point start_;
};

// The folder of a run: --out when given, else runs/NAME.
std::string run_path(const std::string& out, const std::string& name);

}  // namespace corl::util
