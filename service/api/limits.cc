#include "api/limits.h"

namespace natpilot {

Result<StreamLimits::Slot> StreamLimits::Acquire(const Caller& caller) {
  const std::string key = caller.admin() ? std::string("admin") : "device " + caller.device;
  const size_t max = caller.admin() ? per_admin_ : per_device_;
  std::lock_guard lock(mu_);
  size_t& open = open_[key];
  if (open >= max) {
    return Fail(Errc::kResourceExhausted,
                (caller.admin() ? std::string("the admin") : "device " + caller.device) + " has " +
                    std::to_string(open) + " streams open, the most allowed (" +
                    std::to_string(max) + "); close one first");
  }
  ++open;
  return Slot(this, key);
}

void StreamLimits::Give(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = open_.find(key);
  if (it == open_.end()) return;
  if (--it->second == 0) open_.erase(it);
}

DoctorRunner::DoctorRunner(std::string stun_server, size_t max_waiting, std::chrono::seconds cache)
    : stun_server_(std::move(stun_server)), max_waiting_(max_waiting), cache_(cache) {
  thread_ = std::thread([this] { Run(); });
}

DoctorRunner::~DoctorRunner() { Stop(); }

bool DoctorRunner::Submit(Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      if (waiting_.size() >= max_waiting_) return false;
      waiting_.push_back(std::move(done));
      cv_.notify_one();
      return true;
    }
  }
  done(nullptr);
  return true;
}

void DoctorRunner::Stop() {
  std::deque<Done> dropped;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    dropped.swap(waiting_);
  }
  cv_.notify_all();
  for (Done& d : dropped) d(nullptr);
  if (thread_.joinable()) thread_.join();
}

void DoctorRunner::Run() {
  for (;;) {
    std::deque<Done> batch;
    std::optional<Results> cached;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
      if (stopping_) return;
      batch.swap(waiting_);  // everyone waiting now shares one look
      if (last_ && std::chrono::steady_clock::now() < last_at_ + cache_) cached = last_;
    }
    if (!cached) {
      Results r;
      if (!stun_server_.empty()) {
        r.stun = stun::Query(stun_server_, std::chrono::milliseconds(2000));
        r.path = stun::PathTo(stun_server_, 4, std::chrono::milliseconds(700));
      }
      cached = std::move(r);
      std::lock_guard lock(mu_);
      last_ = cached;
      last_at_ = std::chrono::steady_clock::now();
    }
    for (Done& d : batch) d(&*cached);
  }
}

}  // namespace natpilot
