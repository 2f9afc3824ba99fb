#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "corl/data/dataset.h"
#include "corl/tokenize/recipe.h"
#include "corl/tokenize/text_tokenizer.h"
#include "corl/tokenize/vq.h"
#include "corl/train/checkpoint.h"
#include "corl/train/pretrain.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/safetensors.h"

namespace corl::train {
namespace {

namespace fs = std::filesystem;

// A tiny world, tokenizers and recipe, made once for the file.
class TinyPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One folder per process: ctest runs this file's test cases side by side.
    root_ = fs::temp_directory_path() / ("corl_train_pretrain_test_" + std::to_string(::getpid()));
    util::remove_tree(root_.string());
    config::WorldRecipe world;
    world.world.resolution = 16;
    world.world.min_size = 0.2;
    world.world.max_size = 0.24;
    world.world.max_objects = 2;
    world.data.train_size = 48;
    world.data.eval_size = 8;
    data::write_world_dataset(world, (root_ / "data").string());

    const auto rows = data::read_dataset((root_ / "data/train.jsonl").string(), {false, 0, false});
    std::vector<std::string> sentences;
    for (const auto& r : rows.records) {
      sentences.insert(sentences.end(), {r.prompt, r.qa_problem, r.qa_solution});
    }
    fs::create_directories(root_ / "tokenizer");
    tokenize::TextTokenizerOptions text;
    text.vocab_size = 400;
    tokenize::TextTokenizer::train(sentences, (root_ / "tokenizer/text").string(), text);

    tokenize::VQConfig vq;
    vq.image_size = 16;
    vq.channels = 8;
    vq.channel_mult = {1, 2, 2};
    vq.z_channels = 8;
    vq.codebook_size = 32;
    vq.norm_groups = 4;
    torch::manual_seed(0);
    tokenize::VQModel model(vq);
    tokenize::save_vq(model, (root_ / "tokenizer/vq.safetensors").string());
  }
  static void TearDownTestSuite() { util::remove_tree(root_.string()); }

  static PretrainRecipe recipe() {
    PretrainRecipe r;
    r.data.train = (root_ / "data/train.jsonl").string();
    r.data.eval = (root_ / "data/eval.jsonl").string();
    r.tokenizer = (root_ / "tokenizer").string();
    r.model.hidden_size = 32;
    r.model.num_layers = 2;
    r.model.num_heads = 4;
    r.model.num_kv_heads = 2;
    r.model.intermediate_size = 48;
    r.model.image_size = 16;
    r.model.patch_size = 8;
    r.model.vision_hidden_size = 16;
    r.model.vision_layers = 1;
    r.model.vision_heads = 2;
    r.model.vision_intermediate_size = 24;
    r.optim.warmup_steps = 1;
    r.train.steps = 4;
    r.train.t2i_batch = 3;
    r.train.caption_batch = 1;
    r.train.qa_batch = 2;
    r.train.checkpoint_every = 2;
    r.train.log_every = 1;
    r.eval.prompts = 4;
    r.eval.questions = 4;
    r.eval.max_new_tokens = 8;
    return r;
  }

  static fs::path root_;
};
fs::path TinyPipeline::root_;

TEST_F(TinyPipeline, ResumedRunEndsWithTheSameWeights) {
  const auto r = recipe();
  {
    util::RunDir run((root_ / "whole").string(), "");
    pretrain(r, run, false);
  }
  ASSERT_TRUE(fs::exists(root_ / "whole/final/model.safetensors"));
  ASSERT_TRUE(fs::exists(root_ / "whole/checkpoints/step-00000002/optimizer.pt"));

  // A run killed after its step-2 checkpoint, then resumed.
  fs::create_directories(root_ / "resumed/checkpoints");
  fs::copy(root_ / "whole/checkpoints/step-00000002", root_ / "resumed/checkpoints/step-00000002",
           fs::copy_options::recursive);
  {
    util::RunDir run((root_ / "resumed").string(), "");
    pretrain(r, run, true);
  }
  const auto whole = util::load_safetensors((root_ / "whole/final/model.safetensors").string());
  const auto resumed = util::load_safetensors((root_ / "resumed/final/model.safetensors").string());
  ASSERT_EQ(whole.tensors.size(), resumed.tensors.size());
  for (size_t i = 0; i < whole.tensors.size(); ++i) {
    EXPECT_EQ(whole.tensors[i].first, resumed.tensors[i].first);
    EXPECT_TRUE(torch::equal(whole.tensors[i].second, resumed.tensors[i].second))
        << whole.tensors[i].first;
  }

  // The final checkpoint loads as a policy, with the figures pretraining printed.
  const Policy policy = load_policy((root_ / "whole").string());
  EXPECT_EQ(policy.dir, (root_ / "whole/final").string());
  EXPECT_EQ(policy.trainer.at("prompts").get<int>(), 4);
  EXPECT_EQ(policy.trainer.at("questions").get<int>(), 4);
  EXPECT_GE(policy.trainer.at("geneval").get<double>(), 0.0);
}

TEST_F(TinyPipeline, MissingOrDamagedCheckpointIsAClearError) {
  EXPECT_THROW(load_policy((root_ / "nowhere").string()), corl::DataError);
  const auto r = recipe();
  {
    util::RunDir run((root_ / "damaged").string(), "");
    auto short_recipe = r;
    short_recipe.train.steps = 1;
    short_recipe.eval.prompts = 0;
    short_recipe.eval.questions = 0;
    pretrain(short_recipe, run, false);
  }
  const auto weights = root_ / "damaged/final/model.safetensors";
  const std::string bytes = util::read_file(weights.string());
  util::write_file_atomic(weights.string(), bytes.substr(0, bytes.size() / 2));
  try {
    load_policy((root_ / "damaged").string());
    FAIL() << "a truncated checkpoint loaded";
  } catch (const corl::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
}

// Scene captions train on rows that carry their scene, and name the row that does not.
TEST_F(TinyPipeline, SceneCaptionsTrainAndNameARowWithoutAScene) {
  auto r = recipe();
  r.train.steps = 1;
  r.train.caption_text = "scene";
  r.eval.prompts = 0;
  r.eval.questions = 0;
  {
    util::RunDir run((root_ / "scene_captions").string(), "");
    pretrain(r, run, false);
  }
  EXPECT_TRUE(fs::exists(root_ / "scene_captions/final/model.safetensors"));

  std::istringstream rows(util::read_file(r.data.train));
  std::string line, without;
  for (int n = 1; std::getline(rows, line); ++n) {
    auto row = nlohmann::json::parse(line);
    if (n == 2) row.erase("scene");
    without += row.dump() + "\n";
  }
  r.data.train = (root_ / "data/without_scene.jsonl").string();
  util::write_file_atomic(r.data.train, without);
  util::RunDir run((root_ / "without_scene").string(), "");
  try {
    pretrain(r, run, false);
    FAIL() << "a row without a scene was captioned";
  } catch (const corl::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("without_scene.jsonl:2: row has no scene"),
              std::string::npos)
        << e.what();
  }
}

// docs/recipes.md documents every key of the pretrain and tokenizer recipes, and the shipped
// recipes load.
TEST(RecipeDocs, PretrainAndTokenizerKeysAreDocumented) {
  const std::string root = CORL_SOURCE_DIR;
  const std::string docs = util::read_file(root + "/docs/recipes.md");
  PretrainRecipe pretrain_recipe;
  config::Schema pretrain_schema;
  config::load_recipe(root + "/configs/pretrain.yaml", {}, pretrain_recipe, pretrain_schema);
  tokenize::TokenizerRecipe tokenizer_recipe;
  config::Schema tokenizer_schema;
  config::load_recipe(root + "/configs/tokenizers.yaml", {}, tokenizer_recipe, tokenizer_schema);
  for (const config::Schema* schema : {&pretrain_schema, &tokenizer_schema}) {
    for (const auto& field : schema->fields()) {
      EXPECT_NE(docs.find("`" + field->key + "`"), std::string::npos) << field->key;
    }
  }
}

}  // namespace
}  // namespace corl::train
