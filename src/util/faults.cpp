#include "corl/util/faults.h"

#include <cstdlib>
#include <set>
#include <sstream>
#include <utility>

#include "corl/util/error.h"

namespace corl::util {
namespace {

const std::set<std::string> kFaults = {"reward_nan"};

// (name, step) pairs; step 0: every step.
std::set<std::pair<std::string, int>> parse_faults(const char* text) {
  std::set<std::pair<std::string, int>> faults;
  if (text == nullptr) return faults;
  std::istringstream entries(text);
  for (std::string entry; std::getline(entries, entry, ',');) {
    if (entry.empty()) continue;
    const auto at = entry.find('@');
    const std::string name = entry.substr(0, at);
    if (!kFaults.count(name)) {
      throw UsageError("CORL_FAULTS: unknown fault '" + name + "' (known: reward_nan)");
    }
    int step = 0;
    if (at != std::string::npos) {
      const std::string number = entry.substr(at + 1);
      char* end = nullptr;
      const long value = std::strtol(number.c_str(), &end, 10);
      if (number.empty() || *end != '\0' || value < 1 || value > 1000000000) {
        throw UsageError("CORL_FAULTS: '" + entry + "': the step must be a positive number");
      }
      step = static_cast<int>(value);
    }
    faults.emplace(name, step);
  }
  return faults;
}

}  // namespace

bool fault(const std::string& name, int step) {
  static const auto faults = parse_faults(std::getenv("CORL_FAULTS"));
  return faults.count({name, step}) > 0 || faults.count({name, 0}) > 0;
}

}  // namespace corl::util
