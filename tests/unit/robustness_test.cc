// A store read that fails (a real SQLite error: a table renamed away under the running daemon's
// connection) is an error for that pass, never a crash: the identity watch's thread and the rules
// writer log it and work again once the fault clears; the event bus keeps a throwing subscriber
// from reaching the committer.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/event_bus.h"
#include "faults.h"
#include "identity/identity_watch.h"
#include "mapping/static_rules.h"
#include "store/sqlite_store.h"

namespace natpilot {
namespace {

using testing::LogCapture;
using testing::TableAway;
using testing::WaitUntil;

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("natpilot-faults-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_unique<SqliteStore>(StoreOptions{DbPath()});
    Device d;
    d.name = "ata1";
    d.address = "192.168.1.20";
    d.plan.sip = {5060, 5060};
    d.plan.rtp = {10000, 10001};
    ASSERT_TRUE(store_->AddDevice(d, Event{0, now_, "device.registered", "ata1", "t", ""}));
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string DbPath() const { return (dir_ / "natpilot.db").string(); }
  // ata1's mappings all on static rules, so the rules writer has something to write.
  void NeedStaticRules() {
    auto ms = store_->ListMappings("ata1").value();
    for (auto& m : ms) m.state = MappingState::kStaticRule;
    ASSERT_TRUE(store_->SaveMappings(ms, {}));
  }

  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  TimePoint now_{Seconds(1764100000)};
};

TEST_F(StoreFaultTest, TheSqliteErrorIsAStdException) {
  TableAway away(DbPath(), "events");
  try {
    store_->ListEvents(0, 10);
    ADD_FAILURE() << "ListEvents read a table that is not there";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("no such table: events"), std::string::npos) << e.what();
  }
}

TEST_F(StoreFaultTest, TheIdentityWatchThreadSurvivesAFailedReadAndWorksOnceItClears) {
  LogCapture log;
  std::atomic<int> probes{0};
  IdentityWatch watch(
      *store_, IdentityOptions{true, Seconds(3600), Seconds(600)},
      [&probes](const std::vector<std::string>& addresses) {
        ++probes;
        return std::vector<NeighborAnswer>(addresses.size(),
                                           {NeighborAnswer::Kind::kAnswered, "02:00:00:00:00:0a"});
      },
      [this] { return now_; }, nullptr);
  TableAway away(DbPath(), "devices");
  watch.Start();  // the first pass runs at once and cannot read the devices
  ASSERT_TRUE(WaitUntil([&] { return log.Contains("identity check failed"); })) << log.All();
  EXPECT_TRUE(log.Contains("no such table: devices")) << log.All();
  EXPECT_EQ(probes.load(), 0);

  away.Restore();
  watch.Wake();
  EXPECT_TRUE(WaitUntil([&] { return store_->GetDevice("ata1")->mac == "02:00:00:00:00:0a"; }))
      << log.All();
  watch.Stop();
  EXPECT_EQ(store_->ListEvents(0, 1).back().kind, "device.identified");
}

TEST_F(StoreFaultTest, TheRulesWriterLogsAFailedReadWritesNothingAndWritesOnceItClears) {
  LogCapture log;
  NeedStaticRules();
  StaticRulesOptions options;
  options.folder = (dir_ / "rules").string();
  RulesWriter writer(*store_, options, [this] { return now_; });
  {
    TableAway away(DbPath(), "devices");
    EXPECT_NO_THROW(writer.Refresh());
    // The mappings are read with their devices: that read fails first.
    EXPECT_TRUE(log.Contains("static rules: cannot read the mappings")) << log.All();
    EXPECT_FALSE(std::filesystem::exists(dir_ / "rules" / "natpilot.nft"));
  }
  writer.Refresh();
  std::ifstream in(dir_ / "rules" / "natpilot.nft");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("dnat to 192.168.1.20"), std::string::npos) << text.str();
}

// Mappings that cannot be read are not "no device needs rules": the files stay as they are.
TEST_F(StoreFaultTest, UnreadableMappingsLeaveTheRuleFilesAsTheyAre) {
  LogCapture log;
  NeedStaticRules();
  StaticRulesOptions options;
  options.folder = (dir_ / "rules").string();
  RulesWriter writer(*store_, options, [this] { return now_; });
  writer.Refresh();
  auto read = [&] {
    std::ifstream in(dir_ / "rules" / "natpilot.nft");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  const std::string before = read();
  ASSERT_NE(before.find("dnat to 192.168.1.20"), std::string::npos) << before;
  {
    TableAway away(DbPath(), "mappings");
    EXPECT_NO_THROW(writer.Refresh());
    EXPECT_TRUE(log.Contains("cannot read the mappings")) << log.All();
    EXPECT_EQ(read(), before);
  }
}

TEST(EventBusTest, AThrowingSubscriberIsLoggedAndTheOthersStillGetTheEvents) {
  LogCapture log;
  EventBus bus;
  int seen = 0;
  auto throwing =
      bus.Listen([](const std::vector<Event>&) { throw std::runtime_error("database is locked"); });
  auto counting = bus.Listen(
      [&seen](const std::vector<Event>& events) { seen += static_cast<int>(events.size()); });
  const std::vector<Event> events{Event{7, TimePoint{}, "k", "", "t", ""}};
  EXPECT_NO_THROW(bus.Publish(events));
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(log.Contains("failed on events 7..7: database is locked")) << log.All();
}

TEST(EventBusTest, ASubscriptionEndsWithItsScopeOrReset) {
  EventBus bus;
  int seen = 0;
  {
    auto s = bus.Listen([&seen](const std::vector<Event>&) { ++seen; });
    EventBus::Subscription moved = std::move(s);
    EXPECT_EQ(bus.SubscriberCount(), 1u);
    bus.Publish({Event{}});
  }
  EXPECT_EQ(bus.SubscriberCount(), 0u);
  bus.Publish({Event{}});
  EXPECT_EQ(seen, 1);
  auto s = bus.Listen([](const std::vector<Event>&) {});
  s.Reset();
  EXPECT_EQ(bus.SubscriberCount(), 0u);
}

}  // namespace
}  // namespace natpilot
