// One thread that runs a pass when woken or when the pass's own timer is due, until stopped: the
// loop the reconciler, the identity watch and the PBX notifier share. A pass runs outside the
// lock; a Wake() during a pass runs it once more right after. A pass that throws is logged and
// tried again after `retry_after` (or at the next Wake()); the thread never ends by an exception.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace natpilot {

class Worker {
 public:
  using Duration = std::chrono::steady_clock::duration;
  // How long until the next pass when nothing wakes the worker; nullopt: only when woken.
  using Pass = std::function<std::optional<Duration>()>;

  // what: the pass in the log, e.g. "identity check" -> "identity check failed (again in 5 s or
  // when woken): ...".
  Worker(std::string what, Duration retry_after)
      : what_(std::move(what)), retry_after_(retry_after) {}
  ~Worker() { Stop(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the first pass at once. A no-op while running.
  void Start(Pass pass);
  void Wake();
  // Waits for a running pass to end; Start() may be called again after.
  void Stop();
  bool running() const { return thread_.joinable(); }

 private:
  std::optional<Duration> RunLogged();
  void Loop();

  const std::string what_;
  const Duration retry_after_;
  Pass pass_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace natpilot
