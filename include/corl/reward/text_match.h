// Word-overlap scores for the cycle reward's text part: how much of the prompt the policy's
// caption of its own image recovers.
#pragma once

#include <string>
#include <vector>

namespace corl::reward {

// Words: lower-cased runs of letters and digits.
std::vector<std::string> words(const std::string& text);
// SQuAD-style token F1 over word multisets.
double token_f1(const std::string& candidate, const std::string& reference);
// Soft Jaccard over word multisets: sum of min counts / sum of max counts.
double soft_jaccard(const std::string& candidate, const std::string& reference);

}  // namespace corl::reward
