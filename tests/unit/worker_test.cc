// The worker loop the reconciler, the identity watch and the PBX notifier share.
#include "core/worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

#include "faults.h"

namespace natpilot {
namespace {

using testing::LogCapture;
using testing::WaitUntil;
using namespace std::chrono_literals;

TEST(Worker, RunsAtStartThenOnlyWhenWokenAndAgainForAWakeDuringAPass) {
  Worker worker("test pass", 1h);
  std::atomic<int> passes{0};
  std::atomic<bool> hold{false};
  worker.Start([&]() -> std::optional<Worker::Duration> {
    ++passes;
    while (hold) std::this_thread::yield();
    return std::nullopt;
  });
  ASSERT_TRUE(WaitUntil([&] { return passes == 1; }));
  hold = true;
  worker.Wake();
  ASSERT_TRUE(WaitUntil([&] { return passes == 2; }));  // now inside the second pass
  worker.Wake();                                        // asked again while it runs
  hold = false;
  ASSERT_TRUE(WaitUntil([&] { return passes == 3; }));  // so it runs once more right after
  worker.Stop();
  EXPECT_EQ(passes, 3);
  EXPECT_FALSE(worker.running());
}

TEST(Worker, ATimerRunsTheNextPassWithoutAWake) {
  Worker worker("test pass", 1h);
  std::atomic<int> passes{0};
  worker.Start([&]() -> std::optional<Worker::Duration> {
    ++passes;
    return 1ms;
  });
  EXPECT_TRUE(WaitUntil([&] { return passes >= 5; }));
}

TEST(Worker, APassThatThrowsIsLoggedAndTheThreadGoesOn) {
  LogCapture log;
  Worker worker("test pass", 1h);
  std::atomic<int> passes{0};
  worker.Start([&]() -> std::optional<Worker::Duration> {
    if (++passes == 1) throw std::runtime_error("disk on fire");
    return std::nullopt;
  });
  ASSERT_TRUE(WaitUntil([&] {
    return log.Contains("test pass failed (again in 3600 s or when woken): disk on fire");
  })) << log.All();
  worker.Wake();  // the retry waits an hour; a wake does not
  EXPECT_TRUE(WaitUntil([&] { return passes == 2; }));
  worker.Stop();
}

}  // namespace
}  // namespace natpilot
