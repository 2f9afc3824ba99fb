// Rewards scored by a server: a scorer of the user's own (a learned model in Python, a judge,
// another machine) behind HTTP + JSON, named in a recipe like any built-in reward
// (docs/rewards.md defines the protocol; scripts/reward_server.py is a reference server).
//
// A request is one POST of a batch of rollouts:
//   {"reward": NAME, "task": "t2i" | "mm2t", "items": [ITEM, ...]}
//   t2i ITEM:  {"prompt": ..., "image": PNG, "row": ROW}    (the generated image)
//   mm2t ITEM: {"completion": ..., "row": ROW}               (the sampled answer)
//   ROW: the rollout's dataset row: {"id", "prompt", "question", "solution", "qa_type",
//        "category", "spec"?, "scene"?, "image"?: PNG}
// where PNG is a base64 string of a PNG file. The reply is
//   {"scores": [one number per item, in order], "sub_scores"?: {NAME: [one per item], ...}}
// Nothing else is sent: no paths, no recipe, no weights.
//
// A step's requests go out on threads of their own as soon as its rollouts exist, several at
// once, and the step waits for them only when it needs the rewards (grpo/batch.cpp). A request
// that cannot connect, times out or gets a 5xx or 429 status is tried again; a reply that breaks
// the protocol (another status, a redirect, malformed JSON, a wrong count, a non-finite score)
// fails at once, since asking a deterministic scorer again gives the same answer.
#pragma once

#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "corl/data/dataset.h"

namespace corl::reward {

// One remote reward of a recipe: reward.remote.<name>.* (grpo/recipe.cpp binds them).
struct RemoteOptions {
  std::string url;             // http:// or https://, the whole endpoint
  std::string task = "t2i";    // which rollouts it scores: t2i (images) or mm2t (answers)
  double timeout_s = 60.0;     // per request, connection included
  int batch_size = 16;         // rollouts per request
  int max_in_flight = 4;       // requests at once
  int retries = 2;             // further tries of a request that failed in transport
  double retry_delay_s = 1.0;  // wait before the first retry; doubles with each
};

// Throws corl::RecipeError naming `key` (the options' recipe section) for a URL that is not
// http(s)://HOST..., an unknown task or a non-positive size.
void check_remote_options(const RemoteOptions& options, const std::string& key);

// The server's verdict on a step's rollouts of one remote reward, in rollout order.
struct RemoteScores {
  std::vector<double> scores;
  std::map<std::string, std::vector<double>> sub_scores;
};

// A remote reward failed after its retries: the message names the reward, the URL and the step.
class RemoteRewardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Base64 (RFC 4648, with padding) of bytes, as JSON carries images.
std::string base64(const std::vector<unsigned char>& bytes);

// The protocol's ROW and ITEMs. `row_fields` encodes the row's image once; items of the same
// row share the result.
nlohmann::json row_fields(const data::Record& row);
nlohmann::json image_item(const std::string& prompt, const cv::Mat& image,
                          const nlohmann::json& row);
nlohmann::json answer_item(const std::string& completion, const nlohmann::json& row);

// Checks a reply's body against the protocol for `count` items: the scores, or throws
// std::runtime_error saying what is wrong (not JSON, no "scores", a wrong count, a value that is
// not a finite number).
RemoteScores parse_reply(const std::string& body, size_t count);

// Scores being computed; get() waits for them.
class PendingScores {
 public:
  PendingScores() = default;
  explicit PendingScores(std::future<RemoteScores> result) : result_(std::move(result)) {}
  bool valid() const { return result_.valid(); }
  // Every batch's scores, joined in order. Throws RemoteRewardError when a batch failed.
  RemoteScores get() { return result_.get(); }

 private:
  std::future<RemoteScores> result_;
};

class RemoteReward {
 public:
  // Throws corl::UsageError when this build has no HTTP client (built without libcurl).
  RemoteReward(std::string name, RemoteOptions options);

  const std::string& name() const { return name_; }
  const RemoteOptions& options() const { return options_; }
  bool scores_images() const { return options_.task == "t2i"; }

  // Starts scoring `items` (batch_size a request, max_in_flight at once) and returns at once.
  // `step` (1-based) names the step in errors.
  PendingScores score(std::vector<nlohmann::json> items, int step) const;

 private:
  std::string name_;
  RemoteOptions options_;
};

}  // namespace corl::reward
