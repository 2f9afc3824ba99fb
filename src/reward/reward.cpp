#include "corl/reward/reward.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "corl/data/detect.h"
#include "corl/reward/answer_checks.h"
#include "corl/reward/image_distance.h"
#include "corl/reward/text_image_matching.h"
#include "corl/reward/text_match.h"
#include "corl/util/strings.h"

namespace corl::reward {
namespace {

// Text-to-image: the policy captions its own image. The caption is scored against the prompt
// and the image against the row's real image, each in [0, 1], so the sum is in [0, 2].
class CycleConsistencyReward : public ImageReward {
 public:
  explicit CycleConsistencyReward(const RewardOptions& options)
      : jaccard_(options.cycle_text == "jaccard"), ssim_(options.cycle_image == "ssim") {
    if (options.cycle_text != "f1" && options.cycle_text != "jaccard") {
      throw std::invalid_argument("cycle reward: cycle_text must be \"f1\" or \"jaccard\", got \"" +
                                  options.cycle_text + "\"");
    }
    if (options.cycle_image != "rmse" && options.cycle_image != "ssim") {
      throw std::invalid_argument("cycle reward: cycle_image must be \"rmse\" or \"ssim\", got \"" +
                                  options.cycle_image + "\"");
    }
  }

  double score(const ImageCase& c) const override {
    const double text =
        jaccard_ ? soft_jaccard(c.caption, c.prompt) : token_f1(c.caption, c.prompt);
    return text + image_part(c);
  }

  bool needs_caption() const override { return true; }

 private:
  // A row without a real image earns no image credit rather than failing the batch.
  double image_part(const ImageCase& c) const {
    if (c.real_image.empty()) return 0.0;
    cv::Mat real = c.real_image;
    if (!c.image.empty() && real.size() != c.image.size()) {
      cv::resize(c.real_image, real, c.image.size(), 0, 0, cv::INTER_AREA);
    }
    // SSIM lies in [-1, 1]; anticorrelated structure is as wrong as none, so it scores 0.
    return ssim_ ? std::max(0.0, image_ssim(c.image, real)) : 1.0 - image_rmse(c.image, real);
  }

  bool jaccard_;
  bool ssim_;
};

class TextImageMatchingReward : public ImageReward {
 public:
  double score(const ImageCase& c) const override {
    return text_image_matching(c.image_hidden, c.text_hidden);
  }
  bool needs_hidden() const override { return true; }
};

class GenevalReward : public ImageReward {
 public:
  explicit GenevalReward(const RewardOptions& options)
      : partial_(options.geneval_partial), rules_(options.judge) {}

  double score(const ImageCase& c) const override {
    if (c.spec == nullptr) throw std::invalid_argument("geneval reward: row has no scene spec");
    const data::Judgement judgement = data::judge(*c.spec, data::detect(c.image), rules_);
    if (partial_) return judgement.partial;
    return judgement.correct ? 1.0 : 0.0;
  }

 private:
  bool partial_;
  data::JudgeRules rules_;
};

class AccuracyReward : public AnswerReward {
 public:
  double score(const AnswerCase& c) const override {
    return answer_correct(c.completion, c.solution, c.qa_type) ? 1.0 : 0.0;
  }
};

class FormatReward : public AnswerReward {
 public:
  double score(const AnswerCase& c) const override { return well_formed(c.completion) ? 1.0 : 0.0; }
};

class PerceptionReward : public AnswerReward {
 public:
  double score(const AnswerCase& c) const override {
    if (c.scene == nullptr) throw std::invalid_argument("perception reward: row has no scene");
    return object_list_f1(c.completion, *c.scene);
  }
};

// A small policy often knows the answer and still writes it under the wrong letter ("The square
// is green. A. green? yes." where A is blue): accuracy alone says only that the letter was wrong.
class OptionWalkReward : public AnswerReward {
 public:
  double score(const AnswerCase& c) const override {
    return option_walk_agreement(c.completion, c.problem);
  }
};

const std::vector<std::string> kImageRewards = {"cycle", "geneval", "tim"};
const std::vector<std::string> kAnswerRewards = {"accuracy", "format", "perception", "options"};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

[[noreturn]] void unknown(const std::string& name) {
  throw std::invalid_argument("unknown reward '" + name +
                              "'; known: " + util::join(reward_names(), ", "));
}

}  // namespace

bool is_image_reward(const std::string& name) { return contains(kImageRewards, name); }

bool is_answer_reward(const std::string& name) { return contains(kAnswerRewards, name); }

std::vector<std::string> reward_names() {
  std::vector<std::string> names = kImageRewards;
  names.insert(names.end(), kAnswerRewards.begin(), kAnswerRewards.end());
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<ImageReward> make_image_reward(const std::string& name,
                                               const RewardOptions& options) {
  if (name == "cycle") return std::make_unique<CycleConsistencyReward>(options);
  if (name == "tim") return std::make_unique<TextImageMatchingReward>();
  if (name == "geneval") return std::make_unique<GenevalReward>(options);
  if (is_answer_reward(name)) {
    throw std::invalid_argument("reward '" + name +
                                "' is an image-to-text reward, not a text-to-image one");
  }
  unknown(name);
}

std::unique_ptr<AnswerReward> make_answer_reward(const std::string& name,
                                                 const RewardOptions& /*options*/) {
  if (name == "accuracy") return std::make_unique<AccuracyReward>();
  if (name == "format") return std::make_unique<FormatReward>();
  if (name == "perception") return std::make_unique<PerceptionReward>();
  if (name == "options") return std::make_unique<OptionWalkReward>();
  if (is_image_reward(name)) {
    throw std::invalid_argument("reward '" + name +
                                "' is a text-to-image reward, not an image-to-text one");
  }
  unknown(name);
}

}  // namespace corl::reward
