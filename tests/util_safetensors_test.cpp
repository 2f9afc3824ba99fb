#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "corl/util/error.h"
#include "corl/util/fs.h"
#include "corl/util/safetensors.h"

namespace corl::util {
namespace {

namespace fs = std::filesystem;

// std::filesystem::remove_all resolves to a copy exported by the PyPI wheel's libtorch.so, which
// crashes (calls a null pointer); the other std::filesystem calls used here are safe.
void remove_tree(const fs::path& dir) {
  std::error_code error;
  if (!fs::is_directory(fs::symlink_status(dir, error))) {
    fs::remove(dir, error);
    return;
  }
  std::vector<fs::path> children;
  for (const auto& entry : fs::directory_iterator(dir, error)) children.push_back(entry.path());
  for (const auto& child : children) remove_tree(child);
  fs::remove(dir, error);
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The process id keeps two suites run side by side out of each other's files.
    dir_ = fs::temp_directory_path() /
           (std::string("corl_safetensors_test_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
            std::to_string(::getpid()));
    remove_tree(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { remove_tree(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A file made of an 8-byte little-endian length, `header` as given, then `data`.
  std::string write_raw(const std::string& name, const std::string& header,
                        const std::string& data) const {
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
    std::string file = path(name);
    std::ofstream(file, std::ios::binary) << bytes << header << data;
    return file;
  }

  fs::path dir_;
};

// The values tests/safetensors_interop.py builds too; keep the two in step.
NamedTensors reference_tensors() {
  return {
      {"f32", torch::arange(6, torch::kFloat32).reshape({2, 3}) - 2.5},
      {"f16", torch::tensor({0.5, -1.25, 65504.0}).to(torch::kFloat16)},
      {"bf16", torch::tensor({1.0, -3.5, 256.0}).to(torch::kBFloat16)},
      {"f64", torch::tensor(3.25, torch::kFloat64)},
      {"i64", torch::tensor({int64_t{-1}, int64_t{1} << 40}, torch::kInt64)},
      {"i32", torch::tensor({1, -2, 3, -4}, torch::kInt32).reshape({2, 2})},
      {"u8", torch::tensor({0, 255, 7}, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"empty", torch::zeros({0, 4}, torch::kFloat32)},
  };
}

void expect_same(const torch::Tensor& expected, const torch::Tensor& actual,
                 const std::string& name) {
  EXPECT_EQ(expected.scalar_type(), actual.scalar_type()) << name;
  EXPECT_EQ(expected.sizes(), actual.sizes()) << name;
  EXPECT_TRUE(torch::equal(expected.cpu(), actual)) << name;
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeShapeAndMetadata) {
  NamedTensors tensors = reference_tensors();
  tensors.emplace_back("i16", torch::tensor({-300, 300}, torch::kInt16));
  tensors.emplace_back("i8", torch::tensor({-128, 127}, torch::kInt8));
  tensors.emplace_back("bf16.scalar", torch::tensor(-0.375).to(torch::kBFloat16));
  tensors.emplace_back("empty.i64", torch::empty({3, 0}, torch::kInt64));
  tensors.emplace_back("f64.random", torch::randn({5, 7}, torch::kFloat64));
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"step", "7"}};
  save_safetensors(path("w.safetensors"), tensors, metadata);

  const SafetensorsFile file = load_safetensors(path("w.safetensors"));
  EXPECT_EQ(file.metadata, metadata);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(file.tensors[i].first, tensors[i].first) << "order is kept";
    expect_same(tensors[i].second, file.tensors[i].second, tensors[i].first);
  }
}

TEST_F(SafetensorsTest, ReadsMetadataAloneAfterCheckingTheHeader) {
  save_safetensors(path("w.safetensors"), reference_tensors(), {{"vq_config", "{\"a\":1}"}});
  EXPECT_EQ(read_metadata(path("w.safetensors")),
            (std::map<std::string, std::string>{{"vq_config", "{\"a\":1}"}}));
  save_safetensors(path("bare.safetensors"), reference_tensors());
  EXPECT_TRUE(read_metadata(path("bare.safetensors")).empty());
  std::ofstream(path("w.safetensors"), std::ios::binary | std::ios::app) << "x";
  EXPECT_THROW(read_metadata(path("w.safetensors")), DataError);
}

TEST_F(SafetensorsTest, WritesNonContiguousTensorsByValue) {
  const torch::Tensor base = torch::arange(24, torch::kFloat32).reshape({4, 6});
  const NamedTensors tensors = {
      {"transposed", base.t()},
      {"strided", base.index({torch::indexing::Slice(), torch::indexing::Slice(0, 6, 2)})},
      {"expanded", torch::tensor({1, 2}, torch::kInt32).unsqueeze(0).expand({3, 2})}};
  for (const auto& [name, t] : tensors) ASSERT_FALSE(t.is_contiguous()) << name;
  save_safetensors(path("w.safetensors"), tensors);
  const SafetensorsFile file = load_safetensors(path("w.safetensors"));
  ASSERT_EQ(file.tensors.size(), 3u);
  for (size_t i = 0; i < tensors.size(); ++i)
    expect_same(tensors[i].second.contiguous(), file.tensors[i].second, tensors[i].first);
}

TEST_F(SafetensorsTest, WritesTheFormatByteForByte) {
  save_safetensors(path("w.safetensors"),
                   {{"a", torch::tensor({1.0f, -2.0f})}, {"b", torch::tensor(7, torch::kUInt8)}},
                   {{"k", "v"}});
  // 130 bytes of JSON padded with 6 spaces to 136 = 0x88; 1.0f = 0x3f800000, -2.0f = 0xc0000000.
  const std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"U8","shape":[],"data_offsets":[8,9]}})"
      "      ";
  const std::string expected =
      std::string("\x88\0\0\0\0\0\0\0", 8) + header + std::string("\0\0\x80\x3f\0\0\0\xc0\x07", 9);
  EXPECT_EQ(util::read_file(path("w.safetensors")), expected);
}

TEST_F(SafetensorsTest, ReplacesFilesAtomicallyAndReportsUnwritablePaths) {
  save_safetensors(path("w.safetensors"), {{"x", torch::ones({2})}});
  save_safetensors(path("w.safetensors"), {{"y", torch::zeros({3})}});
  EXPECT_EQ(load_safetensors(path("w.safetensors")).tensors.at(0).first, "y");
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1u) << "no temporary file is left behind";

  const std::string unwritable = path("no/such/dir/w.safetensors");
  try {
    save_safetensors(unwritable, {{"x", torch::ones({2})}});
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(unwritable), std::string::npos) << e.what();
  }
}

TEST_F(SafetensorsTest, RefusesRepeatedReservedAndUnsupportedTensors) {
  EXPECT_THROW(save_safetensors(path("w"), {{"x", torch::ones({1})}, {"x", torch::ones({1})}}),
               std::invalid_argument);
  EXPECT_THROW(save_safetensors(path("w"), {{"__metadata__", torch::ones({1})}}),
               std::invalid_argument);
  EXPECT_THROW(save_safetensors(path("w"), {{"c", torch::ones({1}, torch::kComplexFloat)}}),
               std::invalid_argument);
  EXPECT_FALSE(fs::exists(path("w")));
}

// Each way a file can be broken yields a DataError naming the file and the problem.
TEST_F(SafetensorsTest, RejectsCorruptFiles) {
  const std::string f32x2 = std::string(8, '\0');  // two F32 zeros
  struct Case {
    const char* name;
    std::string file;
    const char* problem;
  };
  const auto tensor = [](const std::string& name, const std::string& dtype,
                         const std::string& shape, int begin, int end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
  };
  std::ofstream(path("short"), std::ios::binary) << "abc";
  std::ofstream(path("beyond"), std::ios::binary) << std::string("\x40\0\0\0\0\0\0\0{}", 10);
  std::ofstream(path("huge"), std::ios::binary) << std::string(8, '\xff') << "{}";
  const std::vector<Case> cases = {
      {"missing", path("missing.safetensors"), "no such file"},
      {"short", path("short"), "shorter than the 8-byte header length"},
      {"beyond", path("beyond"), "goes beyond the file"},
      {"malformed", write_raw("malformed", "{\"a\":{\"dtype\":", f32x2), "malformed JSON"},
      {"not object", write_raw("array", "[1,2]", ""), "not an object"},
      {"unknown dtype", write_raw("dtype", "{" + tensor("a", "F8_E9M9", "[2]", 0, 8) + "}", f32x2),
       "unknown dtype \"F8_E9M9\""},
      {"missing field", write_raw("field", R"({"a":{"dtype":"F32","shape":[2]}})", f32x2),
       "data_offsets"},
      {"bad shape", write_raw("shape", "{" + tensor("a", "F32", "[-2]", 0, 8) + "}", f32x2),
       "not a list of sizes"},
      {"size mismatch", write_raw("size", "{" + tensor("a", "F32", "[3]", 0, 8) + "}", f32x2),
       "needs 12 bytes"},
      {"reversed offsets",
       write_raw("reversed", "{" + tensor("a", "F32", "[0]", 8, 0) + "}", f32x2),
       "end before they begin"},
      {"out of range", write_raw("range", "{" + tensor("a", "F32", "[4]", 0, 16) + "}", f32x2),
       "beyond the data area"},
      {"overlap",
       write_raw(
           "overlap",
           "{" + tensor("a", "F32", "[2]", 0, 8) + "," + tensor("b", "F32", "[1]", 4, 8) + "}",
           f32x2),
       "overlap tensor \"a\""},
      {"gap", write_raw("gap", "{" + tensor("a", "F32", "[1]", 4, 8) + "}", f32x2), "leave a gap"},
      {"trailing", write_raw("trailing", "{" + tensor("a", "F32", "[2]", 0, 8) + "}", f32x2 + "xy"),
       "2 trailing bytes"},
      {"metadata", write_raw("metadata", R"({"__metadata__":{"step":7}})", ""), "not a string"},
      {"bool byte", write_raw("bool", "{" + tensor("a", "BOOL", "[2]", 0, 2) + "}", "\x01\x02"),
       "BOOL byte"},
      {"huge header", path("huge"), "goes beyond the file"},
  };
  for (const auto& c : cases) {
    try {
      load_safetensors(c.file);
      ADD_FAILURE() << c.name << ": expected DataError";
    } catch (const DataError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(c.file), std::string::npos) << c.name << ": " << message;
      EXPECT_NE(message.find(c.problem), std::string::npos) << c.name << ": " << message;
    }
  }
}

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    fc = register_module("fc", torch::nn::Linear(3, 2));
    norm = register_module("norm", torch::nn::BatchNorm1d(2));
    scale = register_buffer("scale", torch::full({1}, 0.5));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
  torch::Tensor scale;
};
TORCH_MODULE(Tiny);

std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> values;
  for (const auto& p : module.named_parameters()) values[p.key()] = p.value().detach().clone();
  for (const auto& b : module.named_buffers()) values[b.key()] = b.value().clone();
  return values;
}

TEST_F(SafetensorsTest, ModuleRoundTripConvertsDtypeWithoutRecordingGradients) {
  torch::manual_seed(1);
  Tiny source;
  source->norm->running_mean.fill_(0.25);
  save_module(*source, path("m.safetensors"), {{"config", "{}"}});
  const SafetensorsFile file = load_safetensors(path("m.safetensors"));
  std::vector<std::string> names;
  for (const auto& [name, t] : file.tensors) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"fc.weight", "fc.bias", "norm.weight", "norm.bias",
                                             "scale", "norm.running_mean", "norm.running_var",
                                             "norm.num_batches_tracked"}));

  Tiny target;
  EXPECT_EQ(load_module(*target, path("m.safetensors")).at("config"), "{}");
  const auto expected = snapshot(*source);
  const auto actual = snapshot(*target);
  for (const auto& [name, value] : expected) expect_same(value, actual.at(name), name);
  for (const auto& p : target->parameters()) {
    EXPECT_TRUE(p.is_leaf());
    EXPECT_TRUE(p.requires_grad());
  }

  // A file in another dtype is converted to the module's.
  NamedTensors wide;
  for (const auto& [name, t] : file.tensors)
    wide.emplace_back(name, t.is_floating_point() ? t.to(torch::kFloat64) * 2 : t);
  save_safetensors(path("wide.safetensors"), wide);
  load_module(*target, path("wide.safetensors"));
  EXPECT_EQ(target->fc->weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(target->fc->weight, source->fc->weight * 2));
}

TEST_F(SafetensorsTest, StrictModuleLoadReportsEveryMismatchAndChangesNothing) {
  Tiny module;
  NamedTensors tensors;
  for (const auto& [name, t] : snapshot(*module)) {
    if (name == "fc.bias" || name == "norm.running_var") continue;  // missing
    tensors.emplace_back(name, name == "fc.weight" ? torch::zeros({3, 3}) : torch::zeros_like(t));
  }
  tensors.emplace_back("vision.extra", torch::zeros({1}));
  tensors.emplace_back("lm_head.weight", torch::zeros({4, 2}));
  save_safetensors(path("m.safetensors"), tensors);

  const auto before = snapshot(*module);
  try {
    load_module(*module, path("m.safetensors"));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string message = e.what();
    for (const char* part : {"m.safetensors", "missing (2): fc.bias, norm.running_var",
                             "extra (2): vision.extra, lm_head.weight",
                             "mis-shaped (1): fc.weight (module [2, 3], file [3, 3])"})
      EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
  const auto after = snapshot(*module);
  for (const auto& [name, value] : before) expect_same(value, after.at(name), name);
}

// Python's own safetensors package reads what we write and writes what we read.
TEST_F(SafetensorsTest, InteroperatesWithPythonSafetensors) {
  const std::string python = CORL_SOURCE_DIR "/.venv/bin/python";
  const std::string script = CORL_SOURCE_DIR "/tests/safetensors_interop.py";
  if (!fs::exists(python)) GTEST_SKIP() << python << " not found; run scripts/setup.sh";
  const std::string log = path("python.log");
  const auto run = [&](const std::string& args) {
    const int status = std::system(("'" + python + "' " + args + " > '" + log + "' 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  if (run("-c 'import safetensors.torch'") != 0)
    GTEST_SKIP() << "Python package safetensors missing from " << python
                 << " (pip install safetensors): " << util::read_file(log);

  const std::map<std::string, std::string> ours = {{"format", "pt"}, {"producer", "corl"}};
  save_safetensors(path("ours.safetensors"), reference_tensors(), ours);
  EXPECT_EQ(run("'" + script + "' check '" + path("ours.safetensors") + "'"), 0)
      << util::read_file(log);

  ASSERT_EQ(run("'" + script + "' write '" + path("theirs.safetensors") + "'"), 0)
      << util::read_file(log);
  const SafetensorsFile theirs = load_safetensors(path("theirs.safetensors"));
  EXPECT_EQ(theirs.metadata,
            (std::map<std::string, std::string>{{"format", "pt"}, {"producer", "python"}}));
  std::map<std::string, torch::Tensor> read;
  for (const auto& [name, t] : theirs.tensors) read[name] = t;
  const NamedTensors expected = reference_tensors();
  ASSERT_EQ(read.size(), expected.size());
  for (const auto& [name, t] : expected) {
    ASSERT_TRUE(read.count(name)) << name;
    expect_same(t, read.at(name), name);
  }
}

}  // namespace
}  // namespace corl::util
