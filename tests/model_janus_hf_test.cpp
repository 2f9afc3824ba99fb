// Hugging Face Janus checkpoints: a tiny JanusForConditionalGeneration built and run by
// transformers (tests/janus_hf_reference.py) is loaded here, and every output must match the one
// transformers computed: text logits, image-code logits, VQ decode, token ids, pixel values. The
// other way round, a model written here is read and run by transformers
// (tests/janus_hf_roundtrip.py).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <set>

#include "corl/model/inputs.h"
#include "corl/model/janus_hf.h"
#include "corl/tokenize/byte_level_bpe.h"
#include "corl/train/checkpoint.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/safetensors.h"

namespace corl::model {
namespace {

namespace fs = std::filesystem;

const std::string kPython = CORL_SOURCE_DIR "/.venv/bin/python";

int run_python(const std::string& args, const std::string& log) {
  const int status =
      std::system(("nice -n 10 '" + kPython + "' " + args + " > '" + log + "' 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The reference folder, made once per version of the script and shared by the test processes
// (ctest runs each test case in its own): generated under a private name, renamed into place.
// Empty when transformers is missing.
std::string reference_dir(std::string* why) {
  const std::string script = CORL_SOURCE_DIR "/tests/janus_hf_reference.py";
  const size_t hash = std::hash<std::string>{}(util::read_file(script));
  const fs::path dir = fs::path(CORL_BINARY_DIR) / ("janus_hf_ref-" + std::to_string(hash));
  if (fs::is_regular_file(dir / "reference.json")) return dir.string();
  if (!fs::exists(kPython)) {
    *why = kPython + " not found; run scripts/setup.sh";
    return "";
  }
  const fs::path temp = dir.string() + ".tmp-" + std::to_string(::getpid());
  util::remove_tree(temp.string());
  const std::string log = temp.string() + ".log";
  const int status = run_python("'" + script + "' '" + temp.string() + "'", log);
  if (status == 77) {
    *why =
        "transformers or tokenizers is not installed in .venv (scripts/setup.sh installs "
        "them): " +
        util::read_file(log);
    return "";
  }
  if (status != 0)
    throw std::runtime_error("janus_hf_reference.py failed: " + util::read_file(log));
  std::error_code error;
  fs::rename(temp, dir, error);  // another process may have won the race: its folder is as good
  util::remove_tree(temp.string());
  return dir.string();
}

std::map<std::string, torch::Tensor> tensors_of(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : util::load_safetensors(path).tensors) out[name] = t;
  return out;
}

// Relative error max|a - b| / max|b|, and the same argmax over the last dimension everywhere.
void expect_match(const torch::Tensor& ours, const torch::Tensor& theirs, const std::string& what,
                  double tolerance = 1e-4, bool argmax = true) {
  ASSERT_EQ(ours.sizes(), theirs.sizes()) << what;
  const auto a = ours.to(torch::kFloat64), b = theirs.to(torch::kFloat64);
  const double relative = ((a - b).abs().max() / b.abs().max()).item<double>();
  EXPECT_LE(relative, tolerance) << what;
  std::cout << what << ": relative error " << relative << " (max |ref| "
            << b.abs().max().item<double>() << ")\n";
  if (argmax) {
    EXPECT_TRUE(torch::equal(ours.argmax(-1), theirs.argmax(-1))) << what << ": argmax differs";
  }
}

class JanusHFTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(0);
    std::string why;
    dir_ = reference_dir(&why);
    if (dir_.empty()) GTEST_SKIP() << why;
    ref_ = tensors_of(dir_ + "/reference.safetensors");
    json_ = nlohmann::json::parse(util::read_file(dir_ + "/reference.json"));
  }
  std::string model_dir() const { return dir_ + "/model"; }

  std::string dir_;
  std::map<std::string, torch::Tensor> ref_;
  nlohmann::json json_;
};

TEST_F(JanusHFTest, TextLogitsOfAnImageQuestionMatchTransformers) {
  auto hf = load_janus_hf(model_dir());
  torch::NoGradGuard no_grad;
  const auto ids = ref_.at("mm_input_ids");
  Batch batch;
  batch.input_ids = ids;
  batch.attention_mask = torch::ones_like(ids);
  batch.position_ids = torch::arange(ids.size(1)).unsqueeze(0).expand_as(ids).contiguous();
  batch.understanding = ids.eq(hf.config.image_token_id);
  batch.generation = torch::zeros_like(batch.understanding);
  batch.codes = torch::zeros_like(ids);
  batch.images = ref_.at("mm_pixel_values");
  const auto hidden =
      hf.model->hidden_states(hf.model->embed(batch), batch.attention_mask, batch.position_ids);
  expect_match(hf.model->text_logits(hidden), ref_.at("mm_logits"), "text logits");
}

TEST_F(JanusHFTest, ImageCodeLogitsOfATextToImagePromptMatchTransformers) {
  auto hf = load_janus_hf(model_dir());
  torch::NoGradGuard no_grad;
  const auto ids = ref_.at("t2i_input_ids");
  const auto codes = ref_.at("t2i_codes");
  const auto embeddings = torch::cat(
      {hf.model->language_model->model->embed_tokens(ids), hf.model->embed_image_codes(codes)}, 1);
  const int64_t length = embeddings.size(1);
  const auto hidden = hf.model->hidden_states(embeddings, torch::ones({1, length}, torch::kLong),
                                              torch::arange(length).unsqueeze(0));
  expect_match(hf.model->image_logits(hidden), ref_.at("t2i_image_logits"), "image-code logits");
}

TEST_F(JanusHFTest, VQDecodeOfFixedCodesMatchesTransformers) {
  auto hf = load_janus_hf(model_dir());
  torch::NoGradGuard no_grad;
  const auto codes = ref_.at("vq_codes");
  const int64_t grid = hf.config.vq.grid();
  const auto raw =
      hf.vq->decoder(hf.vq->post_quant_conv(hf.vq->quantize->lookup(codes, grid, grid)));
  expect_match(raw, ref_.at("vq_decoded"), "VQ decode", 1e-4, /*argmax=*/false);
  // decode() is the same picture clamped to the image range.
  EXPECT_TRUE(torch::allclose(hf.vq->decode(codes), raw.clamp(-1, 1)));
}

TEST_F(JanusHFTest, TokenIdsEqualTransformers) {
  const tokenize::TextTokenizer deepseek(model_dir() + "/tokenizer.json");
  const tokenize::ByteLevelBPE gpt2(dir_ + "/gpt2_tokenizer/tokenizer.json");
  const auto& strings = json_.at("strings");
  ASSERT_FALSE(strings.empty());
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string s = strings[i].get<std::string>();
    const auto want_deepseek = json_.at("deepseek_ids")[i].get<std::vector<int>>();
    const auto want_gpt2 = json_.at("gpt2_ids")[i].get<std::vector<int>>();
    EXPECT_EQ(deepseek.encode(s), want_deepseek) << "DeepSeek-style split: '" << s << "'";
    EXPECT_EQ(gpt2.encode(s), want_gpt2) << "GPT-2 ByteLevel regex: '" << s << "'";
    EXPECT_EQ(deepseek.decode(deepseek.encode(s)), s);
    EXPECT_EQ(gpt2.decode(gpt2.encode(s)), s);
  }
  // Special tokens come from tokenizer_config.json.
  EXPECT_EQ(deepseek.bos_id(), deepseek.piece_id("<｜begin▁of▁sentence｜>"));
  EXPECT_EQ(deepseek.eos_id(), deepseek.piece_id("<｜end▁of▁sentence｜>"));
  EXPECT_EQ(deepseek.pad_id(), deepseek.piece_id("<｜▁pad▁｜>"));
}

TEST_F(JanusHFTest, PixelValuesEqualTheImageProcessor) {
  const auto processor = image_processor_from_file(model_dir() + "/preprocessor_config.json");
  EXPECT_TRUE(processor.is_unit_range(32));
  for (const char* name : {"square", "wide"}) {
    auto bytes = ref_.at(std::string("pre_") + name + "_image").contiguous();  // [H, W, 3]
    const cv::Mat image(static_cast<int>(bytes.size(0)), static_cast<int>(bytes.size(1)), CV_8UC3,
                        bytes.data_ptr());
    const auto ours = processor(image);
    const auto theirs = ref_.at(std::string("pre_") + name + "_pixels")[0];
    ASSERT_EQ(ours.sizes(), theirs.sizes()) << name;
    EXPECT_LE((ours - theirs).abs().max().item<double>(), 1e-6) << name;
  }
}

// The policy a GRPO stage starts from: the folder as it comes, with the prompt built by our own
// sequence builder encoding to exactly the ids transformers was given.
TEST_F(JanusHFTest, PolicyFromTheFolderBuildsTheSamePromptAndLogits) {
  auto policy = train::load_policy(model_dir());
  ASSERT_TRUE(policy.hf);
  const SequenceBuilder builder(*policy.text, policy.model->config);
  const auto sequence = builder.image_to_text(ref_.at("mm_pixel_values")[0], "How many circles?");
  const auto want = ref_.at("mm_input_ids")[0];
  ASSERT_EQ(static_cast<int64_t>(sequence.ids.size()), want.size(0));
  for (int64_t t = 0; t < want.size(0); ++t) {
    EXPECT_EQ(sequence.ids[t], want[t].item<int64_t>()) << "position " << t;
  }
  torch::NoGradGuard no_grad;
  const auto batch = builder.collate({sequence}, Padding::kRight);
  const auto hidden = policy.model->hidden_states(policy.model->embed(batch), batch.attention_mask,
                                                  batch.position_ids);
  expect_match(policy.model->text_logits(hidden), ref_.at("mm_logits").narrow(0, 0, 1),
               "policy text logits");
}

// A missing, an extra and a mis-shaped tensor are all named, and nothing loads.
TEST_F(JanusHFTest, MismatchedTensorsAreAllListed) {
  const fs::path broken = fs::path(dir_) / ("broken-" + std::to_string(::getpid()));
  util::remove_tree(broken.string());
  fs::create_directories(broken);
  fs::copy_file(model_dir() + "/config.json", broken / "config.json");
  util::NamedTensors tensors;
  const auto index =
      nlohmann::json::parse(util::read_file(model_dir() + "/model.safetensors.index.json"));
  std::set<std::string> shards;
  for (const auto& [name, file] : index.at("weight_map").items())
    shards.insert(file.get<std::string>());
  for (const auto& shard : shards) {
    for (auto& [name, t] : util::load_safetensors(model_dir() + "/" + shard).tensors) {
      if (name == "model.aligner.fc1.bias") continue;                               // missing
      if (name == "model.generation_head.vision_head.bias") t = torch::zeros({3});  // mis-shaped
      tensors.emplace_back(name, t);
    }
  }
  tensors.emplace_back("model.vision_model.head.weight", torch::zeros({2}));  // extra
  util::save_safetensors((broken / "model.safetensors").string(), tensors);
  try {
    load_janus_hf(broken.string());
    FAIL() << "loaded a checkpoint with mismatched tensors";
  } catch (const DataError& e) {
    const std::string message = e.what();
    for (const char* part :
         {"missing (1): model.aligner.fc1.bias", "extra (1): model.vision_model.head.weight",
          "mis-shaped (1): model.generation_head.vision_head.bias [3] (expected [96])"}) {
      EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
    }
  }
  util::remove_tree(broken.string());
}

TEST(JanusHFNames, MapOntoTransformersNames) {
  EXPECT_EQ(janus_hf_name("vision_model.encoder.layers.3.self_attn.out_proj.weight"),
            "model.vision_model.encoder.layers.3.self_attn.projection_layer.weight");
  EXPECT_EQ(janus_hf_name("gen_head.output_mlp_projector.bias"),
            "model.generation_head.proj_out.bias");
  EXPECT_EQ(janus_hf_name("language_model.model.layers.0.mlp.up_proj.weight"),
            "model.language_model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(janus_hf_name("language_model.lm_head.weight"), "lm_head.weight");
  EXPECT_EQ(janus_hf_vq_name("encoder.conv_blocks.2.res.1.norm1.weight"),
            "model.vqmodel.encoder.down.2.block.1.norm1.weight");
  EXPECT_EQ(janus_hf_vq_name("decoder.conv_blocks.0.upsample.conv.bias"),
            "model.vqmodel.decoder.up.0.upsample.conv.bias");
  EXPECT_EQ(janus_hf_vq_name("decoder.mid.1.proj_out.weight"),
            "model.vqmodel.decoder.mid.attn_1.proj_out.weight");
  EXPECT_EQ(janus_hf_vq_name("quantize.embedding.weight"),
            "model.vqmodel.quantize.embedding.weight");
}

// SigLIP has no convolution stem, so a model with one has no transformers layout.
TEST(JanusHFExport, RefusesAConvolutionStem) {
  JanusHFConfig config;
  config.vq.norm_groups = 32;
  config.model.aligner_hidden_act = config.model.vision_hidden_act;
  config.model.image_size = config.vq.grid() * config.model.patch_size;
  EXPECT_NO_THROW(janus_config_to_json(config));
  config.model.vision_stem_channels = 16;
  try {
    janus_config_to_json(config);
    FAIL() << "a stem was exported";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("convolution stem"), std::string::npos) << e.what();
  }
}

// Fields of the wrong type or range are named, never converted: get<int> of 1.4e52 is
// undefined, and a JSON that is not an object threw nlohmann's own exception (found by
// fuzz/janus_config.cpp).
TEST(JanusHFConfigFile, WrongTypesAndRangesAreNamed) {
  JanusHFConfig config;
  config.vq.norm_groups = 32;
  config.vq.channels = 32;  // every level's channels a multiple of transformers' 32 groups
  config.model.aligner_hidden_act = config.model.vision_hidden_act;
  config.model.image_size = config.vq.grid() * config.model.patch_size;
  const nlohmann::json good = janus_config_to_json(config);
  EXPECT_EQ(janus_config_from_json(good, "config.json").model.hidden_size,
            config.model.hidden_size);
  const auto message = [](const nlohmann::json& j) -> std::string {
    try {
      janus_config_from_json(j, "config.json");
    } catch (const DataError& e) {
      return e.what();
    }
    return "read";
  };
  auto j = good;
  j["text_config"]["hidden_size"] = 1.4e52;
  EXPECT_NE(message(j).find("text_config.hidden_size has the wrong type or range"),
            std::string::npos)
      << message(j);
  j = good;
  j["text_config"]["num_hidden_layers"] = int64_t{1} << 40;
  EXPECT_NE(message(j).find("text_config.num_hidden_layers has the wrong type or range"),
            std::string::npos)
      << message(j);
  j = good;
  j["vq_config"]["channel_multiplier"] = nlohmann::json::array();
  for (int i = 0; i < 40; ++i) j["vq_config"]["channel_multiplier"].push_back(1);
  EXPECT_NE(message(j).find("channel_multiplier has no level or over 16"), std::string::npos)
      << message(j);
  j = good;
  j["tie_word_embeddings"] = 3;
  EXPECT_NE(message(j).find("config.json: "), std::string::npos) << message(j);
  EXPECT_NE(message(nlohmann::json(7)).find("model_type is not \"janus\""), std::string::npos);
}

// A model written here is read by transformers without a missing or extra tensor, and computes
// the same outputs there.
TEST(JanusHFExport, TransformersReadsAndRunsWhatCorlWrites) {
  if (!fs::exists(kPython)) GTEST_SKIP() << kPython << " not found; run scripts/setup.sh";
  torch::manual_seed(3);
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.intermediate_size = 40;
  c.image_size = 16;
  c.patch_size = 8;
  c.vision_hidden_size = 16;
  c.vision_layers = 1;
  c.vision_heads = 2;
  c.vision_intermediate_size = 24;
  c.image_vocab_size = 24;
  c.image_tokens = 4;
  c.tie_word_embeddings = true;
  tokenize::VQConfig v;
  v.image_size = 8;  // a 2 x 2 grid, as the ViT's
  v.channels = 32;
  v.channel_mult = {1, 1, 2};
  v.z_channels = 32;
  v.codebook_size = 24;
  v.norm_groups = 32;
  UnifiedModel model(c);
  tokenize::VQModel vq(v);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
    for (auto& p : vq->parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  model->eval();
  vq->eval();
  const fs::path dir =
      fs::path(CORL_BINARY_DIR) / ("janus_hf_export-" + std::to_string(::getpid()));
  util::remove_tree(dir.string());
  save_janus_hf(dir.string(), model, vq, /*image_token_id=*/7);

  // The folder reads back here unchanged.
  auto back = load_janus_hf(dir.string());
  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), back.model->named_parameters()[p.key()])) << p.key();
  }

  torch::NoGradGuard no_grad;
  std::vector<int64_t> ids = {1, 5, 7, 7, 7, 7, 9, 12, 3};
  const auto mm_ids = torch::tensor(ids).unsqueeze(0);
  const auto pixels = torch::rand({1, 3, 16, 16}) * 2 - 1;
  const auto t2i_ids = torch::tensor(std::vector<int64_t>{1, 20, 21, 4}).unsqueeze(0);
  const auto codes = torch::tensor(std::vector<int64_t>{3, 0, 23, 11}).unsqueeze(0);
  const auto vq_codes = torch::randint(0, 24, {2, 4});
  util::save_safetensors((dir / "inputs.safetensors").string(), {{"mm_input_ids", mm_ids},
                                                                 {"mm_pixel_values", pixels},
                                                                 {"t2i_input_ids", t2i_ids},
                                                                 {"t2i_codes", codes},
                                                                 {"vq_codes", vq_codes}});
  const std::string log = (dir / "python.log").string();
  const int status =
      run_python("'" CORL_SOURCE_DIR "/tests/janus_hf_roundtrip.py' '" + dir.string() + "'", log);
  if (status == 77)
    GTEST_SKIP() << "transformers is not installed in .venv: " << util::read_file(log);
  ASSERT_EQ(status, 0) << util::read_file(log);
  const auto theirs = tensors_of((dir / "outputs.safetensors").string());

  Batch batch;
  batch.input_ids = mm_ids;
  batch.attention_mask = torch::ones_like(mm_ids);
  batch.position_ids = torch::arange(mm_ids.size(1)).unsqueeze(0);
  batch.understanding = mm_ids.eq(7);
  batch.generation = torch::zeros_like(batch.understanding);
  batch.codes = torch::zeros_like(mm_ids);
  batch.images = pixels;
  auto hidden = model->hidden_states(model->embed(batch), batch.attention_mask, batch.position_ids);
  expect_match(model->text_logits(hidden), theirs.at("mm_logits"), "exported text logits");

  const auto embeddings = torch::cat(
      {model->language_model->model->embed_tokens(t2i_ids), model->embed_image_codes(codes)}, 1);
  hidden = model->hidden_states(embeddings, torch::ones({1, 8}, torch::kLong),
                                torch::arange(8).unsqueeze(0));
  expect_match(model->image_logits(hidden), theirs.at("t2i_image_logits"), "exported code logits");

  const auto raw = vq->decoder(vq->post_quant_conv(vq->quantize->lookup(vq_codes, 2, 2)));
  expect_match(raw, theirs.at("vq_decoded"), "exported VQ decode", 1e-4, false);
  util::remove_tree(dir.string());
}

}  // namespace
}  // namespace corl::model
