#include <gtest/gtest.h>

#include "corl/reward/reward.h"

namespace corl::reward {
namespace {

std::string error_of(const std::function<void()>& make) {
  try {
    make();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(RewardRegistry, NamesAreSortedAndSplitByTask) {
  EXPECT_EQ(reward_names(), (std::vector<std::string>{"accuracy", "cycle", "format", "geneval",
                                                      "perception", "tim"}));
  for (const std::string name : {"cycle", "tim", "geneval"}) {
    EXPECT_TRUE(is_image_reward(name)) << name;
    EXPECT_FALSE(is_answer_reward(name)) << name;
    EXPECT_NE(make_image_reward(name, RewardOptions{}), nullptr) << name;
  }
  for (const std::string name : {"accuracy", "format", "perception"}) {
    EXPECT_TRUE(is_answer_reward(name)) << name;
    EXPECT_FALSE(is_image_reward(name)) << name;
    EXPECT_NE(make_answer_reward(name, RewardOptions{}), nullptr) << name;
  }
  EXPECT_FALSE(is_image_reward("clip"));
  EXPECT_FALSE(is_answer_reward("Accuracy"));
}

TEST(RewardRegistry, UnknownNamesAreNamedWithTheKnownOnes) {
  EXPECT_EQ(error_of([] { make_image_reward("clip", RewardOptions{}); }),
            "unknown reward 'clip'; known: accuracy, cycle, format, geneval, perception, tim");
  EXPECT_EQ(error_of([] { make_answer_reward("acc", RewardOptions{}); }),
            "unknown reward 'acc'; known: accuracy, cycle, format, geneval, perception, tim");
}

TEST(RewardRegistry, RewardOfTheOtherTaskIsNamedAsSuch) {
  const std::string image_error = error_of([] { make_image_reward("accuracy", RewardOptions{}); });
  EXPECT_NE(image_error.find("'accuracy' is an image-to-text reward"), std::string::npos)
      << image_error;
  const std::string answer_error = error_of([] { make_answer_reward("cycle", RewardOptions{}); });
  EXPECT_NE(answer_error.find("'cycle' is a text-to-image reward"), std::string::npos)
      << answer_error;
}

}  // namespace
}  // namespace corl::reward
