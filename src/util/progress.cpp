#include "corl/util/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "corl/util/log.h"

namespace corl::util {
namespace {
constexpr double kTerminalInterval = 0.2;  // seconds between redraws
constexpr double kLogInterval = 10.0;      // seconds between log lines

std::atomic<int> unfinished{0};        // Progress objects not yet finished, in every thread
thread_local int unfinished_here = 0;  // ... in this thread (nested work keeps its live line)
thread_local std::string thread_tag;

std::string tagged(std::string label) {
  return thread_tag.empty() ? label : label + " [" + thread_tag + "]";
}

}  // namespace

ProgressTag::ProgressTag(const std::string& tag) : previous_(thread_tag) { thread_tag = tag; }
ProgressTag::~ProgressTag() { thread_tag = previous_; }

std::string format_duration(double seconds) {
  const long total = static_cast<long>(seconds + 0.5);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  }
  return text;
}

Progress::Progress(std::string label, std::int64_t total, std::string unit)
    : label_(tagged(std::move(label))),
      unit_(std::move(unit)),
      total_(total),
      terminal_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_report_(start_) {
  ++unfinished;
  ++unfinished_here;
}

Progress::~Progress() { finish(); }

void Progress::advance(std::int64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_report_).count();
  if (since >= (live() ? kTerminalInterval : kLogInterval)) {
    last_report_ = now;
    report(false);
  }
}

bool Progress::live() const { return terminal_ && unfinished.load() == unfinished_here; }

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  report(true);
  --unfinished;
  --unfinished_here;
}

void Progress::report(bool final) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  char line[256];
  if (final) {
    std::snprintf(line, sizeof line, "%s: %lld %s in %s (%.1f %s/s)", label_.c_str(),
                  static_cast<long long>(done_), unit_.c_str(), format_duration(elapsed).c_str(),
                  rate, unit_.c_str());
  } else {
    const double remaining = rate > 0 ? (total_ - done_) / rate : 0.0;
    std::snprintf(line, sizeof line, "%s: %lld/%lld %s, %.1f %s/s, %s left", label_.c_str(),
                  static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(),
                  rate, unit_.c_str(), format_duration(remaining).c_str());
  }
  if (live() && !final) {
    std::fprintf(stderr, "\r\033[K%s", line);
    std::fflush(stderr);
    return;
  }
  if (terminal_) std::fprintf(stderr, "\r\033[K");
  log::info(line);
}

}  // namespace corl::util
