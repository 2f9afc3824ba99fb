#include "corl/eval/question_suite.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "corl/data/answers.h"
#include "corl/data/render.h"
#include "corl/model/inputs.h"
#include "corl/train/evaluate.h"
#include "corl/util/error.h"
#include "corl/util/progress.h"
#include "corl/util/strings.h"

namespace corl::eval {
namespace fs = std::filesystem;
namespace {

using Row = nlohmann::ordered_json;  // a row keeps its fields' order in the answers

// The first of `names` the row has, taken out of it (so that it is not kept twice); null if none.
Row take(Row& row, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const auto it = row.find(name);
    if (it == row.end() || it->is_null()) continue;
    Row value = *it;
    row.erase(it);
    return value;
  }
  return nullptr;
}

// A string field; numbers (an answer of 4) read as they are written.
std::string text_of(const Row& value, const std::string& field, const std::string& at) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number()) return value.dump();
  throw DataError(at + ": field '" + field + "' must be a string");
}

void check_letter(const std::string& key, const std::string& at) {
  if (key.size() != 1 || !std::isalpha(static_cast<unsigned char>(key[0]))) {
    throw DataError(at + ": field 'options': key '" + key + "' is not an option letter");
  }
}

// The options' letters and texts, from ["3", "4"] or {"A": "3", "B": "4"}.
std::vector<std::pair<std::string, std::string>> read_options(const Row& options,
                                                              const std::string& at) {
  std::vector<std::pair<std::string, std::string>> read;
  if (options.is_array()) {
    if (options.size() > 26) throw DataError(at + ": field 'options': more than 26 options");
    for (size_t k = 0; k < options.size(); ++k) {
      read.emplace_back(std::string(1, static_cast<char>('A' + k)),
                        text_of(options[k], "options", at));
    }
  } else if (options.is_object()) {
    for (const auto& [letter, text] : options.items()) {
      check_letter(letter, at);
      read.emplace_back(letter, text_of(text, "options", at));
    }
  } else {
    throw DataError(at + ": field 'options' must be a list or an object of letter: text");
  }
  if (read.size() < 2) throw DataError(at + ": field 'options': fewer than two options");
  return read;
}

SuiteQuestion parse_question(const std::string& text, const std::string& at,
                             const std::string& dir) {
  Row row;
  try {
    row = Row::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax, or a number out of range
    throw DataError(at + ": malformed JSON: " + e.what());
  }
  if (!row.is_object()) throw DataError(at + ": a row is a JSON object");
  SuiteQuestion q;
  const auto image = take(row, {"image", "real_image"});
  const auto question = take(row, {"qa_problem", "question"});
  const auto answer = take(row, {"qa_solution", "answer"});
  const auto options = take(row, {"options"});
  const auto type = take(row, {"qa_type"});
  if (image.is_null()) throw DataError(at + ": missing field 'image' (or 'real_image')");
  if (question.is_null()) throw DataError(at + ": missing field 'question' (or 'qa_problem')");
  if (answer.is_null()) throw DataError(at + ": missing field 'answer' (or 'qa_solution')");
  q.problem = text_of(question, "question", at);
  q.solution = util::trim(text_of(answer, "answer", at));
  if (const auto id = row.find("id"); id != row.end() && !id->is_null()) {
    q.id = text_of(*id, "id", at);
  }

  const std::string path = text_of(image, "image", at);
  const fs::path resolved = fs::path(path).is_absolute() ? fs::path(path) : fs::path(dir) / path;
  q.image_path = resolved.lexically_normal().string();
  std::error_code error;
  if (!fs::is_regular_file(q.image_path, error)) {
    throw DataError(at + ": image not found: " + q.image_path);
  }

  if (!type.is_null()) {
    q.qa_type = text_of(type, "qa_type", at);
    if (q.qa_type != "MC" && q.qa_type != "OE") {
      throw DataError(at + ": field 'qa_type' must be \"MC\" or \"OE\", got \"" + q.qa_type + "\"");
    }
  } else {
    q.qa_type = options.is_null() ? "OE" : "MC";
  }
  if (q.qa_type == "OE" && !options.is_null()) {
    throw DataError(at + ": an open-ended (OE) question has no 'options'");
  }

  // The gold answer as the accuracy reward reads it: inside <answer>...</answer> when tagged.
  const bool tagged = q.solution.find("<answer>") != std::string::npos ||
                      q.solution.find("</answer>") != std::string::npos;
  const auto gold = tagged ? data::extract_answer(q.solution) : std::optional(q.solution);
  if (!gold || gold->empty()) throw DataError(at + ": field 'answer' holds no answer");
  if (q.qa_type == "MC") {
    if (!options.is_null()) {
      const auto listed = read_options(options, at);
      std::string letter;
      for (const auto& [l, option] : listed) {
        if (data::answers_match(*gold, l, true)) letter = l;
      }
      for (const auto& [l, option] : listed) {
        if (letter.empty() && data::answers_match(*gold, option, false)) letter = l;
      }
      if (letter.empty()) {
        throw DataError(at + ": answer '" + *gold + "' is neither an option's letter nor its text");
      }
      q.solution = letter;
      q.problem += " Options:";
      for (const auto& [l, option] : listed)
        q.problem.append(" ").append(l).append(". ").append(option);
    } else if (!data::answers_match(*gold, *gold, true)) {
      throw DataError(at + ": the multiple-choice answer '" + *gold + "' is not an option letter");
    }
  }
  q.fields = std::move(row);
  return q;
}

// A grouping field's value in a row: "subject", or a dotted path into nested objects
// ("metadata.category", as MathVista nests it); nullptr when the row lacks it.
const Row* field_at(const Row& fields, const std::string& field) {
  const Row* at = &fields;
  size_t start = 0;
  while (true) {
    const size_t dot = field.find('.', start);
    const std::string key = field.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!at->is_object()) return nullptr;
    const auto it = at->find(key);
    if (it == at->end() || it->is_null()) return nullptr;
    at = &*it;
    if (dot == std::string::npos) return at;
    start = dot + 1;
  }
}

std::string group_value(const Row& fields, const std::string& field) {
  const Row* value = field_at(fields, field);
  if (!value) return "(none)";
  return value->is_string() ? value->get<std::string>() : value->dump();
}

}  // namespace

QuestionSuite read_question_suite(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": cannot read question suite");
  QuestionSuite suite;
  suite.path = path;
  suite.name = fs::path(path).stem().string();
  const std::string dir = fs::path(path).parent_path().string();
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    suite.questions.push_back(parse_question(text, where(path, line), dir));
    suite.questions.back().line = line;
    if (suite.questions.back().id.empty()) suite.questions.back().id = std::to_string(line);
  }
  if (suite.questions.empty()) throw DataError(path + ": no questions");
  return suite;
}

std::vector<train::QuestionItem> load_questions(const QuestionSuite& suite, int image_size) {
  std::vector<train::QuestionItem> items;
  for (const auto& q : suite.questions) {
    train::QuestionItem item;
    try {
      item.image = data::read_image(q.image_path, image_size);
    } catch (const DataError& e) {
      throw DataError(where(suite.path, q.line) + ": " + e.what());
    }
    item.problem = q.problem;
    item.solution = q.solution;
    item.qa_type = q.qa_type;
    items.push_back(std::move(item));
  }
  return items;
}

SuiteResult run_question_suite(train::Policy& policy, const QuestionSuite& suite,
                               const EvalRecipe& recipe) {
  const auto items = load_questions(suite, policy.model->config.image_size);
  const model::SequenceBuilder builder(*policy.text, policy.model->config);
  util::Progress progress("eval " + suite.name, static_cast<int64_t>(items.size()), "questions");
  const auto graded = train::answer_and_grade(policy.model, builder, items, recipe.max_new_tokens,
                                              recipe.batch_size, &progress);
  progress.finish();
  return grade_question_suite(suite, items, graded, recipe);
}

SuiteResult grade_question_suite(const QuestionSuite& suite,
                                 const std::vector<train::QuestionItem>& items,
                                 const std::vector<train::GradedAnswer>& graded,
                                 const EvalRecipe& recipe) {
  std::vector<std::string> fields;  // the grouping fields some row has
  for (const auto& field : recipe.questions.group_by) {
    for (const auto& q : suite.questions) {
      if (field_at(q.fields, field)) {
        fields.push_back(field);
        break;
      }
    }
  }
  // (correct, asked) by type, and by each field's value.
  std::map<std::string, std::pair<int, int>> by_type;
  std::map<std::string, std::map<std::string, std::pair<int, int>>> by_field;
  int correct = 0;
  int formed = 0;
  SuiteResult result;
  result.items = nlohmann::json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& q = suite.questions[i];
    const auto& answer = graded[i];
    correct += answer.correct;
    formed += answer.well_formed;
    auto tally = [&](std::pair<int, int>& counts) {
      counts.first += answer.correct;
      ++counts.second;
    };
    tally(by_type[q.qa_type]);
    for (const auto& field : fields) tally(by_field[field][group_value(q.fields, field)]);
    result.items.push_back(answer.correct ? 1 : 0);
    result.records.push_back({{"id", q.id},
                              {"question", q.problem},
                              {"gold", q.solution},
                              {"type", q.qa_type},
                              {"completion", answer.completion},
                              {"right", answer.correct},
                              {"fields", q.fields}});
    if (static_cast<int>(result.answers.size()) < recipe.report.sample_answers) {
      result.answers.push_back(
          {items[i].image, q.problem, q.solution, answer.completion, answer.correct});
    }
  }
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [type, counts] : by_type)
    types[type] = accuracy_entry(counts.first, counts.second);
  nlohmann::json groups = nlohmann::json::object();
  for (const auto& [field, values] : by_field) {
    for (const auto& [value, counts] : values) {
      groups[field][value] = accuracy_entry(counts.first, counts.second);
    }
  }
  result.figures = answer_figures(correct, formed, static_cast<int>(items.size()));
  result.figures["file"] = suite.path;
  result.figures["by_type"] = types;
  result.figures["groups"] = groups;
  return result;
}

}  // namespace corl::eval
