#include "corl/data/answers.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

#include "corl/util/strings.h"

namespace corl::data {
namespace {

constexpr std::array<const char*, 11> kNumberWords = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"};

std::string normalise(const std::string& text) {
  std::string out = util::trim(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!out.empty() && (out.back() == '.' || out.back() == '!')) out.pop_back();
  return util::trim(out);
}

std::optional<double> as_number(const std::string& text) {
  for (size_t i = 0; i < kNumberWords.size(); ++i) {
    if (text == kNumberWords[i]) return static_cast<double>(i);
  }
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return value;
}

// A letter counts only where it stands alone as an option is written: "B", "(B)" or "B" closed by
// one of ".):", then nothing or a space and the option's text. A letter followed by a space and a
// word ("a red circle", "I think", "B red") is prose, too ambiguous to read as a choice.
std::optional<char> option_letter(const std::string& text) {
  const std::string t = util::trim(text);
  const auto is_letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  size_t rest = 0;  // where what follows the letter (and its closing punctuation) starts
  char letter = 0;
  if (t.size() >= 3 && t[0] == '(' && is_letter(t[1]) && t[2] == ')') {
    letter = t[1];
    rest = 3;
  } else if (t.size() == 1 && is_letter(t[0])) {
    letter = t[0];
    rest = 1;
  } else if (t.size() >= 2 && is_letter(t[0]) && (t[1] == '.' || t[1] == ')' || t[1] == ':')) {
    letter = t[0];
    rest = 2;
  } else {
    return std::nullopt;
  }
  if (rest < t.size() && !std::isspace(static_cast<unsigned char>(t[rest]))) return std::nullopt;
  return static_cast<char>(std::toupper(static_cast<unsigned char>(letter)));
}

}  // namespace

std::optional<std::string> extract_answer(const std::string& completion) {
  const std::string open = "<answer>";
  const std::string close = "</answer>";
  const auto end = completion.rfind(close);
  if (end == std::string::npos) return std::nullopt;
  const auto start = completion.rfind(open, end);
  if (start == std::string::npos) return std::nullopt;
  const std::string inside = completion.substr(start + open.size(), end - start - open.size());
  if (inside.find(open) != std::string::npos || inside.find(close) != std::string::npos) {
    return std::nullopt;
  }
  return util::trim(inside);
}

bool answers_match(const std::string& predicted, const std::string& gold, bool multiple_choice) {
  if (multiple_choice) {
    const auto p = option_letter(predicted);
    const auto g = option_letter(gold);
    return p && g && *p == *g;
  }
  const std::string p = normalise(predicted);
  const std::string g = normalise(gold);
  if (p.empty()) return false;
  const auto pn = as_number(p);
  const auto gn = as_number(g);
  if (pn && gn) return *pn == *gn;
  return p == g;
}

}  // namespace corl::data
