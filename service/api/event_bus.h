// Fans committed events out to live subscribers (the event stream of the API).
//
// Committers publish after releasing the store lock, so two commits can publish their events in the
// opposite order of their ids (11, then 10). A subscriber that needs every event in id order (the
// WatchEvents stream) must not trust arrival order; see EventWriter in api/services.cc.
//
// Callbacks run on the committer's thread under the bus lock, after the store lock was released: a
// callback may read the store (lock order: bus, subscriber, store) but must not write to it, and
// must not Subscribe or Unsubscribe.
#pragma once

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "core/types.h"

namespace natpilot {

class EventBus {
 public:
  using Callback = std::function<void(const std::vector<Event>&)>;

  // Unsubscribes when reset or destroyed (moved-from: nothing).
  class Subscription {
   public:
    Subscription() = default;
    Subscription(EventBus& bus, uint64_t id) : bus_(&bus), id_(id) {}
    Subscription(Subscription&& other) noexcept
        : bus_(std::exchange(other.bus_, nullptr)), id_(other.id_) {}
    Subscription& operator=(Subscription&& other) noexcept {
      if (this != &other) {
        Reset();
        bus_ = std::exchange(other.bus_, nullptr);
        id_ = other.id_;
      }
      return *this;
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription() { Reset(); }
    // Never call while holding a lock the callback takes: it waits for a running callback.
    void Reset() {
      if (bus_ != nullptr) std::exchange(bus_, nullptr)->Unsubscribe(id_);
    }

   private:
    EventBus* bus_ = nullptr;
    uint64_t id_ = 0;
  };

  uint64_t Subscribe(Callback cb) {
    std::lock_guard lock(mu_);
    subscribers_[++next_id_] = std::move(cb);
    return next_id_;
  }
  [[nodiscard]] Subscription Listen(Callback cb) {
    return Subscription(*this, Subscribe(std::move(cb)));
  }
  // After it returns, the callback is not running and will not run again.
  void Unsubscribe(uint64_t id) {
    std::lock_guard lock(mu_);
    subscribers_.erase(id);
  }
  size_t SubscriberCount() {
    std::lock_guard lock(mu_);
    return subscribers_.size();
  }
  // A subscriber that throws is logged and skipped: the committer's change is done, and the other
  // subscribers still get the events.
  void Publish(const std::vector<Event>& events) {
    std::lock_guard lock(mu_);
    for (auto& [id, cb] : subscribers_) {
      try {
        cb(events);
      } catch (const std::exception& e) {
        LogFailure(id, events, e.what());
      } catch (...) {
        LogFailure(id, events, "unknown exception");
      }
    }
  }

 private:
  static void LogFailure(uint64_t id, const std::vector<Event>& events, const char* what) {
    spdlog::error("event subscriber {} failed on events {}..{}: {}", id,
                  events.empty() ? 0 : events.front().id, events.empty() ? 0 : events.back().id,
                  what);
  }

  std::mutex mu_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, Callback> subscribers_;
};

}  // namespace natpilot
