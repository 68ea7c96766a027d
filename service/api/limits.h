// Bounds on what one caller can hold open or make natpilotd do (hostile input, issue 15): streams
// per token, and the doctor's network checks run on a thread of their own, one at a time, shared
// by callers within a few seconds, never on gRPC's callback threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "app/caller.h"
#include "core/error.h"
#include "portmap/stun.h"

namespace natpilot {

class StreamLimits {
 public:
  StreamLimits(size_t per_device = 8, size_t per_admin = 64)
      : per_device_(per_device), per_admin_(per_admin) {}

  // A stream's place, given back when destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(StreamLimits* limits, std::string key) : limits_(limits), key_(std::move(key)) {}
    Slot(Slot&& o) noexcept : limits_(std::exchange(o.limits_, nullptr)), key_(std::move(o.key_)) {}
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        Release();
        limits_ = std::exchange(o.limits_, nullptr);
        key_ = std::move(o.key_);
      }
      return *this;
    }
    ~Slot() { Release(); }

   private:
    void Release() {
      if (limits_ != nullptr) std::exchange(limits_, nullptr)->Give(key_);
    }
    StreamLimits* limits_ = nullptr;
    std::string key_;
  };

  // One count per token: a device's streams from every address together, the admin's together.
  Result<Slot> Acquire(const Caller& caller);

 private:
  void Give(const std::string& key);
  const size_t per_device_;
  const size_t per_admin_;
  std::mutex mu_;
  std::map<std::string, size_t> open_;
};

// The doctor's STUN query and path trace (up to about 5 s) for every Diagnose call: run here, one
// at a time; a result less than `cache` old is reused; at most `max_waiting` calls wait, more are
// refused at once.
class DoctorRunner {
 public:
  struct Results {
    std::optional<Result<stun::Mapped>> stun;
    std::optional<Result<std::vector<std::string>>> path;
  };
  // nullptr: natpilotd is shutting down.
  using Done = std::function<void(const Results*)>;

  DoctorRunner(std::string stun_server, size_t max_waiting = 16,
               std::chrono::seconds cache = std::chrono::seconds(10));
  ~DoctorRunner();
  // False when max_waiting calls already wait (the caller answers RESOURCE_EXHAUSTED).
  bool Submit(Done done);
  // Every waiting call gets nullptr; later ones too. Joins the thread.
  void Stop();

 private:
  void Run();
  const std::string stun_server_;
  const size_t max_waiting_;
  const std::chrono::seconds cache_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Done> waiting_;
  bool stopping_ = false;
  std::optional<Results> last_;
  std::chrono::steady_clock::time_point last_at_{};
  std::thread thread_;
};

}  // namespace natpilot
