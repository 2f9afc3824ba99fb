// Faults injected on purpose, so that tests can check what a run does when one happens
// (docs/hardening.md). The environment variable CORL_FAULTS lists them, comma-separated, as
// NAME@STEP (at that 1-based step) or NAME (at every step):
//
//   CORL_FAULTS=reward_nan@2,reward_nan@3 corl train ...
//
// Faults: reward_nan (the step's first reward of its first reward function becomes NaN). Unset,
// as in every real run, nothing is injected.
#pragma once

#include <string>

namespace corl::util {

// Whether fault `name` is injected at `step`. Throws corl::UsageError for a CORL_FAULTS entry
// that names an unknown fault or a step that is not a positive number.
bool fault(const std::string& name, int step);

}  // namespace corl::util
