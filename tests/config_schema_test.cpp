#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "corl/config/recipes.h"
#include "corl/config/schema.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/strings.h"

namespace corl::config {
namespace {

namespace fs = std::filesystem;

class RecipeFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("corl_config_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& text) {
    const std::string path = (dir_ / "recipe.yaml").string();
    std::ofstream(path) << text;
    return path;
  }
  // The message of the RecipeError that loading `text` throws ("" when none).
  std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
    WorldRecipe recipe;
    Schema schema;
    try {
      load_recipe(write(text), sets, recipe, schema);
    } catch (const RecipeError& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(RecipeFile, ReadsValuesOfEveryType) {
  WorldRecipe recipe;
  Schema schema;
  load_recipe(write("run:\n  seed: 7\nworld:\n  resolution: 32\n  shapes: [circle, square]\n"
                    "  min_size: 0.1\nquestions:\n  mc_fraction: 1\n"),
              {}, recipe, schema);
  EXPECT_EQ(recipe.run.seed, 7);
  EXPECT_EQ(recipe.world.resolution, 32);
  EXPECT_EQ(recipe.world.shapes, (std::vector<std::string>{"circle", "square"}));
  EXPECT_DOUBLE_EQ(recipe.world.min_size, 0.1);
  EXPECT_DOUBLE_EQ(recipe.questions.mc_fraction, 1.0);  // an integer is a valid float
  EXPECT_EQ(recipe.data.train_size, 20000);             // untouched keys keep their defaults
}

TEST_F(RecipeFile, QuestionWeightsArePositive) {
  EXPECT_EQ(error_of("questions:\n  weights: [1, 1, 0.5, 1, 1]\n"), "");
  const std::string error = error_of("questions:\n  weights: [1, 0, 1, 1, 1]\n");
  EXPECT_NE(error.find("questions.weights[1]"), std::string::npos) << error;
}

TEST_F(RecipeFile, UnknownKeyNamesFileLineAndNearestKey) {
  const std::string message = error_of("world:\n  resolution: 32\n  resoluton: 64\n");
  EXPECT_NE(message.find("recipe.yaml:3:"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key 'world.resoluton'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'world.resolution'"), std::string::npos) << message;
}

TEST_F(RecipeFile, UnknownSectionSuggestsSection) {
  const std::string message = error_of("wrold:\n  resolution: 32\n");
  EXPECT_NE(message.find("recipe.yaml:1:"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'world'"), std::string::npos) << message;
}

TEST_F(RecipeFile, WrongTypeNamesKeyAndRange) {
  const std::string message = error_of("world:\n  resolution: big\n");
  EXPECT_NE(message.find("recipe.yaml:2:"), std::string::npos) << message;
  EXPECT_NE(message.find("world.resolution"), std::string::npos) << message;
  EXPECT_NE(message.find("expected an integer in [16, 1024]"), std::string::npos) << message;
  EXPECT_NE(error_of("world:\n  resolution: 6.5\n").find("expected an integer"), std::string::npos);
  EXPECT_NE(error_of("world:\n  shapes: circle\n").find("expected a list"), std::string::npos);
  EXPECT_NE(error_of("world: 3\n").find("is a section"), std::string::npos);
  EXPECT_NE(error_of("text:\n  byte_fallback: maybe\n").find("unknown key"), std::string::npos);
}

TEST_F(RecipeFile, OutOfRangeNamesAllowedRange) {
  const std::string message = error_of("world:\n  resolution: 2048\n");
  EXPECT_NE(message.find("must be in [16, 1024], got 2048"), std::string::npos) << message;
  const std::string choice = error_of("world:\n  shapes: [circle, hexagon]\n");
  EXPECT_NE(choice.find("world.shapes[1]"), std::string::npos) << choice;
  EXPECT_NE(choice.find("must be one of: circle, square"), std::string::npos) << choice;
  EXPECT_NE(choice.find("'hexagon'"), std::string::npos) << choice;
  EXPECT_NE(error_of("world:\n  shapes: []\n").find("at least 1 item"), std::string::npos);
}

TEST_F(RecipeFile, MalformedYamlNamesLine) {
  const std::string message = error_of("world:\n  resolution: [32\n  shapes: x\n");
  EXPECT_NE(message.find("malformed YAML"), std::string::npos) << message;
  EXPECT_NE(message.find("recipe.yaml:"), std::string::npos) << message;
}

// YAML allows a list as a key; reading it as a name threw yaml-cpp's own exception (found by
// fuzz/recipe.cpp).
TEST_F(RecipeFile, ListAsKeyNamesLine) {
  const std::string message = error_of("world:\n  resolution: 32\n  {[a, b]: 1}: 2\n");
  EXPECT_NE(message.find("recipe.yaml:3:"), std::string::npos) << message;
  EXPECT_NE(message.find("a key is a name, got"), std::string::npos) << message;
}

// yaml-cpp keeps both entries of a repeated key, so without a check the later one silently wins.
TEST_F(RecipeFile, DuplicatedKeyNamesBothLines) {
  EXPECT_EQ(error_of("world:\n  resolution: 64\nrun:\n  seed: 1\nworld:\n  shapes: [circle]\n"),
            dir_.string() + "/recipe.yaml:5: key world appears twice (first at line 1)");
  EXPECT_EQ(error_of("world:\n  resolution: 64\n  min_size: 0.1\n  resolution: 80\n"),
            dir_.string() + "/recipe.yaml:4: key world.resolution appears twice (first at line 2)");
  EXPECT_EQ(error_of("world.resolution: 64\nworld:\n  resolution: 80\n"),
            dir_.string() + "/recipe.yaml:3: key world.resolution appears twice (first at line 1)");
  EXPECT_EQ(error_of("world: {resolution: 64, resolution: 80}\n"),
            dir_.string() + "/recipe.yaml:1: key world.resolution appears twice (first at line 1)");
  // At any depth (the tokenizer recipe nests three levels).
  Schema deep;
  int steps = 0;
  int batch_size = 0;
  deep.add("image.optim.steps", &steps, "Training steps");
  deep.add("image.optim.batch_size", &batch_size, "Images per step");
  try {
    deep.load_file(write("image:\n  optim:\n    steps: 10\n    batch_size: 4\n    steps: 20\n"));
    ADD_FAILURE() << "no error";
  } catch (const RecipeError& e) {
    EXPECT_EQ(
        std::string(e.what()),
        dir_.string() + "/recipe.yaml:5: key image.optim.steps appears twice (first at line 3)");
  }
  // The same name in different sections is no duplicate.
  EXPECT_EQ(error_of("run:\n  seed: 1\nworld:\n  resolution: 64\nquestions:\n  mc_fraction: 1\n"),
            "");
}

TEST_F(RecipeFile, SetMayRepeatAKeyOfTheFile) {
  WorldRecipe recipe;
  Schema schema;
  load_recipe(write("world:\n  resolution: 64\n"), {"world.resolution=72", "world.resolution=80"},
              recipe, schema);
  EXPECT_EQ(recipe.world.resolution, 80);  // overrides apply in order
}

TEST_F(RecipeFile, CrossFieldCheckNamesBothKeys) {
  const std::string message = error_of("world:\n  min_size: 0.2\n  max_size: 0.1\n");
  EXPECT_NE(message.find("world.min_size"), std::string::npos) << message;
  EXPECT_NE(message.find("world.max_size"), std::string::npos) << message;
}

TEST_F(RecipeFile, SetOverridesFileWithSameChecks) {
  WorldRecipe recipe;
  Schema schema;
  load_recipe(write("world:\n  resolution: 32\n"),
              {"world.resolution=48", "world.colors=[red, blue]", "run.name=elsewhere"}, recipe,
              schema);
  EXPECT_EQ(recipe.world.resolution, 48);
  EXPECT_EQ(recipe.world.colors, (std::vector<std::string>{"red", "blue"}));
  EXPECT_EQ(recipe.run.name, "elsewhere");

  const std::string unknown = error_of("", {"world.resolutoin=48"});
  EXPECT_NE(unknown.find("--set world.resolutoin=48"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("did you mean 'world.resolution'"), std::string::npos) << unknown;
  EXPECT_NE(error_of("", {"world.resolution=4096"}).find("must be in [16, 1024]"),
            std::string::npos);

  WorldRecipe other;
  Schema other_schema;
  EXPECT_THROW(load_recipe("", {"world.resolution"}, other, other_schema), UsageError);
}

TEST_F(RecipeFile, MissingFileIsRecipeError) {
  WorldRecipe recipe;
  Schema schema;
  try {
    load_recipe((dir_ / "absent.yaml").string(), {}, recipe, schema);
    FAIL() << "no error";
  } catch (const RecipeError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.yaml"), std::string::npos);
  }
}

TEST_F(RecipeFile, ResolvedRecipeReloadsToSameValues) {
  WorldRecipe first;
  Schema schema;
  load_recipe("", {"world.resolution=40", "questions.types=[count, shape]", "run.seed=99"}, first,
              schema);
  const std::string path = write(schema.resolved_yaml());

  WorldRecipe second;
  Schema second_schema;
  load_recipe(path, {}, second, second_schema);
  EXPECT_EQ(second.world.resolution, 40);
  EXPECT_EQ(second.questions.types, (std::vector<std::string>{"count", "shape"}));
  EXPECT_EQ(second.run.seed, 99);
  EXPECT_EQ(second_schema.resolved_yaml(), schema.resolved_yaml());
}

// docs/recipes.md must document every key of the world recipe (the others: train tests).
TEST(RecipeDocs, EveryKeyIsDocumented) {
  const std::string docs = util::read_file(std::string(CORL_SOURCE_DIR) + "/docs/recipes.md");
  WorldRecipe world;
  Schema world_schema;
  bind(world_schema, world);
  for (const auto& field : world_schema.fields()) {
    EXPECT_NE(docs.find("`" + field->key + "`"), std::string::npos)
        << field->key << " is missing from docs/recipes.md";
  }
}

// The shipped recipes load cleanly.
TEST(ShippedRecipes, Load) {
  const std::string root = CORL_SOURCE_DIR;
  WorldRecipe world;
  Schema world_schema;
  EXPECT_NO_THROW(load_recipe(root + "/configs/world.yaml", {}, world, world_schema));
  WorldRecipe web;
  Schema web_schema;
  EXPECT_NO_THROW(load_recipe(root + "/configs/web.yaml", {}, web, web_schema));
}

// A section whose entries the recipe names (grpo's reward.remote.<name>).
struct Endpoint {
  std::string url;
  int batch = 4;
};

void bind_endpoint(Schema& s, const std::string& key, Endpoint& e) {
  s.add(key + ".url", &e.url, "Where it listens");
  s.add(key + ".batch", &e.batch, "Items a request").range(1, 64);
}

TEST(NamedSections, EntriesComeFromTheFileAndFromSet) {
  std::map<std::string, Endpoint> endpoints;
  int other = 1;
  Schema schema;
  schema.add("other", &other, "Another key");
  schema.add_sections("servers", &endpoints, bind_endpoint);
  schema.load(YAML::Load("servers:\n  judge: {url: a, batch: 8}\n  clip:\n    url: b\nother: 2\n"),
              "r.yaml");
  schema.set("servers.vlm.url=c");
  schema.set("servers.judge.batch=9");
  ASSERT_EQ(endpoints.size(), 3u);
  EXPECT_EQ(endpoints.at("judge").url, "a");
  EXPECT_EQ(endpoints.at("judge").batch, 9);
  EXPECT_EQ(endpoints.at("clip").url, "b");
  EXPECT_EQ(endpoints.at("clip").batch, 4);  // the entry's defaults
  EXPECT_EQ(endpoints.at("vlm").url, "c");
  EXPECT_EQ(other, 2);
  // The resolved recipe holds every entry and reads back to the same.
  std::map<std::string, Endpoint> again;
  int other_again = 1;
  Schema second;
  second.add("other", &other_again, "Another key");
  second.add_sections("servers", &again, bind_endpoint);
  second.load(schema.resolved(), "resolved.yaml");
  EXPECT_EQ(second.resolved_yaml(), schema.resolved_yaml());
  EXPECT_EQ(again.at("judge").batch, 9);
  // The table lists an entry's keys once, by a placeholder name.
  const std::string table = schema.markdown();
  EXPECT_NE(table.find("| `servers.<name>.url` | string |"), std::string::npos) << table;
  EXPECT_EQ(table.find("servers.judge"), std::string::npos) << table;
}

TEST(NamedSections, MistakesNameTheKey) {
  const auto error_of = [](const std::string& text, const std::string& set) {
    std::map<std::string, Endpoint> endpoints;
    Schema schema;
    schema.add_sections("servers", &endpoints, bind_endpoint);
    try {
      if (!text.empty()) schema.load(YAML::Load(text), "r.yaml");
      if (!set.empty()) schema.set(set);
    } catch (const RecipeError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_of("servers:\n  judge:\n    urll: a\n", ""),
            "r.yaml:3: unknown key 'servers.judge.urll'; did you mean 'servers.judge.url'?");
  EXPECT_EQ(error_of("servers:\n  judge: 3\n", ""),
            "r.yaml:2: servers.judge: is a section of keys, got '3'");
  EXPECT_EQ(error_of("servers: [a, b]\n", ""),
            "r.yaml:1: servers: is a section of keys, got '[a, b]'");
  EXPECT_EQ(error_of("", "servers.judge.batch=100"),
            "--set servers.judge.batch=100: servers.judge.batch: must be in [1, 64], got 100");
  EXPECT_EQ(error_of("", "servers.a b.url=x"),
            "--set servers.a b.url=x: servers.a b: a name is letters, digits, '_' and '-'");
}

TEST(EditDistance, WorkedCases) {
  EXPECT_EQ(util::edit_distance("", ""), 0u);
  EXPECT_EQ(util::edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(util::edit_distance("resolution", "resoluton"), 1u);
  EXPECT_EQ(util::edit_distance("abc", ""), 3u);
}

// FNV-1a's steps from the hash's own basis, worked apart from the code (Python integers mod 2^64):
// h = basis; for each byte c: h = ((h xor c) * 1099511628211) mod 2^64.
TEST(StableHash, WorkedValues) {
  EXPECT_EQ(util::stable_hash(""), 1469598103934665603ull);
  EXPECT_EQ(util::stable_hash("a"), 0x44bd8ad473cd9906ull);
  EXPECT_EQ(util::stable_hash("foobar"), 0x88fad7c0a8ff07f2ull);
}

}  // namespace
}  // namespace corl::config
