#include "corl/reward/text_match.h"

#include <algorithm>
#include <map>

namespace corl::reward {
namespace {

using Counts = std::map<std::string, int>;

Counts count_words(const std::string& text) {
  Counts counts;
  for (auto& word : words(text)) ++counts[std::move(word)];
  return counts;
}

// Sum over the union of words of min and max counts: the multiset intersection and union sizes.
std::pair<int, int> overlap(const Counts& a, const Counts& b) {
  int common = 0;
  int either = 0;
  for (const auto& [word, n] : a) {
    const auto it = b.find(word);
    const int m = it == b.end() ? 0 : it->second;
    common += std::min(n, m);
    either += std::max(n, m);
  }
  for (const auto& [word, m] : b) {
    if (a.find(word) == a.end()) either += m;
  }
  return {common, either};
}

}  // namespace

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (const char ch : text) {
    // ASCII only, so that a UTF-8 byte never reads as a letter under the C locale or any other.
    const bool digit = ch >= '0' && ch <= '9';
    const bool lower = ch >= 'a' && ch <= 'z';
    const bool upper = ch >= 'A' && ch <= 'Z';
    if (digit || lower || upper) {
      word.push_back(upper ? static_cast<char>(ch - 'A' + 'a') : ch);
    } else if (!word.empty()) {
      out.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

// SQuAD v1.1's F1: precision = common / |candidate|, recall = common / |reference|, their
// harmonic mean. Two empty texts agree completely; an empty one against words shares nothing.
double token_f1(const std::string& candidate, const std::string& reference) {
  const Counts c = count_words(candidate);
  const Counts r = count_words(reference);
  if (c.empty() && r.empty()) return 1.0;
  const int common = overlap(c, r).first;
  if (common == 0) return 0.0;
  int c_total = 0;
  int r_total = 0;
  for (const auto& entry : c) c_total += entry.second;
  for (const auto& entry : r) r_total += entry.second;
  const double precision = static_cast<double>(common) / c_total;
  const double recall = static_cast<double>(common) / r_total;
  return 2.0 * precision * recall / (precision + recall);
}

double soft_jaccard(const std::string& candidate, const std::string& reference) {
  const auto [common, either] = overlap(count_words(candidate), count_words(reference));
  if (either == 0) return 1.0;
  return static_cast<double>(common) / either;
}

}  // namespace corl::reward
