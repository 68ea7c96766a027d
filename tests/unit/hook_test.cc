#include "pbx/hook.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace natpilot {
namespace {

using std::chrono::milliseconds;

TEST(Hook, PassesFactsAsEnvironmentAndNeverThroughAShell) {
  const auto marker =
      std::filesystem::temp_directory_path() / ("natpilot-hook-" + std::to_string(::getpid()));
  std::filesystem::remove(marker);
  // A value that a shell would run; passed as data it is just text.
  const std::string evil = "$(touch " + marker.string() + "); `touch " + marker.string() + "`";
  auto r = RunHook(
      {"/bin/sh", "-c", "echo \"dev=$NATPILOT_DEVICE ext=$NATPILOT_EXTERNAL_ADDRESS\"; echo \"$1\"",
       "hook", evil},
      {{"NATPILOT_DEVICE", "pbx1"}, {"NATPILOT_EXTERNAL_ADDRESS", "203.0.113.1"}},
      milliseconds(5000));
  ASSERT_TRUE(r.started) << r.output;
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("dev=pbx1 ext=203.0.113.1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(evil), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(Hook, ReportsExitStatusAndOutput) {
  auto r = RunHook({"/bin/sh", "-c", "echo reload failed >&2; exit 3"}, {}, milliseconds(5000));
  ASSERT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("reload failed"), std::string::npos);
}

TEST(Hook, AHangingHookIsKilledAtItsTimeout) {
  auto r = RunHook({"/bin/sh", "-c", "sleep 30 & sleep 30"}, {}, milliseconds(300));
  ASSERT_TRUE(r.started);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + 9);
}

TEST(Hook, AMissingCommandIsReportedNotThrown) {
  auto r = RunHook({"/nonexistent/natpilot-hook"}, {}, milliseconds(1000));
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.output.find("cannot run /nonexistent/natpilot-hook"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace natpilot
