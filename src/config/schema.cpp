#include "corl/config/schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "corl/util/error.h"
#include "corl/util/strings.h"

namespace corl::config {
namespace {

struct Limits {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;
  int min_items = 0;
};

std::string show(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  YAML::Emitter out;
  out << YAML::Flow << node;
  return "'" + std::string(out.c_str()) + "'";
}

std::string number_text(double v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  std::ostringstream s;
  s << std::setprecision(12) << v;
  return s.str();
}

[[noreturn]] void fail(const std::string& where, const std::string& key, const std::string& what) {
  throw RecipeError(where + ": " + key + ": " + what);
}

// Scalar conversions. Each throws with the key, the expected form and the value given.
template <class T>
struct Scalar;

template <>
struct Scalar<int> {
  static constexpr const char* kType = "int";
  static int parse(const YAML::Node& node, const std::string& where, const std::string& key,
                   const Limits& limits) {
    long long value = 0;
    if (!node.IsScalar() || !YAML::convert<long long>::decode(node, value) ||
        value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
      fail(where, key, "expected an integer" + range_text(limits) + ", got " + show(node));
    }
    if (value < limits.min || value > limits.max) {
      fail(where, key, "must be" + range_text(limits) + ", got " + std::to_string(value));
    }
    return static_cast<int>(value);
  }
  static std::string range_text(const Limits& limits) {
    if (std::isinf(limits.min) && std::isinf(limits.max)) return "";
    return " in [" + number_text(limits.min) + ", " + number_text(limits.max) + "]";
  }
};

template <>
struct Scalar<double> {
  static constexpr const char* kType = "float";
  static double parse(const YAML::Node& node, const std::string& where, const std::string& key,
                      const Limits& limits) {
    double value = 0;
    if (!node.IsScalar() || !YAML::convert<double>::decode(node, value) || std::isnan(value)) {
      fail(where, key,
           "expected a number" + Scalar<int>::range_text(limits) + ", got " + show(node));
    }
    if (value < limits.min || value > limits.max) {
      fail(where, key, "must be" + Scalar<int>::range_text(limits) + ", got " + number_text(value));
    }
    return value;
  }
};

template <>
struct Scalar<bool> {
  static constexpr const char* kType = "bool";
  static bool parse(const YAML::Node& node, const std::string& where, const std::string& key,
                    const Limits&) {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      fail(where, key, "expected true or false, got " + show(node));
    }
    return value;
  }
};

template <>
struct Scalar<std::string> {
  static constexpr const char* kType = "string";
  static std::string parse(const YAML::Node& node, const std::string& where, const std::string& key,
                           const Limits& limits) {
    if (!node.IsScalar()) fail(where, key, "expected a string, got " + show(node));
    std::string value = node.Scalar();
    if (!limits.choices.empty() &&
        std::find(limits.choices.begin(), limits.choices.end(), value) == limits.choices.end()) {
      fail(where, key,
           "must be one of: " + util::join(limits.choices, ", ") + "; got '" + value + "'");
    }
    return value;
  }
};

// The shortest text that reads back as the same double, so that resolved recipes say 0.09, not
// 0.089999999999999997.
std::string shortest(double value) {
  char text[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

template <class T>
YAML::Node emit_scalar(const T& value) {
  if constexpr (std::is_same_v<T, double>) {
    return YAML::Node(shortest(value));
  } else {
    return YAML::Node(value);
  }
}

template <class T>
struct Parser {
  static constexpr const char* kType = Scalar<T>::kType;
  static T parse(const YAML::Node& node, const std::string& where, const std::string& key,
                 const Limits& limits) {
    return Scalar<T>::parse(node, where, key, limits);
  }
  static YAML::Node emit(const T& value) { return emit_scalar(value); }
};

template <class T>
struct Parser<std::vector<T>> {
  static std::string type() { return std::string("list of ") + Scalar<T>::kType; }
  static std::vector<T> parse(const YAML::Node& node, const std::string& where,
                              const std::string& key, const Limits& limits) {
    if (!node.IsSequence()) fail(where, key, "expected a list, got " + show(node));
    std::vector<T> values;
    for (size_t i = 0; i < node.size(); ++i) {
      values.push_back(
          Scalar<T>::parse(node[i], where, key + "[" + std::to_string(i) + "]", limits));
    }
    if (static_cast<int>(values.size()) < limits.min_items) {
      fail(where, key,
           "needs at least " + std::to_string(limits.min_items) + " items, got " +
               std::to_string(values.size()));
    }
    return values;
  }
  static YAML::Node emit(const std::vector<T>& values) {
    YAML::Node node(YAML::NodeType::Sequence);
    for (const auto& v : values) node.push_back(emit_scalar(v));
    return node;
  }
};

template <class T>
std::string type_name() {
  if constexpr (std::is_same_v<T, std::vector<int>> || std::is_same_v<T, std::vector<double>> ||
                std::is_same_v<T, std::vector<std::string>>) {
    return Parser<T>::type();
  } else {
    return Parser<T>::kType;
  }
}

std::vector<std::string> split_key(const std::string& key) { return util::split(key, '.'); }

}  // namespace

Constraint& Constraint::range(double min, double max) {
  auto* limits = static_cast<Limits*>(state_.get());
  limits->min = min;
  limits->max = max;
  field_.allowed = "[" + number_text(min) + ", " + number_text(max) + "]";
  return *this;
}

Constraint& Constraint::choices(std::vector<std::string> allowed) {
  auto* limits = static_cast<Limits*>(state_.get());
  field_.allowed = "one of: " + util::join(allowed, ", ");
  limits->choices = std::move(allowed);
  return *this;
}

Constraint& Constraint::min_items(int n) {
  static_cast<Limits*>(state_.get())->min_items = n;
  field_.allowed += (field_.allowed.empty() ? "" : "; ") + std::string("at least ") +
                    std::to_string(n) + (n == 1 ? " item" : " items");
  return *this;
}

template <class T>
Constraint Schema::add_field(const std::string& key, T* target, const std::string& doc) {
  if (find(key)) throw std::logic_error("recipe key bound twice: " + key);
  auto limits = std::make_shared<Limits>();
  auto field = std::make_unique<Field>();
  field->key = key;
  field->type = type_name<T>();
  field->doc = doc;
  field->parse = [key, target, limits](const YAML::Node& node, const std::string& where) {
    *target = Parser<T>::parse(node, where, key, *limits);
  };
  field->emit = [target] { return Parser<T>::emit(*target); };
  fields_.push_back(std::move(field));
  return Constraint(*fields_.back(), limits);
}

Constraint Schema::add(const std::string& key, int* target, const std::string& doc) {
  return add_field(key, target, doc);
}
Constraint Schema::add(const std::string& key, double* target, const std::string& doc) {
  return add_field(key, target, doc);
}
Constraint Schema::add(const std::string& key, bool* target, const std::string& doc) {
  return add_field(key, target, doc);
}
Constraint Schema::add(const std::string& key, std::string* target, const std::string& doc) {
  return add_field(key, target, doc);
}
Constraint Schema::add(const std::string& key, std::vector<std::string>* target,
                       const std::string& doc) {
  return add_field(key, target, doc);
}
Constraint Schema::add(const std::string& key, std::vector<double>* target,
                       const std::string& doc) {
  return add_field(key, target, doc);
}
Constraint Schema::add(const std::string& key, std::vector<int>* target, const std::string& doc) {
  return add_field(key, target, doc);
}

const Field* Schema::find(const std::string& key) const {
  for (const auto& f : fields_) {
    if (f->key == key) return f.get();
  }
  return nullptr;
}

bool Schema::is_section(const std::string& prefix) const {
  for (const auto& f : fields_) {
    if (f->key.size() > prefix.size() && f->key.compare(0, prefix.size(), prefix) == 0 &&
        f->key[prefix.size()] == '.') {
      return true;
    }
  }
  return false;
}

bool Schema::is_named_sections(const std::string& key) const {
  for (const auto& section : sections_) {
    if (section.key == key) return true;
  }
  return false;
}

void Schema::enter_section(const std::string& key, const std::string& where) {
  for (auto& section : sections_) {
    const std::string& prefix = section.key;
    if (key.size() <= prefix.size() + 1 || key.compare(0, prefix.size(), prefix) != 0 ||
        key[prefix.size()] != '.') {
      continue;
    }
    const auto end = key.find('.', prefix.size() + 1);
    const std::string name = key.substr(prefix.size() + 1, end - prefix.size() - 1);
    const bool good = std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '_' || c == '-';
    });
    if (!good) {
      throw RecipeError(where + ": " + prefix + "." + name +
                        ": a name is letters, digits, '_' and '-'");
    }
    if (std::find(section.names.begin(), section.names.end(), name) == section.names.end()) {
      section.names.push_back(name);
      section.bind(*this, name);
    }
    return;
  }
}

std::string Schema::nearest_key(const std::string& key) const {
  std::vector<std::string> candidates;
  for (const auto& f : fields_) {
    const auto parts = split_key(f->key);
    std::string path;
    for (const auto& part : parts) {
      path += (path.empty() ? "" : ".") + part;
      candidates.push_back(path);
    }
  }
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& candidate : candidates) {
    const size_t d = util::edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

void Schema::load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw RecipeError(path + ": cannot read recipe file");
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::ParserException& e) {
    throw RecipeError(where(path, e.mark.line + 1) + ": malformed YAML: " + e.msg);
  }
  load(root, path);
}

void Schema::load(const YAML::Node& root, const std::string& file) {
  if (!root.IsDefined() || root.IsNull()) return;  // an empty recipe keeps every default
  if (!root.IsMap()) {
    throw RecipeError(where(file, root.Mark().line + 1) + ": a recipe is a map of keys");
  }
  std::map<std::string, int> lines;
  load_map(root, "", file, lines);
}

void Schema::load_map(const YAML::Node& map, const std::string& prefix, const std::string& file,
                      std::map<std::string, int>& lines) {
  for (const auto& entry : map) {
    const int line = entry.first.Mark().line + 1;
    const std::string at = where(file, line);
    if (!entry.first.IsScalar()) {  // YAML allows a list or a map as a key; a recipe does not
      throw RecipeError(at + ": a key is a name, got " + show(entry.first));
    }
    const std::string name = entry.first.as<std::string>();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    // yaml-cpp keeps every entry of a repeated key, and the later would silently win. Keys are
    // compared whole, so "world.resolution" also clashes with "resolution" inside "world".
    const auto [first, fresh] = lines.emplace(key, line);
    if (!fresh) {
      throw RecipeError(at + ": key " + key + " appears twice (first at line " +
                        std::to_string(first->second) + ")");
    }
    enter_section(key, at);
    if (const Field* field = find(key)) {
      field->parse(entry.second, at);
    } else if (is_section(key) || is_named_sections(key)) {
      if (!entry.second.IsMap()) {
        throw RecipeError(at + ": " + key + ": is a section of keys, got " + show(entry.second));
      }
      load_map(entry.second, key, file, lines);
    } else {
      throw RecipeError(at + ": unknown key '" + key + "'; did you mean '" + nearest_key(key) +
                        "'?");
    }
  }
}

void Schema::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw UsageError("--set expects KEY=VALUE, got '" + assignment + "'");
  }
  const std::string key = util::trim(assignment.substr(0, eq));
  const std::string at = "--set " + assignment;
  enter_section(key, at);
  const Field* field = find(key);
  if (!field) {
    throw RecipeError(at + ": unknown key '" + key + "'; did you mean '" + nearest_key(key) + "'?");
  }
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::ParserException& e) {
    throw RecipeError(at + ": malformed value: " + e.msg);
  }
  field->parse(value, at);
}

YAML::Node Schema::resolved() const {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& f : fields_) {
    const auto parts = split_key(f->key);
    YAML::Node node = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node child = node[parts[i]];
      node.reset(child);
    }
    node[parts.back()] = f->emit();
  }
  return root;
}

std::string Schema::resolved_yaml() const {
  YAML::Emitter out;
  out << resolved();
  return std::string(out.c_str()) + "\n";
}

std::string Schema::markdown(bool header) const {
  std::string table =
      header ? "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n" : "";
  for (const auto& f : fields_) {
    if (std::any_of(sections_.begin(), sections_.end(), [&](const NamedSections& section) {
          return f->key.compare(0, section.key.size() + 1, section.key + ".") == 0;
        })) {
      continue;  // an entry's keys, listed once below as KEY.<name>.*
    }
    YAML::Emitter value;
    value << YAML::Flow << f->emit();
    table += "| `" + f->key + "` | " + f->type + " | `" + value.c_str() + "` | " + f->allowed +
             " | " + f->doc + " |\n";
  }
  for (const auto& section : sections_) table += section.markdown();
  return table;
}

}  // namespace corl::config
