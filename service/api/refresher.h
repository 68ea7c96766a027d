// Rebuilds off the committing thread. A stream whose view depends on the store (WatchNatView) must
// not rebuild it inside EventBus::Publish: that runs on the thread that committed (often the
// reconciler's) under the bus lock, so a thousand watchers would stall every commit and renewal.
// Instead the bus callback asks (Request, O(1)); one worker thread runs each asked job once,
// however often it was asked meanwhile, in the order first asked.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace natpilot {

class Refresher {
 public:
  Refresher();
  ~Refresher();  // Stop()
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  uint64_t Add(std::function<void()> job);
  // Cheap and never blocks on a job: safe under the bus lock. Unknown ids are ignored.
  void Request(uint64_t id);
  // After it returns the job is not running and will not run again. Never call it holding a lock
  // the job takes.
  void Remove(uint64_t id);
  // Runs nothing more; waits for a running job. Later Requests are ignored.
  void Stop();

  size_t Pending();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  struct Job {
    std::function<void()> run;
    bool queued = false;
  };
  std::map<uint64_t, Job> jobs_;
  std::deque<uint64_t> queue_;
  uint64_t next_id_ = 0;
  uint64_t running_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace natpilot
