#include "portmap/prober.h"

namespace natpilot {

Prober::Prober(std::vector<PortMapper*> mappers, std::chrono::milliseconds window)
    : mappers_(std::move(mappers)), window_(window), reports_(mappers_.size()) {
  for (size_t i = 0; i < mappers_.size(); ++i) reports_[i].protocol = mappers_[i]->protocol();
}

Prober::~Prober() { JoinAll(); }

void Prober::JoinAll() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

bool Prober::Usable(size_t i) const {
  std::lock_guard lock(mu_);
  return i < reports_.size() && reports_[i].done &&
         reports_[i].info.status == GatewayInfo::Status::kReady;
}

std::vector<ProtocolReport> Prober::Reports() const {
  std::lock_guard lock(mu_);
  return reports_;
}

// The most preferred usable mapper, if every more preferred one has answered or the window is
// over; -1 to keep waiting (or, when all are done, none usable).
int Prober::ChooseLocked(bool window_over) const {
  for (size_t i = 0; i < reports_.size(); ++i) {
    const auto& r = reports_[i];
    if (r.done && r.info.status == GatewayInfo::Status::kReady) return static_cast<int>(i);
    if (!r.done && !window_over) return -1;  // a more preferred protocol may still answer
  }
  return -1;
}

int Prober::Run() {
  JoinAll();  // the previous round's stragglers
  {
    std::lock_guard lock(mu_);
    for (auto& r : reports_) r = ProtocolReport{r.protocol, false, {}, {}};
  }
  for (size_t i = 0; i < mappers_.size(); ++i) {
    threads_.emplace_back([this, i] {
      const auto start = std::chrono::steady_clock::now();
      GatewayInfo info = mappers_[i]->Probe();
      std::lock_guard lock(mu_);
      reports_[i].info = std::move(info);
      reports_[i].took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      reports_[i].done = true;
      cv_.notify_all();
    });
  }
  std::unique_lock lock(mu_);
  auto all_done = [&] {
    for (const auto& r : reports_) {
      if (!r.done) return false;
    }
    return true;
  };
  auto any_usable = [&] {
    for (const auto& r : reports_) {
      if (r.done && r.info.status == GatewayInfo::Status::kReady) return true;
    }
    return false;
  };
  // Until something usable answers (or everything has), then at most the window more.
  cv_.wait(lock, [&] { return all_done() || any_usable(); });
  const auto deadline = std::chrono::steady_clock::now() + window_;
  cv_.wait_until(lock, deadline, [&] { return all_done() || ChooseLocked(false) >= 0; });
  return ChooseLocked(true);
}

}  // namespace natpilot
