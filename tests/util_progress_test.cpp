#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "corl/util/progress.h"

namespace corl::util {
namespace {

// The final line a Progress logs (stderr is not a terminal under ctest, so every line is a log
// line).
std::string final_line(const std::string& label) {
  testing::internal::CaptureStderr();
  {
    Progress progress(label, 3, "it");
    progress.advance(3);
  }
  return testing::internal::GetCapturedStderr();
}

TEST(Progress, DurationsReadAsClockTimes) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65), "1:05");
  EXPECT_EQ(format_duration(59.6), "1:00");  // rounded to the second
  EXPECT_EQ(format_duration(2 * 3600 + 3 * 60 + 4), "2:03:04");
}

TEST(Progress, TagNamesTheWorkOfItsThreadOnly) {
  EXPECT_NE(final_line("eval geneval").find("eval geneval: 3 it in"), std::string::npos);
  {
    const ProgressTag tag("unified");
    EXPECT_NE(final_line("eval geneval").find("eval geneval [unified]: 3 it in"),
              std::string::npos);
    {
      const ProgressTag inner("merged");
      EXPECT_NE(final_line("eval oe").find("eval oe [merged]: 3 it in"), std::string::npos);
    }
    EXPECT_NE(final_line("eval oe").find("eval oe [unified]: 3 it in"), std::string::npos);
    // Another thread's progress carries no tag of this one's.
    std::string other;
    std::thread([&] { other = final_line("eval mcq"); }).join();
    EXPECT_NE(other.find("eval mcq: 3 it in"), std::string::npos) << other;
  }
  EXPECT_NE(final_line("eval mcq").find("eval mcq: 3 it in"), std::string::npos);
}

}  // namespace
}  // namespace corl::util
