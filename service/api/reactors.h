// Reactor pieces shared by the gRPC services: finishing a unary call, a server stream fed from the
// event bus, and a stream refused before it starts.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>

#include "api/convert.h"
#include "api/event_bus.h"
#include "api/limits.h"

namespace natpilot {

inline grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* c, grpc::Status status) {
  auto* reactor = c->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}
inline grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* c, const Error& error) {
  return Done(c, ToStatus(error));
}

// A server stream fed from the event bus: messages queued under mu_ are written one at a time; the
// stream ends when the caller goes away, a write fails, or EndLocked's status is reached after the
// queue drains. A subclass starts with Start() and queues with QueueLocked(); its callback runs
// under no lock of ours, takes mu_ itself and must return at once when EndedLocked().
template <typename Message>
class BusStream : public grpc::ServerWriteReactor<Message> {
 public:
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) return FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed"));
    WriteNextLocked();
  }
  void OnCancel() override {
    std::lock_guard lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    subscription_.Reset();
    delete this;
  }

 protected:
  // slot: the caller's place among its open streams, given back when the stream is done.
  explicit BusStream(EventBus& bus, StreamLimits::Slot slot = {})
      : bus_(bus), slot_(std::move(slot)) {}
  // Subscribes, then runs backfill_locked under mu_ (it reads the store; subscribing first means no
  // commit falls between). Exception-safe: if either throws, the stream ends with INTERNAL and the
  // subscription is gone before Start returns, so no callback is left pointing at this stream.
  template <typename Backfill>
  void Start(EventBus::Callback on_events, Backfill&& backfill_locked) {
    bool failed = false;
    {
      std::lock_guard lock(mu_);
      try {
        subscription_ = bus_.Listen(std::move(on_events));
        backfill_locked();
      } catch (const std::exception& e) {
        failed = FailLocked("the stream cannot start", e.what());
      } catch (...) {
        failed = FailLocked("the stream cannot start", "unknown exception");
      }
    }
    // Outside mu_: Reset waits for a running callback, which may be waiting for mu_.
    if (failed) subscription_.Reset();
  }
  // Ends the stream with INTERNAL at once, dropping what is queued; logs with context.
  bool FailLocked(const std::string& context, const std::string& what) {
    spdlog::error("{}: {}: {}", StreamName(), context, what);
    DropQueuedLocked();
    EndLocked(grpc::Status(grpc::StatusCode::INTERNAL, context + ": " + what));
    return true;
  }
  virtual const char* StreamName() const = 0;
  // A reader that does not keep up: past kMaxQueued messages the stream ends (RESOURCE_EXHAUSTED)
  // instead of growing without bound; the client watches again with a backlog.
  static constexpr size_t kMaxQueued = 20000;
  void QueueLocked(Message m) {
    if (queue_.size() >= kMaxQueued) {
      if (EndedLocked()) return;
      DropQueuedLocked();
      return EndLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                    "the stream was read too slowly (" +
                                        std::to_string(kMaxQueued) +
                                        " messages waiting); watch again"));
    }
    queue_.push_back(std::move(m));
    WriteNextLocked();
  }
  void DropQueuedLocked() { queue_.clear(); }
  // Ends the stream with status once what is queued has been written.
  void EndLocked(grpc::Status status) {
    end_ = std::move(status);
    WriteNextLocked();
  }
  bool EndedLocked() const { return finished_ || end_.has_value(); }

  std::mutex mu_;

 private:
  void WriteNextLocked() {
    if (writing_ || finished_) return;
    if (queue_.empty()) {
      if (end_) FinishLocked(*end_);
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    this->StartWrite(&current_);
  }
  void FinishLocked(grpc::Status status) {
    if (finished_) return;
    finished_ = true;
    this->Finish(std::move(status));
  }

  EventBus& bus_;
  StreamLimits::Slot slot_;
  EventBus::Subscription subscription_;
  std::deque<Message> queue_;
  std::optional<grpc::Status> end_;
  Message current_;
  bool writing_ = false;
  bool finished_ = false;
};

// A stream refused before it starts.
template <typename Message>
class RefusedStream final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit RefusedStream(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace natpilot
