// Progress of long work: a live line with rate and remaining time on a terminal, plain log lines
// (every few seconds) when the output goes to a file or a pipe, or while another thread's progress
// is under way (threads working side by side would overwrite each other's live line).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace corl::util {

class Progress {
 public:
  Progress(std::string label, std::int64_t total, std::string unit = "it");
  ~Progress();
  void advance(std::int64_t n = 1);
  // Prints the final line; called by the destructor when not called before.
  void finish();

 private:
  void report(bool final);
  bool live() const;  // a redrawn line on the terminal, not log lines

  std::string label_;
  std::string unit_;
  std::int64_t total_;
  std::int64_t done_ = 0;
  bool terminal_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_report_;
};

// While alive, names the work this thread does in its progress lines: "eval geneval [unified]".
class ProgressTag {
 public:
  explicit ProgressTag(const std::string& tag);
  ~ProgressTag();
  ProgressTag(const ProgressTag&) = delete;
  ProgressTag& operator=(const ProgressTag&) = delete;

 private:
  std::string previous_;
};

// "1:05" or "2:03:04".
std::string format_duration(double seconds);

}  // namespace corl::util
