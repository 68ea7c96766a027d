// The store's own safety: a private file, refusal of damaged or newer databases, and suspension
// of a device's mappings when its identity is in doubt.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "store/sqlite_store.h"

namespace natpilot {
namespace {

class StoreSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("natpilot-safety-" + std::to_string(::getpid()));
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

TEST_F(StoreSafety, TheDatabaseFileIsCreatedPrivate) {
  { SqliteStore store(StoreOptions{Path()}); ASSERT_TRUE(store.AddDevice(Ata(), Ev("a"))); }
  struct stat st {};
  ASSERT_EQ(::stat(Path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(StoreSafety, ADamagedDatabaseStopsTheStartAndIsNotOverwritten) {
  { SqliteStore store(StoreOptions{Path()}); ASSERT_TRUE(store.AddDevice(Ata(), Ev("a"))); }
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
    EXPECT_NE(std::string(e.what()).find("newer than this natpilotd knows"), std::string::npos) << e.what();
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
  ASSERT_TRUE(store.UpdateDevice(up, Ev("device.updated")));
  for (const Mapping& m : Ms()) EXPECT_TRUE(m.released) << m.internal_port;

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
  auto moved = store.UpdateDevice(up, Ev("device.updated"));
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
  ASSERT_TRUE(store.SetDeviceIdentity("ata1", "02:00:00:00:00:01", "another MAC", {Ev("device.suspended")}));
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

}  // namespace
}  // namespace natpilot
