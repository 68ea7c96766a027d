// Fans committed events out to live subscribers (the event stream of the API).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "core/types.h"

namespace natpilot {

class EventBus {
 public:
  using Callback = std::function<void(const std::vector<Event>&)>;

  uint64_t Subscribe(Callback cb) {
    std::lock_guard lock(mu_);
    subscribers_[++next_id_] = std::move(cb);
    return next_id_;
  }
  // After it returns, the callback is not running and will not run again.
  void Unsubscribe(uint64_t id) {
    std::lock_guard lock(mu_);
    subscribers_.erase(id);
  }
  void Publish(const std::vector<Event>& events) {
    std::lock_guard lock(mu_);
    for (auto& [id, cb] : subscribers_) cb(events);
  }

 private:
  std::mutex mu_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, Callback> subscribers_;
};

}  // namespace natpilot
