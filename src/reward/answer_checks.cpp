#include "corl/reward/answer_checks.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <stdexcept>
#include <vector>

#include "corl/data/answers.h"
#include "corl/data/world.h"
#include "corl/util/strings.h"

namespace corl::reward {
namespace {

bool blank(const std::string& text, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    if (!std::isspace(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

size_t occurrences(const std::string& text, const std::string& tag) {
  size_t n = 0;
  for (size_t at = text.find(tag); at != std::string::npos; at = text.find(tag, at + tag.size())) {
    ++n;
  }
  return n;
}

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// "... Options: A. red B. green" -> {"red", "green"}: the letters run from A without a gap, each
// option up to the next letter's mark. Empty when the problem offers no options.
std::vector<std::string> question_options(const std::string& problem) {
  static const std::string kOptions = "Options:";
  const size_t at = problem.rfind(kOptions);
  if (at == std::string::npos) return {};
  std::vector<std::string> options;
  size_t pos = at + kOptions.size();
  for (char letter = 'A'; letter <= 'Z'; ++letter) {
    const std::string mark = std::string(1, letter) + ". ";
    const size_t begin = problem.find(mark, pos);
    if (begin == std::string::npos || !blank(problem, pos, begin)) break;
    const size_t text = begin + mark.size();
    size_t end = problem.find(" " + std::string(1, static_cast<char>(letter + 1)) + ". ", text);
    if (end == std::string::npos) end = problem.size();
    options.push_back(lowercase(util::trim(std::string_view(problem).substr(text, end - text))));
    pos = end;
  }
  return options;
}

struct NamedOption {
  char letter;
  std::string text;
};

// The options a reasoning names, in both of the forms the suites' reasoning takes: a walk
// ("A. red? no. B. green? yes.": a capital standing alone, ". ", words, "?") and a statement
// ("The answer yes is option A.").
std::vector<NamedOption> named_options(const std::string& completion) {
  std::vector<NamedOption> named;
  for (size_t i = 0; i + 3 < completion.size(); ++i) {
    const char c = completion[i];
    const bool alone = i == 0 || std::isspace(static_cast<unsigned char>(completion[i - 1])) ||
                       completion[i - 1] == '>';
    if (c < 'A' || c > 'Z' || !alone || completion.compare(i + 1, 2, ". ") != 0) continue;
    const size_t text = i + 3;
    const size_t end = completion.find_first_of("?.<", text);
    if (end == std::string::npos || completion[end] != '?' || blank(completion, text, end)) {
      continue;
    }
    named.push_back(
        {c, lowercase(util::trim(std::string_view(completion).substr(text, end - text)))});
  }
  static const std::string kAnswer = "answer ";
  static const std::string kIsOption = " is option ";
  for (size_t at = completion.find(kIsOption); at != std::string::npos;
       at = completion.find(kIsOption, at + 1)) {
    const size_t letter = at + kIsOption.size();
    const size_t answer = completion.rfind(kAnswer, at);
    if (letter >= completion.size() || completion[letter] < 'A' || completion[letter] > 'Z' ||
        answer == std::string::npos) {
      continue;
    }
    const size_t text = answer + kAnswer.size();
    if (text >= at || completion.find_first_of(".?<", text) < at) continue;
    named.push_back({completion[letter],
                     lowercase(util::trim(std::string_view(completion).substr(text, at - text)))});
  }
  return named;
}

}  // namespace

// With exactly one of each tag, the order open think < close think < open answer < close answer
// is what rules out nesting; only whitespace may lie outside and between the two blocks. An
// empty <think> is allowed (the answer is what is graded), an empty <answer> is not.
bool well_formed(const std::string& completion) {
  static const std::string kTags[] = {"<think>", "</think>", "<answer>", "</answer>"};
  size_t at[4];
  for (int i = 0; i < 4; ++i) {
    if (occurrences(completion, kTags[i]) != 1) return false;
    at[i] = completion.find(kTags[i]);
    if (i > 0 && at[i] < at[i - 1]) return false;
  }
  const size_t think_end = at[1] + kTags[1].size();
  const size_t answer_begin = at[2] + kTags[2].size();
  const size_t answer_end = at[3] + kTags[3].size();
  return blank(completion, 0, at[0]) && blank(completion, think_end, at[2]) &&
         blank(completion, answer_end, completion.size()) &&
         !blank(completion, answer_begin, at[3]);
}

bool answer_correct(const std::string& completion, const std::string& solution,
                    const std::string& qa_type) {
  if (qa_type != "MC" && qa_type != "OE") {
    throw std::invalid_argument("answer_correct: qa_type must be \"MC\" or \"OE\", got \"" +
                                qa_type + "\"");
  }
  // The dataset stores "<answer>B</answer>" (maybe after a <think> block); hand-made rows may
  // give the bare answer.
  const bool tagged = solution.find("<answer>") != std::string::npos ||
                      solution.find("</answer>") != std::string::npos;
  const std::optional<std::string> gold =
      tagged ? data::extract_answer(solution) : std::optional<std::string>(util::trim(solution));
  if (!gold || gold->empty()) {
    throw std::invalid_argument("answer_correct: solution \"" + solution + "\" has no answer");
  }
  const std::optional<std::string> predicted = data::extract_answer(completion);
  return predicted && !predicted->empty() &&
         data::answers_match(*predicted, *gold, qa_type == "MC");
}

double object_list_f1(const std::string& completion, const data::Scene& scene) {
  const std::optional<data::ObjectList> listed = data::read_object_list(completion);
  if (!listed) return 0.0;
  std::vector<std::pair<data::Color, data::Shape>> listed_objects = listed->objects;
  std::vector<std::pair<data::Color, data::Shape>> shown;
  for (const auto& o : scene.objects) shown.emplace_back(o.color, o.shape);
  std::sort(listed_objects.begin(), listed_objects.end());
  std::sort(shown.begin(), shown.end());
  std::vector<std::pair<data::Color, data::Shape>> common;
  std::set_intersection(listed_objects.begin(), listed_objects.end(), shown.begin(), shown.end(),
                        std::back_inserter(common));
  const size_t named = listed_objects.size() + static_cast<size_t>(listed->unreadable);
  if (named + shown.size() == 0) return 1.0;  // "no objects" in an empty scene
  return 2.0 * static_cast<double>(common.size()) / static_cast<double>(named + shown.size());
}

double option_walk_agreement(const std::string& completion, const std::string& problem) {
  const std::vector<std::string> options = question_options(problem);
  const std::vector<NamedOption> named = named_options(completion);
  // An open question offers nothing to walk: naming options there is invented, and a walk learnt
  // on multiple choice spills into open answers ("Counting gives one. A. 2? no. B. 1? yes.").
  if (named.empty()) return options.empty() ? 1.0 : 0.0;
  size_t agree = 0;
  for (const auto& n : named) {
    const size_t k = static_cast<size_t>(n.letter - 'A');
    if (k < options.size() && options[k] == n.text) ++agree;
  }
  return static_cast<double>(agree) / static_cast<double>(named.size());
}

}  // namespace corl::reward
