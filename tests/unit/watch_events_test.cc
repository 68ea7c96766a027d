// WatchEvents as a client sees it, over the real gRPC API and SQLite store: every event that
// ListEvents shows arrives once and in id order, also when commits publish out of id order; a
// stream that cannot read its backlog ends with INTERNAL and leaves no subscription behind.
#include <atomic>
#include <condition_variable>
#include <set>
#include <thread>

#include "api_fixture.h"
#include "faults.h"

namespace natpilot {
namespace {

using ::grpc::StatusCode;

// Publishes a commit whose event says "hold" only after a commit with a larger id was published:
// the bus then sees ids out of order, as it does when two committers race after the store lock.
class HoldBackPublisher {
 public:
  explicit HoldBackPublisher(EventBus& bus) : bus_(bus) {}
  void operator()(const std::vector<Event>& events) {
    if (events.front().message == "hold") {
      std::unique_lock lock(mu_);
      ++holding_;
      // Bounded: the other committer commits again while a hold waits.
      if (cv_.wait_for(lock, std::chrono::seconds(5),
                       [&] { return published_max_ > events.back().id; })) {
        ++overtaken_;
      }
      --holding_;
    }
    bus_.Publish(events);
    {
      std::lock_guard lock(mu_);
      published_max_ = std::max(published_max_, events.back().id);
    }
    cv_.notify_all();
  }
  int overtaken() {
    std::lock_guard lock(mu_);
    return overtaken_;
  }
  bool holding() {
    std::lock_guard lock(mu_);
    return holding_ > 0;
  }

 private:
  EventBus& bus_;
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t published_max_ = 0;
  int overtaken_ = 0;
  int holding_ = 0;
};

class WatchEventsTest : public ApiFixture {
 protected:
  static std::unique_ptr<grpc::ClientContext> StreamCtx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return c;
  }
  Event Ev(const std::string& message) {
    return Event{0, Clock::now(), "test.tick", "", "test", message};
  }
};

TEST_F(WatchEventsTest, EventsPublishedOutOfIdOrderAreAllStreamedOnceInIdOrder) {
  HoldBackPublisher publisher(bus_);
  store_->SetEventListener([&publisher](const std::vector<Event>& events) { publisher(events); });
  auto ctx = StreamCtx();
  v1::WatchEventsRequest req;
  req.set_backlog(10000);  // everything from the first event on
  auto reader = v1::EventService::NewStub(unix_)->WatchEvents(ctx.get(), req);
  ASSERT_TRUE(testing::WaitUntil([&] { return bus_.SubscriberCount() == 1; }));

  // Two committers at once, many times; every third commit of the first is held back. The other
  // commits again whenever the first made progress or is holding, so the two alternate.
  constexpr int kHolderCommits = 150;
  std::atomic<int> holder_commits{0};
  std::thread holder([&] {
    for (int i = 0; i < kHolderCommits; ++i) {
      ASSERT_TRUE(store_->AppendEvents({Ev(i % 3 == 0 ? "hold" : "a")}));
      ++holder_commits;
    }
  });
  std::thread other([&] {
    int seen = -1;
    while (seen < kHolderCommits) {
      ASSERT_TRUE(store_->AppendEvents({Ev("b")}));
      ASSERT_TRUE(
          testing::WaitUntil([&] { return holder_commits != seen || publisher.holding(); }));
      seen = holder_commits;
    }
  });
  holder.join();
  other.join();
  ASSERT_TRUE(store_->AppendEvents({Ev("last")}));
  const std::vector<Event> listed = store_->ListEvents(0, 100000);
  ASSERT_LT(listed.size(), 10000u);                      // no retention pruning in between
  EXPECT_EQ(publisher.overtaken(), kHolderCommits / 3);  // the bus really saw ids out of order

  std::vector<int64_t> streamed;
  v1::Event e;
  while (reader->Read(&e)) {
    streamed.push_back(static_cast<int64_t>(e.id()));
    if (e.message() == "last") break;
  }
  ctx->TryCancel();
  std::vector<int64_t> expected;
  for (const Event& l : listed) expected.push_back(l.id);
  // The same ids, each once, in increasing order.
  EXPECT_EQ(streamed, expected) << streamed.size() << " streamed, " << expected.size() << " listed";
}

TEST_F(WatchEventsTest, AStreamThatCannotReadItsBacklogEndsWithInternalAndLeavesNoSubscription) {
  testing::LogCapture log;
  {
    testing::TableAway away((dir_ / "natpilot.db").string(), "events");
    auto ctx = StreamCtx();
    v1::WatchEventsRequest req;
    req.set_backlog(10);
    auto reader = v1::EventService::NewStub(unix_)->WatchEvents(ctx.get(), req);
    v1::Event e;
    EXPECT_FALSE(reader->Read(&e));
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), StatusCode::INTERNAL) << status.error_message();
    EXPECT_NE(status.error_message().find("no such table: events"), std::string::npos)
        << status.error_message();
    EXPECT_TRUE(log.Contains("WatchEvents: the stream cannot start")) << log.All();
  }
  EXPECT_EQ(bus_.SubscriberCount(), 0u);  // nothing left pointing at the dead stream

  // Once the table is back, commits publish safely and a new stream works.
  ASSERT_TRUE(store_->AppendEvents({Ev("after")}));
  auto ctx = StreamCtx();
  v1::WatchEventsRequest req;
  req.set_backlog(1);
  auto reader = v1::EventService::NewStub(unix_)->WatchEvents(ctx.get(), req);
  v1::Event e;
  ASSERT_TRUE(reader->Read(&e));
  EXPECT_EQ(e.message(), "after");
  ctx->TryCancel();
}

}  // namespace
}  // namespace natpilot
