// The store's own safety: a private file, refusal of damaged or newer databases, and suspension
// of a device's mappings when its identity is in doubt.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/text.h"
#include "store/sqlite_store.h"

namespace natpilot {
namespace {

class StoreSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("natpilot-safety-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path() const { return (dir_ / "natpilot.db").string(); }
  static Device Ata() {
    Device d;
    d.name = "ata1";
    d.kind = DeviceKind::kAta;
    d.address = "192.168.1.20";
    d.plan.sip = {5060, 5060};
    d.plan.rtp = {10000, 10009};
    return d;
  }
  static Event Ev(const std::string& kind) {
    return Event{0, TimePoint(Seconds(1700000000)), kind, "ata1", "test", "m"};
  }
  std::filesystem::path dir_;
};

// The last guard: whatever text an event or a mapping's detail carries is stored valid UTF-8
// without control characters, bounded (gRPC rejects invalid UTF-8; terminals obey ESC).
TEST_F(StoreSafety, EventTextAndMappingDetailsAreStoredSafe) {
  SqliteStore store(StoreOptions{Path()});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  Event e = Ev("gateway.conflict");
  e.message = "held by \x1b]0;owned\x07\xff\xfe" + std::string(10000, 'x');
  ASSERT_TRUE(store.AppendEvents({e}));
  const auto events = store.ListEvents(0, 10);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(UnsafeTextReason(events.back().message), "");
  EXPECT_LE(events.back().message.size(), 4096u);
  EXPECT_EQ(events.back().message.rfind("held by ", 0), 0u);
  auto mappings = store.ListMappings("");
  ASSERT_TRUE(mappings && !mappings->empty());
  Mapping m = mappings->front();
  m.detail = "refused: \x1b[2J\xc0\xaf";
  ASSERT_TRUE(store.SaveMappings({m}, {}));
  mappings = store.ListMappings("");
  EXPECT_EQ(UnsafeTextReason(mappings->front().detail), "");
  EXPECT_EQ(mappings->front().detail.rfind("refused: ", 0), 0u);
}

TEST_F(StoreSafety, TheDatabaseFileIsCreatedPrivate) {
  {
    SqliteStore store(StoreOptions{Path()});
    ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  }
  struct stat st {};
  ASSERT_EQ(::stat(Path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StoreSafety, ADamagedDatabaseStopsTheStartAndIsNotOverwritten) {
  {
    SqliteStore store(StoreOptions{Path()});
    ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  }
  // Overwrite the middle of the file (past the header page) with garbage.
  const auto size = std::filesystem::file_size(Path());
  ASSERT_GT(size, 8192u);
  {
    std::fstream f(Path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    const std::string junk(4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  std::ifstream before_in(Path(), std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(before_in)), {});
  try {
    SqliteStore store(StoreOptions{Path()});
    FAIL() << "a damaged database was opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is damaged"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("restore a backup"), std::string::npos) << e.what();
  }
  std::ifstream after_in(Path(), std::ios::binary);
  const std::string after((std::istreambuf_iterator<char>(after_in)), {});
  EXPECT_EQ(before, after);
}

TEST_F(StoreSafety, AFileThatIsNoDatabaseIsRefused) {
  { std::ofstream(Path()) << std::string(5000, 'x'); }
  EXPECT_THROW(SqliteStore(StoreOptions{Path()}), std::runtime_error);
  EXPECT_EQ(std::filesystem::file_size(Path()), 5000u);
}

TEST_F(StoreSafety, ANewerSchemaStopsTheStart) {
  { SqliteStore store(StoreOptions{Path()}); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(Path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    SqliteStore store(StoreOptions{Path()});
    FAIL() << "a newer schema was opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this natpilotd knows"), std::string::npos)
        << e.what();
  }
}

TEST_F(StoreSafety, SuspendingReleasesLeasesAndResumingWantsThemAgain) {
  SqliteStore store(StoreOptions{":memory:"});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  auto Ms = [&]() -> std::vector<Mapping> { return store.ListMappings("ata1").value(); };
  auto ms = Ms();
  for (auto& m : ms) {
    m.state = MappingState::kActive;
    m.protocol = GatewayProtocol::kPcp;
  }
  ASSERT_TRUE(store.SaveMappings(ms, {}));
  auto d = store.SetDeviceIdentity("ata1", "02:00:00:00:00:01", "", {Ev("device.identified")});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mac, "02:00:00:00:00:01");
  EXPECT_TRUE(store.ListReleases().empty());

  d = store.SetDeviceIdentity("ata1", "02:00:00:00:00:01", "answers from another MAC",
                              {Ev("device.suspended")});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->suspended, "answers from another MAC");
  EXPECT_EQ(store.ListReleases().size(), ms.size());
  for (const Mapping& m : Ms()) {
    EXPECT_TRUE(m.released);
    EXPECT_EQ(m.protocol, GatewayProtocol::kNone);
    EXPECT_NE(m.detail.find("suspended"), std::string::npos);
  }
  // An update by the device itself (same address) keeps the suspension.
  Device up = *store.GetDevice("ata1");
  up.plan.rtp = {10000, 10019};
  ASSERT_TRUE(store.UpdateDevice(up, Ev("device.updated"), Store::Released::kKeep));
  for (const Mapping& m : Ms()) EXPECT_TRUE(m.released) << m.internal_port;
  ASSERT_TRUE(store.UpdateDevice(up, Ev("device.updated"), Store::Released::kRearm));
  for (const Mapping& m : Ms())
    EXPECT_TRUE(m.released) << "an admin's update too: " << m.internal_port;

  d = store.SetDeviceIdentity("ata1", "02:00:00:00:00:01", "", {Ev("device.resumed")});
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->suspended.empty());
  for (const Mapping& m : Ms()) {
    EXPECT_FALSE(m.released);
    EXPECT_EQ(m.state, MappingState::kPending);
  }
  // A new address is a new host: MAC and suspension are forgotten.
  ASSERT_TRUE(store.SetDeviceIdentity("ata1", "02:00:00:00:00:01", "x", {Ev("device.suspended")}));
  up = *store.GetDevice("ata1");
  up.address = "192.168.1.21";
  auto moved = store.UpdateDevice(up, Ev("device.updated"), Store::Released::kRearm);
  ASSERT_TRUE(moved);
  EXPECT_TRUE(moved->mac.empty());
  EXPECT_TRUE(moved->suspended.empty());
  for (const Mapping& m : Ms()) EXPECT_FALSE(m.released);
}

TEST_F(StoreSafety, ALeaseGrantedWhileItsMappingWasReleasedIsQueuedForDeletion) {
  SqliteStore store(StoreOptions{":memory:"});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  // A reconciler pass loaded the mappings before the release...
  auto in_flight = store.ListMappings("ata1").value();
  ASSERT_TRUE(store.SetDeviceIdentity("ata1", "02:00:00:00:00:01", "another MAC",
                                      {Ev("device.suspended")}));
  EXPECT_TRUE(store.ListReleases().empty());  // nothing held a lease yet
  // ...and saves the leases it got meanwhile.
  for (auto& m : in_flight) {
    m.state = MappingState::kActive;
    m.protocol = GatewayProtocol::kUpnpIgd;
    m.external_address = "203.0.113.1";
  }
  ASSERT_TRUE(store.SaveMappings(in_flight, {}));
  EXPECT_EQ(store.ListReleases().size(), in_flight.size());
  const std::vector<Mapping> after = store.ListMappings("ata1").value();
  for (const Mapping& m : after) {
    EXPECT_TRUE(m.released);
    EXPECT_EQ(m.protocol, GatewayProtocol::kNone);
    EXPECT_EQ(m.state, MappingState::kUnmapped);
  }
  ASSERT_TRUE(store.SaveMappings(in_flight, {}));  // saved twice: still one release each
  EXPECT_EQ(store.ListReleases().size(), in_flight.size());
}

// A reconciler pass loaded the mappings, the intent changed, and the pass saves the leases it got:
// whatever is no longer wanted as it was is queued for release, never silently skipped.
class IntentChangedMidPass : public StoreSafety {
 protected:
  std::vector<Mapping> InFlight(SqliteStore& store) {
    auto in_flight = store.ListMappings("ata1").value();
    for (auto& m : in_flight) {
      m.state = MappingState::kActive;
      m.protocol = GatewayProtocol::kPcp;
      m.nonce = "00112233445566778899aabb";
    }
    return in_flight;
  }
};

TEST_F(IntentChangedMidPass, ADeviceRemovedQueuesEveryLeaseItsPassGot) {
  SqliteStore store(StoreOptions{":memory:"});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  auto in_flight = InFlight(store);
  ASSERT_TRUE(store.RemoveDevice("ata1", Ev("device.removed")));
  auto stale = store.SaveMappings(in_flight, {});
  ASSERT_TRUE(stale);
  EXPECT_EQ(*stale, in_flight.size());
  const auto releases = store.ListReleases();
  ASSERT_EQ(releases.size(), in_flight.size());
  EXPECT_EQ(releases.front().nonce, "00112233445566778899aabb");  // PCP deletes by nonce
  EXPECT_EQ(releases.front().protocol, GatewayProtocol::kPcp);
}

TEST_F(IntentChangedMidPass, ADeviceReAddedUnderTheSameIdsIsNotMistakenForTheOldOne) {
  SqliteStore store(StoreOptions{":memory:"});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  auto in_flight = InFlight(store);
  ASSERT_TRUE(store.RemoveDevice("ata1", Ev("device.removed")));
  Device other = Ata();
  other.address = "192.168.1.21";  // the new rows may take the old ids (SQLite reuses them)
  ASSERT_TRUE(store.AddDevice(other, Ev("a")));
  EXPECT_EQ(*store.SaveMappings(in_flight, {}), in_flight.size());
  EXPECT_EQ(store.ListReleases().size(), in_flight.size());
  for (const Mapping& m : store.ListMappings("ata1").value()) {
    EXPECT_EQ(m.protocol, GatewayProtocol::kNone);  // the new device's rows were not written
    EXPECT_EQ(m.internal_address, "192.168.1.21");
  }
}

TEST_F(IntentChangedMidPass, AMoveQueuesTheOldAddressLeases) {
  SqliteStore store(StoreOptions{":memory:"});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  auto in_flight = InFlight(store);
  Device moved = Ata();
  moved.address = "192.168.1.30";
  ASSERT_TRUE(store.UpdateDevice(moved, Ev("device.updated"), Store::Released::kRearm));
  EXPECT_EQ(*store.SaveMappings(in_flight, {}), in_flight.size());
  const auto releases = store.ListReleases();
  ASSERT_EQ(releases.size(), in_flight.size());
  for (const Release& r : releases) EXPECT_EQ(r.internal_address, "192.168.1.20");
  for (const Mapping& m : store.ListMappings("ata1").value()) {
    EXPECT_EQ(m.state, MappingState::kPending);
    EXPECT_EQ(m.internal_address, "192.168.1.30");
  }
}

TEST_F(IntentChangedMidPass, ANarrowedPlanQueuesOnlyTheDroppedPorts) {
  SqliteStore store(StoreOptions{":memory:"});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  auto in_flight = InFlight(store);
  Device narrowed = Ata();
  narrowed.plan.rtp = {10000, 10004};  // 10005-10009 dropped
  ASSERT_TRUE(store.UpdateDevice(narrowed, Ev("device.updated"), Store::Released::kRearm));
  EXPECT_EQ(*store.SaveMappings(in_flight, {}), 5u);
  const auto releases = store.ListReleases();
  ASSERT_EQ(releases.size(), 5u);
  for (const Release& r : releases) EXPECT_GE(r.external_port, 10005);
  uint32_t active = 0;
  for (const Mapping& m : store.ListMappings("ata1").value())
    active += m.state == MappingState::kActive;
  EXPECT_EQ(active, 2u + 5u);  // SIP udp+tcp and the five RTP ports kept their leases
}

TEST_F(IntentChangedMidPass, APcpRequestThatGotNoAnswerIsDeletedWithItsNonceOnRemoval) {
  SqliteStore store(StoreOptions{":memory:"});
  ASSERT_TRUE(store.AddDevice(Ata(), Ev("a")));
  auto ms = store.ListMappings("ata1").value();
  ms.front().nonce = "00112233445566778899aabb";  // sent; the answer was lost, so no lease
  ms.front().state = MappingState::kFailed;
  ASSERT_EQ(*store.SaveMappings({ms.front()}, {}), 0u);
  ASSERT_TRUE(store.RemoveDevice("ata1", Ev("device.removed")));
  const auto releases = store.ListReleases();
  ASSERT_EQ(releases.size(), 1u);  // the others never asked the gateway for anything
  EXPECT_EQ(releases.front().protocol, GatewayProtocol::kPcp);
  EXPECT_EQ(releases.front().nonce, "00112233445566778899aabb");
}

}  // namespace
}  // namespace natpilot
