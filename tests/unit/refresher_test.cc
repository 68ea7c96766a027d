// The worker that rebuilds WatchNatView views off the committing thread (issue 15, class 5).
#include "api/refresher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

namespace natpilot {
namespace {

// A job that blocks on its first run until released.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, open = false;
  int runs = 0;
  void Run() {
    std::unique_lock lock(mu);
    ++runs;
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void WaitEntered() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  void Open() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
  int Runs() {
    std::lock_guard lock(mu);
    return runs;
  }
};

TEST(Refresher, ARequestNeverWaitsForAJobAndManyRequestsRunItOnceMore) {
  Gate gate;  // outlives the worker, which may still be in it when an assertion fails
  Refresher r;
  const uint64_t id = r.Add([&] { gate.Run(); });
  r.Request(id);
  gate.WaitEntered();
  // While the job runs (as a slow view rebuild would), a thousand publishes ask again: each returns
  // at once (were one to wait, this future would never be ready), and they coalesce into one run.
  auto asked = std::async(std::launch::async, [&] {
    for (int i = 0; i < 1000; ++i) r.Request(id);
  });
  ASSERT_EQ(asked.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(r.Pending(), 1u);
  gate.Open();
  r.Remove(id);  // waits for the second run if it started; none after it
  EXPECT_LE(gate.Runs(), 2);
  EXPECT_GE(gate.Runs(), 1);
  r.Request(id);  // a removed job is not run again
  EXPECT_EQ(r.Pending(), 0u);
}

TEST(Refresher, RemoveWaitsForTheRunningJob) {
  Gate gate;
  std::atomic<bool> finished{false};
  Refresher r;
  const uint64_t id = r.Add([&] {
    gate.Run();
    finished = true;
  });
  r.Request(id);
  gate.WaitEntered();
  auto removed = std::async(std::launch::async, [&] {
    r.Remove(id);
    return finished.load();
  });
  gate.Open();
  EXPECT_TRUE(removed.get()) << "Remove returned while the job was still running";
}

TEST(Refresher, StopWaitsForTheRunningJobAndThenIgnoresRequests) {
  Gate gate;
  std::atomic<bool> finished{false};
  std::atomic<int> other_runs{0};
  Refresher r;
  const uint64_t slow = r.Add([&] {
    gate.Run();
    finished = true;
  });
  const uint64_t other = r.Add([&] { ++other_runs; });
  r.Request(slow);
  gate.WaitEntered();
  auto stopped = std::async(std::launch::async, [&] {
    r.Stop();
    return finished.load();
  });
  gate.Open();
  EXPECT_TRUE(stopped.get()) << "Stop returned while a job was running";
  const int runs = other_runs;
  r.Request(other);  // ignored: no worker any more
  EXPECT_EQ(r.Pending(), 0u);
  r.Remove(other);  // returns at once
  r.Remove(slow);
  EXPECT_EQ(other_runs.load(), runs);
}

TEST(Refresher, AJobThatThrowsDoesNotStopTheOthers) {
  Refresher r;
  std::promise<void> ran;
  const uint64_t bad = r.Add([] { throw std::runtime_error("view failed"); });
  const uint64_t good = r.Add([&] { ran.set_value(); });
  r.Request(bad);
  r.Request(good);
  EXPECT_EQ(ran.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  r.Remove(bad);
  r.Remove(good);
}

}  // namespace
}  // namespace natpilot
