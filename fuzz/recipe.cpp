// A recipe file through the schema: the YAML reader, unknown and repeated keys, types, ranges,
// choices and the cross-field checks, of the data recipe (no LibTorch) and of the GRPO stages'
// recipe (the largest; every kind of key). The input's first byte picks the recipe, the rest is
// the file. A recipe that loads must come back unchanged through its resolved form.
#include <cstddef>
#include <cstdint>
#include <fstream>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/grpo/recipe.h"
#include "corl/util/error.h"
#include "fuzz_input.h"

namespace {

template <class Recipe>
void load(const std::string& path) {
  Recipe recipe;
  corl::config::Schema schema;
  try {
    corl::config::load_recipe(path, {}, recipe, schema);
  } catch (const corl::UsageError&) {
    return;  // RecipeError included: "FILE:LINE: ..."
  }
  // What loaded once loads again from the resolved recipe, to the same resolved recipe.
  const std::string resolved = schema.resolved_yaml();
  const std::string again_path = corl::fuzz::scratch_path(".resolved.yaml");
  {
    std::ofstream out(again_path, std::ios::trunc);
    out << resolved;
  }
  Recipe again;
  corl::config::Schema again_schema;
  corl::config::load_recipe(again_path, {}, again, again_schema);
  corl::fuzz::require(again_schema.resolved_yaml() == resolved,
                      "a resolved recipe reloads to itself");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string path = corl::fuzz::input_file(data + 1, size - 1, ".yaml");
  if (data[0] % 2 == 0) {
    load<corl::config::WorldRecipe>(path);
  } else {
    load<corl::grpo::GrpoRecipe>(path);
  }
  return 0;
}
