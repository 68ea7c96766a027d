#include "core/worker.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace natpilot {

void Worker::Start(Pass pass) {
  if (thread_.joinable()) return;
  pass_ = std::move(pass);
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Worker::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Worker::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<Worker::Duration> Worker::RunLogged() {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(retry_after_).count();
  try {
    return pass_();
  } catch (const std::exception& e) {
    spdlog::error("{} failed (again in {} s or when woken): {}", what_, seconds, e.what());
  } catch (...) {
    spdlog::error("{} failed (again in {} s or when woken): unknown exception", what_, seconds);
  }
  return retry_after_;
}

void Worker::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    woken_ = false;
    lock.unlock();
    const std::optional<Duration> next = RunLogged();
    lock.lock();
    const auto due = [this] { return stop_ || woken_; };
    if (!next) {
      cv_.wait(lock, due);
    } else if (*next > Duration::zero()) {
      cv_.wait_for(lock, *next, due);
    }
  }
}

}  // namespace natpilot
