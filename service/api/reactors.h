// Reactor pieces shared by the gRPC services: finishing a unary call, a server stream fed from the
// event bus, and a stream refused before it starts.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <mutex>
#include <optional>

#include "api/convert.h"
#include "api/event_bus.h"

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
// queue drains. A subclass subscribes with Listen() and queues with QueueLocked().
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
    bus_.Unsubscribe(subscription_);
    delete this;
  }

 protected:
  explicit BusStream(EventBus& bus) : bus_(bus) {}
  void Listen(EventBus::Callback callback) { subscription_ = bus_.Subscribe(std::move(callback)); }
  void QueueLocked(Message m) {
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
  uint64_t subscription_ = 0;
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
