// Recipes are data: a Schema binds dotted keys ("world.resolution") to typed fields of a recipe
// struct, with a range or a set of choices and a line of documentation. One description serves
// reading YAML, `--set key=value` overrides, writing the resolved recipe and docs/recipes.md.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace corl::config {

// One key of a recipe.
struct Field {
  std::string key;      // dotted path
  std::string type;     // "int", "float", "bool", "string", "list of string", ...
  std::string allowed;  // "[16, 1024]", "one of: unigram, bpe", or empty
  std::string doc;
  std::function<void(const YAML::Node& value, const std::string& where)> parse;
  std::function<YAML::Node()> emit;
};

// Narrows what a field accepts; returned by Schema::add so constraints read as one line:
//   schema.add("world.resolution", &r.resolution, "Image side in pixels").range(16, 1024);
class Constraint {
 public:
  explicit Constraint(Field& field, std::shared_ptr<void> state) : field_(field), state_(state) {}
  // Inclusive bounds of a number, or of each element of a list of numbers.
  Constraint& range(double min, double max);
  // Allowed values of a string, or of each element of a list of strings.
  Constraint& choices(std::vector<std::string> allowed);
  // Smallest length of a list.
  Constraint& min_items(int n);

 private:
  Field& field_;
  std::shared_ptr<void> state_;
};

class Schema {
 public:
  Constraint add(const std::string& key, int* target, const std::string& doc);
  Constraint add(const std::string& key, double* target, const std::string& doc);
  Constraint add(const std::string& key, bool* target, const std::string& doc);
  Constraint add(const std::string& key, std::string* target, const std::string& doc);
  Constraint add(const std::string& key, std::vector<std::string>* target, const std::string& doc);
  Constraint add(const std::string& key, std::vector<double>* target, const std::string& doc);
  Constraint add(const std::string& key, std::vector<int>* target, const std::string& doc);
  // A section whose entries the recipe names: "reward.remote.<name>.url". Each entry the recipe
  // (or a --set) gives is made in `target` and its keys bound, under "KEY.<name>", by
  // `bind_entry`; a name is letters, digits, '_' and '-'. markdown() lists the keys of an entry
  // as "KEY.<name>.*".
  template <class Entry>
  void add_sections(const std::string& key, std::map<std::string, Entry>* target,
                    void (*bind_entry)(Schema& schema, const std::string& prefix, Entry& entry)) {
    sections_.push_back(
        {key,
         [key, target, bind_entry](Schema& schema, const std::string& name) {
           bind_entry(schema, key + "." + name, (*target)[name]);
         },
         [key, bind_entry] {
           Schema keys;
           Entry defaults;
           bind_entry(keys, key + ".<name>", defaults);
           return keys.markdown(/*header=*/false);
         },
         {}});
  }

  // Reads a recipe file. Throws corl::RecipeError "FILE:LINE: ..." for an unknown key (naming
  // the nearest valid one), a key given twice (naming both lines), a value of the wrong type or
  // out of range, or malformed YAML.
  void load_file(const std::string& path);
  void load(const YAML::Node& root, const std::string& file);
  // Applies "key.sub=value" (the value parsed as YAML), with the same checks as a file.
  void set(const std::string& assignment);

  // The whole recipe as it now stands, every key present.
  YAML::Node resolved() const;
  std::string resolved_yaml() const;
  // A Markdown table: key, type, default, allowed, meaning.
  std::string markdown(bool header = true) const;

  const std::vector<std::unique_ptr<Field>>& fields() const { return fields_; }
  const Field* find(const std::string& key) const;

 private:
  template <class T>
  Constraint add_field(const std::string& key, T* target, const std::string& doc);
  // `lines`: the line where each dotted key of the file was first given.
  void load_map(const YAML::Node& map, const std::string& prefix, const std::string& file,
                std::map<std::string, int>& lines);
  bool is_section(const std::string& prefix) const;
  std::string nearest_key(const std::string& key) const;
  // Whether `key` is a named section itself ("reward.remote").
  bool is_named_sections(const std::string& key) const;
  // When `key` lies inside an entry of a named section ("reward.remote.clip[.url]"), binds that
  // entry if it is new. Throws corl::RecipeError naming `where` for a name that is not one.
  void enter_section(const std::string& key, const std::string& where);

  struct NamedSections {
    std::string key;
    std::function<void(Schema& schema, const std::string& name)> bind;
    std::function<std::string()> markdown;
    std::vector<std::string> names;  // entries bound so far
  };
  std::vector<std::unique_ptr<Field>> fields_;
  std::vector<NamedSections> sections_;
};

// Binds `recipe` to `schema`, then reads the file (when `path` is not empty), applies the --set
// overrides in order and runs the recipe's cross-field checks. `bind(Schema&, Recipe&)` and
// `validate(const Recipe&)` are found beside the recipe's type. `schema` keeps pointers into
// `recipe`: both stay with the caller.
template <class Recipe>
void load_recipe(const std::string& path, const std::vector<std::string>& overrides, Recipe& recipe,
                 Schema& schema) {
  bind(schema, recipe);
  if (!path.empty()) schema.load_file(path);
  for (const auto& assignment : overrides) schema.set(assignment);
  validate(recipe);
}

}  // namespace corl::config
