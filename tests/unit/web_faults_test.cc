// The status page's server when the store cannot be read (a real SQLite error: a table renamed
// away): a request gets a JSON 500 and the server goes on; a failed stream start takes no page
// slot; an open event stream whose status cannot be built is closed (the page reconnects), not the
// process.
#include <atomic>
#include <thread>

#include "api_fixture.h"
#include "faults.h"
#include "web/web_server.h"

namespace natpilot {
namespace {

class WebFaultsTest : public ApiFixture {
 protected:
  void SetUp() override {
    ApiFixture::SetUp();
    web_ = std::make_unique<web::WebServer>(web::WebContext{*store_, *registry_, *reconciler_, bus_,
                                                            rules_, *limiter_, metrics_, *auth_},
                                            "127.0.0.1:0");
    web_->Start();
  }
  void TearDown() override {
    web_->Stop();
    ApiFixture::TearDown();
  }
  httplib::Client Client() {
    httplib::Client c("127.0.0.1", web_->port());
    c.set_read_timeout(10, 0);
    return c;
  }
  std::string DbPath() const { return (dir_ / "natpilot.db").string(); }

  ApiMetrics metrics_;
  std::unique_ptr<web::WebServer> web_;
};

TEST_F(WebFaultsTest, AFailedReadIsAJson500AndTakesNoStreamSlot) {
  testing::LogCapture log;
  auto client = Client();
  {
    testing::TableAway away(DbPath(), "events");
    auto events = client.Get("/api/events");
    ASSERT_TRUE(events);
    EXPECT_EQ(events->status, 500);
    const std::string body = "{\"error\":\"internal error (see natpilotd's log)\"}";
    EXPECT_EQ(events->body, body);
    EXPECT_TRUE(log.Contains("web: GET /api/events failed: no such table: events")) << log.All();
    for (int i = 0; i < 9; ++i) {  // more than the 8 page slots: none is kept by a failed start
      auto stream = client.Get("/api/stream");
      ASSERT_TRUE(stream);
      EXPECT_EQ(stream->status, 500) << i;
    }
  }
  auto events = client.Get("/api/events");
  ASSERT_TRUE(events);
  EXPECT_EQ(events->status, 200);
}

TEST_F(WebFaultsTest, AStreamWhoseStatusCannotBeBuiltIsClosedAndTheServerGoesOn) {
  testing::LogCapture log;
  std::atomic<int> chunks{0};
  std::thread page([this, &chunks] {
    auto client = Client();
    client.Get("/api/stream", [&chunks](const char*, size_t) {
      ++chunks;
      return true;
    });
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return chunks > 0; }));
  {
    testing::TableAway away(DbPath(), "devices");
    ASSERT_TRUE(store_->AppendEvents(
        {Event{0, Clock::now(), "test.tick", "", "test", ""}}));  // status now dirty
    ASSERT_TRUE(testing::WaitUntil([&] {
      return log.Contains("web: the status page stream failed");
    })) << log.All();
  }
  page.join();  // the server closed the stream
  EXPECT_TRUE(log.Contains("no such table: devices")) << log.All();
  auto status = Client().Get("/api/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
}

}  // namespace
}  // namespace natpilot
