// Remote rewards (reward/remote.h) against real servers on this machine: the reference server
// (scripts/reward_server.py) scoring with the ShapeWorld judge, compared with the built-in geneval
// reward, and a server that misbehaves on purpose (tests/reward_fault_server.py) for each fault.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "corl/data/render.h"
#include "corl/data/world.h"
#include "corl/dist/launch.h"  // defines: free_port
#include "corl/reward/remote.h"
#include "corl/reward/reward.h"
#include "corl/util/error.h"
#include "corl/util/fs.h"  // defines: remove_tree (not fs::remove_all: see there)

namespace corl::reward {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A Python server started for one test on a free port of 127.0.0.1, stopped when it ends. An
// argument "LOG" stands for a file in the server's own folder (the fault server's request log).
class Server {
 public:
  explicit Server(std::vector<std::string> args) {
    dir_ = fs::temp_directory_path() /
           ("corl_remote_" + std::to_string(getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_);
    for (auto& a : args) {
      if (a == "LOG") a = (dir_ / "log").string();
    }
    args.push_back("--port-file");
    args.push_back((dir_ / "port").string());
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>("python3"));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      execvp("python3", argv.data());
      _exit(127);
    }
    const auto began = Clock::now();
    while (!fs::exists(dir_ / "port") && seconds_since(began) < 30.0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (fs::exists(dir_ / "port")) port_ = std::stoi(read_text(dir_ / "port"));
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    util::remove_tree(dir_.string());
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  bool up() const { return port_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/score"; }
  // Requests that reached the fault server (in `mode`, when given), from its log.
  int requests(const std::string& mode = "") const {
    std::ifstream in(dir_ / "log");
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      n += mode.empty() || line.substr(line.rfind(' ') + 1) == mode;
    }
    return n;
  }
  // The URL of the fault server's "path" mode that answers as `mode`.
  std::string url_of(const std::string& mode) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + mode;
  }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

const std::string kFaultServer = std::string(CORL_SOURCE_DIR) + "/tests/reward_fault_server.py";

// Items of `n` answers: the protocol's smallest, enough for the transport.
std::vector<nlohmann::json> answers(int n) {
  std::vector<nlohmann::json> items;
  for (int i = 0; i < n; ++i)
    items.push_back(answer_item("<answer>" + std::to_string(i) + "</answer>", {}));
  return items;
}

RemoteOptions options_for(const std::string& url) {
  RemoteOptions o;
  o.url = url;
  o.task = "mm2t";
  o.timeout_s = 10.0;
  o.batch_size = 4;
  o.retries = 0;
  o.retry_delay_s = 0.05;
  return o;
}

// The error a failing request ends in, or "" when it did not fail.
std::string failure(const RemoteOptions& options, int items = 5, int step = 7) {
  try {
    RemoteReward("judge", options).score(answers(items), step).get();
  } catch (const RemoteRewardError& e) {
    return e.what();
  }
  return "";
}

TEST(RemoteReward, Base64IsRfc4648) {
  const auto b64 = [](const std::string& s) {
    return base64(std::vector<unsigned char>(s.begin(), s.end()));
  };
  // RFC 4648, section 10.
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64({0xfb, 0xff, 0xfe}), "+//+");
}

TEST(RemoteReward, PngBytesAreThePngFile) {
  cv::Mat image(5, 7, CV_8UC3);
  cv::randu(image, 0, 256);
  const auto bytes = data::encode_png(image);
  const std::vector<unsigned char> signature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  ASSERT_GE(bytes.size(), signature.size());
  EXPECT_TRUE(std::equal(signature.begin(), signature.end(), bytes.begin()));
  const auto path = fs::temp_directory_path() / ("corl_png_" + std::to_string(getpid()) + ".png");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  const cv::Mat back = data::read_image(path.string(), 0);
  fs::remove(path);
  ASSERT_EQ(back.size(), image.size());
  EXPECT_EQ(cv::norm(back, image, cv::NORM_INF), 0.0);
}

TEST(RemoteReward, RepliesAreCheckedAgainstTheProtocol) {
  const auto good = parse_reply(R"({"scores": [1, 0.5], "sub_scores": {"a": [3, 4]}})", 2);
  EXPECT_EQ(good.scores, (std::vector<double>{1.0, 0.5}));
  EXPECT_EQ(good.sub_scores.at("a"), (std::vector<double>{3.0, 4.0}));
  const auto why = [](const std::string& body, size_t n) {
    try {
      parse_reply(body, n);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(why(R"({"scores": [1]})", 2).find("1 values for 2 rollouts"), std::string::npos);
  EXPECT_NE(why(R"({"scores": [NaN, 1]})", 2).find("NaN"), std::string::npos);
  EXPECT_NE(why(R"({"scores": [null, 1]})", 2).find("not a number"), std::string::npos);
  EXPECT_NE(why(R"({"scores": ["1", 1]})", 2).find("not a number"), std::string::npos);
  EXPECT_NE(why("<html>", 2).find("not JSON"), std::string::npos);
  EXPECT_NE(why(R"({"rewards": [1, 2]})", 2).find("no \"scores\""), std::string::npos);
  EXPECT_NE(why(R"({"scores": [1, 2], "sub_scores": {"a": [1]}})", 2).find("sub_scores\".a"),
            std::string::npos);
}

TEST(RemoteReward, OptionsAreCheckedNamingTheKey) {
  RemoteOptions o;
  const auto why = [&](const std::string& url, const std::string& task) {
    o.url = url;
    o.task = task;
    try {
      check_remote_options(o, "reward.remote.clip");
    } catch (const RecipeError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(why("http://127.0.0.1:8000/score", "t2i"), "");
  EXPECT_EQ(why("https://scorer.example/score", "mm2t"), "");
  EXPECT_NE(why("", "t2i").find("reward.remote.clip.url"), std::string::npos);
  EXPECT_NE(why("ftp://host/x", "t2i").find("reward.remote.clip.url"), std::string::npos);
  EXPECT_NE(why("http:///score", "t2i").find("names no host"), std::string::npos);
  EXPECT_NE(why("http://h/score", "both").find("reward.remote.clip.task"), std::string::npos);
}

// Batches of batch_size go out max_in_flight at once, and their scores come back in order.
TEST(RemoteReward, BatchesRunAtOnceAndJoinInOrder) {
  Server server({kFaultServer, "slow", "--sleep", "0.5"});
  ASSERT_TRUE(server.up());
  auto options = options_for(server.url());
  options.batch_size = 3;  // 10 items: batches of 3, 3, 3, 1
  options.max_in_flight = 4;
  const auto began = Clock::now();
  auto pending = RemoteReward("judge", options).score(answers(10), 1);
  EXPECT_LT(seconds_since(began), 0.2) << "score() waits for the server";
  const auto scores = pending.get();
  // Four requests of 0.5 s each, all at once: well under two of them in a row.
  EXPECT_LT(seconds_since(began), 0.95);
  // The fault server scores item i of a request of n as i + n / 2.
  const std::vector<double> expected{1.5, 2.5, 3.5, 1.5, 2.5, 3.5, 1.5, 2.5, 3.5, 0.5};
  EXPECT_EQ(scores.scores, expected);
  EXPECT_EQ(scores.sub_scores.at("index"), (std::vector<double>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0}));
}

TEST(RemoteReward, OneRequestInFlightRunsTheBatchesInTurn) {
  Server server({kFaultServer, "slow", "--sleep", "0.3"});
  ASSERT_TRUE(server.up());
  auto options = options_for(server.url());
  options.batch_size = 2;  // 3 batches
  options.max_in_flight = 1;
  const auto began = Clock::now();
  RemoteReward("judge", options).score(answers(6), 1).get();
  EXPECT_GE(seconds_since(began), 0.9);
}

TEST(RemoteReward, ServerDownIsRetriedThenNamed) {
  const std::string url = "http://127.0.0.1:" + std::to_string(dist::free_port()) + "/score";
  auto options = options_for(url);
  options.retries = 2;
  const auto message = failure(options);
  EXPECT_NE(message.find("remote reward 'judge' (" + url + "), step 7"), std::string::npos)
      << message;
  EXPECT_NE(message.find("tried 3 times"), std::string::npos) << message;
}

TEST(RemoteReward, TimeoutIsRetriedThenNamed) {
  Server server({kFaultServer, "slow", "--sleep", "3", "--log", "LOG"});
  ASSERT_TRUE(server.up());
  auto options = options_for(server.url());
  options.timeout_s = 0.3;
  options.retries = 1;
  const auto began = Clock::now();
  const auto message = failure(options, 2);
  EXPECT_LT(seconds_since(began), 2.0);
  EXPECT_NE(message.find("no reply within timeout_s 0.3 s (tried 2 times)"), std::string::npos)
      << message;
  EXPECT_NE(message.find(server.url()), std::string::npos) << message;
  EXPECT_EQ(server.requests(), 2);
}

TEST(RemoteReward, A5xxIsRetriedAndASuccessCounts) {
  Server server({kFaultServer, "flaky", "--fail", "2", "--log", "LOG"});
  ASSERT_TRUE(server.up());
  auto options = options_for(server.url());
  options.retries = 2;
  const auto scores = RemoteReward("judge", options).score(answers(3), 1).get();
  EXPECT_EQ(scores.scores, (std::vector<double>{1.5, 2.5, 3.5}));
  EXPECT_EQ(server.requests(), 3);
}

// A reply that breaks the protocol fails at once: a deterministic scorer would repeat it.
TEST(RemoteReward, BrokenRepliesFailAtOnceNamingServerAndStep) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"wrong_count", "\"scores\" holds 3 values for 4 rollouts"},
      {"nan", "NaN"},
      {"null", "\"scores\"[0] is null, not a number"},
      {"not_json", "the reply is not JSON"},
      {"no_scores", "no \"scores\""},
      {"status_400", "HTTP 400"},
      {"redirect",
       "HTTP 302, a redirect to http://127.0.0.1:1/elsewhere; remote rewards follow "
       "no redirects"}};
  Server server({kFaultServer, "path", "--log", "LOG"});
  ASSERT_TRUE(server.up());
  for (const auto& [mode, said] : cases) {
    auto options = options_for(server.url_of(mode));
    options.retries = 3;
    options.max_in_flight = 1;
    const auto message = failure(options, 4);
    EXPECT_NE(message.find("remote reward 'judge' (" + options.url + "), step 7"),
              std::string::npos)
        << mode << ": " << message;
    EXPECT_NE(message.find(said), std::string::npos) << mode << ": " << message;
    EXPECT_EQ(server.requests(mode), 1) << mode << ": retried";
  }
}

// The reference server's geneval scorer (corl detect) gives the built-in reward's score, bit for
// bit, on images the judge passes, fails and gives partial credit.
TEST(RemoteReward, ReferenceServersGenevalIsTheBuiltInReward) {
  const std::string corl = std::string(CORL_BINARY_DIR) + "/corl";
  ASSERT_TRUE(fs::exists(corl)) << corl << " is not built";
  for (const bool partial : {true, false}) {
    std::vector<std::string> args{std::string(CORL_SOURCE_DIR) + "/scripts/reward_server.py",
                                  "--scorer",
                                  "geneval",
                                  "--corl",
                                  corl,
                                  "--port",
                                  "0",
                                  "--position-margin",
                                  "0.15",
                                  "--exclusive",
                                  "false"};
    if (!partial) args.push_back("--strict");
    Server server(args);
    ASSERT_TRUE(server.up());
    RewardOptions built_in_options;
    built_in_options.geneval_partial = partial;
    built_in_options.judge = {0.15, false};
    const auto built_in = make_image_reward("geneval", built_in_options);

    data::WorldSampler world(data::WorldSpec::from_recipe(config::WorldRecipe{}), 11);
    std::vector<data::Sample> samples;
    for (int i = 0; i < 24; ++i) samples.push_back(world.next());
    std::vector<nlohmann::json> items;
    std::vector<double> expected;
    std::set<double> distinct;
    for (size_t i = 0; i < samples.size(); ++i) {
      // Each image against its own spec (pass) or another sample's (fail or partial credit).
      const auto& spec_of = samples[i % 3 == 0 ? i : (i * 5 + 1) % samples.size()];
      data::Record row;
      row.prompt = spec_of.prompt;
      row.spec = spec_of.spec;
      cv::Mat image = data::render(samples[i].scene, 64);
      ImageCase c;
      c.prompt = row.prompt;
      c.spec = &*row.spec;
      c.image = image;
      expected.push_back(built_in->score(c));
      distinct.insert(expected.back());
      items.push_back(image_item(row.prompt, image, row_fields(row)));
    }
    ASSERT_GE(distinct.size(), partial ? 3u : 2u) << "the images should score differently";
    RemoteOptions options;
    options.url = server.url();
    options.batch_size = 12;  // two requests, at once
    const auto remote = RemoteReward("judge", options).score(items, 1).get();
    EXPECT_EQ(remote.scores, expected);
    ASSERT_TRUE(remote.sub_scores.count("correct"));
  }
}

}  // namespace
}  // namespace corl::reward
