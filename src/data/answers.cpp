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

std::optional<char> option_letter(const std::string& text) {
  std::string t = util::trim(text);
  if (!t.empty() && t.front() == '(') t.erase(0, 1);
  if (t.empty() || !std::isalpha(static_cast<unsigned char>(t[0]))) return std::nullopt;
  const char letter = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
  // A lone letter, or a letter followed by punctuation: "B", "B.", "B)", "B. 3".
  if (t.size() > 1 && std::isalnum(static_cast<unsigned char>(t[1]))) return std::nullopt;
  if (letter < 'A' || letter > 'Z') return std::nullopt;
  return letter;
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
