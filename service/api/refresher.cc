#include "api/refresher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <utility>

namespace natpilot {

Refresher::Refresher() : thread_([this] { Run(); }) {}

Refresher::~Refresher() { Stop(); }

uint64_t Refresher::Add(std::function<void()> job) {
  std::lock_guard lock(mu_);
  jobs_[++next_id_] = Job{std::move(job), false};
  return next_id_;
}

void Refresher::Request(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(id);
    if (stop_ || it == jobs_.end() || it->second.queued) return;
    it->second.queued = true;
    queue_.push_back(id);
  }
  wake_.notify_one();
}

void Refresher::Remove(uint64_t id) {
  std::unique_lock lock(mu_);
  if (jobs_.erase(id) != 0) std::erase(queue_, id);
  idle_.wait(lock, [&] { return running_ != id; });
}

void Refresher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t Refresher::Pending() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void Refresher::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const uint64_t id = queue_.front();
    queue_.pop_front();
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    it->second.queued = false;  // asked again while it runs: it runs again after
    std::function<void()> run = it->second.run;
    running_ = id;
    lock.unlock();
    try {
      run();
    } catch (const std::exception& e) {
      spdlog::error("refreshing a view failed: {}", e.what());
    } catch (...) {
      spdlog::error("refreshing a view failed: unknown exception");
    }
    lock.lock();
    running_ = 0;
    idle_.notify_all();
  }
}

}  // namespace natpilot
