// The store conformance suite: written once against the Store interface, run against every
// backend configuration (SQLite in memory and on disk).
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "core/validate.h"
#include "store/sqlite_store.h"

namespace natpilot {
namespace {

struct Backend {
  std::string name;
  bool on_disk;
};
void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("natpilot-store-" + std::to_string(::getpid()) + "-" + GetParam().name);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    StoreOptions o;
    o.path = GetParam().on_disk ? (dir_ / "natpilot.db").string() : ":memory:";
    o.event_retention_count = 50;
    store_ = std::make_unique<SqliteStore>(o);
  }
  static Device MakeDevice(const std::string& name, const std::string& address, PortRange sip,
                           PortRange rtp) {
    Device d;
    d.name = name;
    d.kind = DeviceKind::kAta;
    d.address = address;
    d.plan.sip = sip;
    d.plan.rtp = rtp;
    d.created_at = d.updated_at = TimePoint(Seconds(1700000000));
    return d;
  }
  static Event Ev(const std::string& kind) {
    return Event{0, TimePoint(Seconds(1700000000)), kind, "", "test", "m"};
  }
  // Marks mappings as held by a UPnP lease.
  void Lease(std::vector<Mapping> ms) {
    for (auto& m : ms) {
      m.state = MappingState::kActive;
      m.protocol = GatewayProtocol::kUpnpIgd;
    }
    ASSERT_TRUE(store_->SaveMappings(ms, {}));
  }
  std::vector<Mapping> Mappings(const std::string& device = "") {
    return *store_->ListMappings(device);
  }

  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
};

// A lease past its end is not counted as active, and readers show it as failed with why: the
// reconciler may still be waiting on a gateway that does not answer.
TEST_P(StoreConformance, LeasesPastTheirEndAreNotActive) {
  ASSERT_TRUE(store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10001}),
                                Ev("device.registered")));
  const TimePoint now = Clock::now();
  auto ms = Mappings("ata1");
  ASSERT_EQ(ms.size(), 4u);
  for (size_t i = 0; i < ms.size(); ++i) {
    ms[i].state = i == 3 ? MappingState::kRenewing : MappingState::kActive;
    ms[i].protocol = GatewayProtocol::kPcp;
    ms[i].external_address = "203.0.113.7";
    // 0: ended a minute ago, 1: ends in an hour, 2: permanent, 3: renewing, ended a second ago.
    ms[i].expires_at = i == 0   ? now - Seconds(60)
                       : i == 1 ? now + Seconds(3600)
                       : i == 2 ? TimePoint{}
                                : now - Seconds(1);
  }
  ASSERT_TRUE(store_->SaveMappings(ms, {}));
  EXPECT_EQ(store_->GetDevice("ata1")->mappings_active, 2u);

  auto seen = Mappings("ata1");
  LapseExpired(seen, now);
  size_t failed = 0, active = 0;
  for (const Mapping& m : seen) {
    if (m.state == MappingState::kFailed) {
      ++failed;
      EXPECT_EQ(m.protocol, GatewayProtocol::kNone);
      EXPECT_TRUE(m.external_address.empty());
      EXPECT_NE(m.detail.find("pcp lease ran out"), std::string::npos) << m.detail;
    } else {
      ++active;
      EXPECT_EQ(m.protocol, GatewayProtocol::kPcp);
    }
  }
  EXPECT_EQ(failed, 2u);
  EXPECT_EQ(active, 2u);
}

TEST_P(StoreConformance, AddDeviceStoresItsWholePlan) {
  auto d = store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5070}, {10000, 10099}),
                             Ev("device.registered"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->mappings_total, 122u);
  EXPECT_EQ(d->mappings_active, 0u);
  auto got = store_->GetDevice("ata1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->address, "192.168.1.20");
  EXPECT_EQ(got->plan.rtp, (PortRange{10000, 10099}));
  EXPECT_EQ(Mappings().size(), 122u);
  for (const auto& m : Mappings()) EXPECT_EQ(m.state, MappingState::kPending);
  EXPECT_EQ(store_->ListDevices().size(), 1u);
}

TEST_P(StoreConformance, DuplicatesAndPortConflictsChangeNothing) {
  ASSERT_TRUE(
      store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5070}, {10000, 10099}), Ev("a")));
  const uint64_t version = store_->RegistryVersion();
  const size_t events = store_->ListEvents(0, 1000).size();

  auto dup =
      store_->AddDevice(MakeDevice("ata1", "192.168.1.21", {6060, 6070}, {20000, 20099}), Ev("b"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, make_error_code(Errc::kAlreadyExists));

  auto clash =
      store_->AddDevice(MakeDevice("ata2", "192.168.1.21", {6060, 6070}, {10090, 10199}), Ev("c"));
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, make_error_code(Errc::kConflict));
  // Who holds the ports is for admins only (a device token is told the message alone).
  EXPECT_EQ(clash.error().message.find("ata1"), std::string::npos);
  EXPECT_NE(clash.error().admin_note.find("ata1"), std::string::npos);
  EXPECT_NE(ForAdmin(clash.error()).message.find("(device 'ata1' holds 10090-10"),
            std::string::npos);

  EXPECT_EQ(store_->ListDevices().size(), 1u);
  EXPECT_EQ(Mappings().size(), 122u);
  EXPECT_EQ(store_->RegistryVersion(), version);
  EXPECT_EQ(store_->ListEvents(0, 1000).size(), events);
}

TEST_P(StoreConformance, RemovingADeviceQueuesReleasesForItsLeasesOnly) {
  ASSERT_TRUE(
      store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5061}, {10000, 10001}), Ev("a")));
  auto ms = Mappings();
  ms[0].nonce = "0102030405060708090a0b0c";
  Lease({ms[0]});
  EXPECT_EQ(Mappings()[0].nonce, ms[0].nonce) << "the nonce is stored with the mapping";
  ASSERT_TRUE(store_->RemoveDevice("ata1", Ev("device.removed")));
  EXPECT_TRUE(Mappings().empty());
  auto releases = store_->ListReleases();
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0].external_port, ms[0].external_port);
  EXPECT_EQ(releases[0].internal_address, "192.168.1.20");
  EXPECT_EQ(releases[0].device, "ata1 (removed)")
      << "a device registered under the name later must not see these";
  EXPECT_EQ(releases[0].nonce, "0102030405060708090a0b0c") << "a PCP delete needs the same nonce";
  ASSERT_TRUE(store_->FinishRelease(releases[0], false, {}));
  EXPECT_EQ(store_->ListReleases()[0].failures, 1u);
  ASSERT_TRUE(store_->FinishRelease(releases[0], true, {}));
  EXPECT_TRUE(store_->ListReleases().empty());
  EXPECT_EQ(store_->RemoveDevice("ata1", Ev("x")).error().code, make_error_code(Errc::kNotFound));
}

TEST_P(StoreConformance, UpdateKeepsLeasesOfPortsThatStayAndReleasesTheRest) {
  ASSERT_TRUE(
      store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10003}), Ev("a")));
  Lease(Mappings());
  auto d = *store_->GetDevice("ata1");
  d.plan.rtp = {10002, 10005};
  ASSERT_TRUE(store_->UpdateDevice(d, Ev("device.updated"), Store::Released::kRearm));
  int active = 0, pending = 0;
  for (const auto& m : Mappings()) (m.state == MappingState::kActive ? active : pending)++;
  EXPECT_EQ(active, 4);                          // 5060 udp+tcp, 10002, 10003
  EXPECT_EQ(pending, 2);                         // 10004, 10005
  EXPECT_EQ(store_->ListReleases().size(), 2u);  // 10000, 10001

  d.address = "192.168.1.30";  // a new address: every lease goes
  ASSERT_TRUE(store_->UpdateDevice(d, Ev("device.updated"), Store::Released::kRearm));
  for (const auto& m : Mappings()) EXPECT_EQ(m.state, MappingState::kPending);
  EXPECT_EQ(store_->ListReleases().size(), 6u);
}

TEST_P(StoreConformance, ReleaseMarksMappingsAndQueuesTheirLeases) {
  ASSERT_TRUE(
      store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10001}), Ev("a")));
  auto ms = Mappings();
  Lease({ms[0]});
  auto n = store_->ReleaseMappings("", Ev("mapping.release-requested"), true);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  for (const auto& m : Mappings()) {
    EXPECT_TRUE(m.released);
    EXPECT_EQ(m.state, MappingState::kUnmapped);
  }
  EXPECT_EQ(store_->ListReleases().size(), 1u);
  EXPECT_FALSE(store_->ReleaseMappings("nosuch", Ev("x"), true));
}

// Who released a mapping decides what maps it again: an admin's release only an admin's update
// (not the device's own token, not the end of a suspension); the device's own release any update.
TEST_P(StoreConformance, AnAdminsReleaseIsUndoneOnlyByAnAdmin) {
  ASSERT_TRUE(
      store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10001}), Ev("a")));
  auto released = [&] {
    int n = 0;
    for (const auto& m : Mappings()) n += m.released;
    return n;
  };
  ASSERT_TRUE(store_->ReleaseMappings("ata1", Ev("mapping.release-requested"), true));
  ASSERT_EQ(released(), 4);
  auto d = *store_->GetDevice("ata1");
  ASSERT_TRUE(store_->UpdateDevice(d, Ev("device.updated"), Store::Released::kKeep));
  EXPECT_EQ(released(), 4) << "the device's own update";
  d.plan.rtp = {10000, 10003};
  ASSERT_TRUE(store_->UpdateDevice(d, Ev("device.updated"), Store::Released::kKeep));
  EXPECT_EQ(released(), 6) << "ports a new plan adds stay released too";
  // Suspended and resumed (the device unplugged for a while): the admin's release still holds.
  ASSERT_TRUE(
      store_->SetDeviceIdentity("ata1", "02:00:00:00:00:01", "absent", {Ev("device.suspended")}));
  ASSERT_TRUE(store_->SetDeviceIdentity("ata1", "02:00:00:00:00:01", "", {Ev("device.resumed")}));
  EXPECT_EQ(released(), 6) << "a resumption undid an admin's release";
  ASSERT_TRUE(store_->UpdateDevice(d, Ev("device.updated"), Store::Released::kRearm));
  EXPECT_EQ(released(), 0);

  // Released with its own token: its own update maps them again, and a resumption brings back only
  // what the suspension took.
  ASSERT_TRUE(store_->ReleaseMappings("ata1", Ev("mapping.release-requested"), false));
  for (const auto& m : Mappings())
    EXPECT_NE(m.detail.find("own token"), std::string::npos) << m.detail;
  ASSERT_TRUE(store_->UpdateDevice(d, Ev("device.updated"), Store::Released::kKeep));
  EXPECT_EQ(released(), 0);
  ASSERT_TRUE(
      store_->SetDeviceIdentity("ata1", "02:00:00:00:00:01", "absent", {Ev("device.suspended")}));
  EXPECT_EQ(released(), 6);
  ASSERT_TRUE(store_->SetDeviceIdentity("ata1", "02:00:00:00:00:01", "", {Ev("device.resumed")}));
  EXPECT_EQ(released(), 0);
}

TEST_P(StoreConformance, EventsGetIdsReachTheListenerAndAreBounded) {
  std::vector<Event> heard;
  store_->SetEventListener(
      [&](const std::vector<Event>& es) { heard.insert(heard.end(), es.begin(), es.end()); });
  for (int i = 0; i < 120; ++i) ASSERT_TRUE(store_->AppendEvents({Ev("e" + std::to_string(i))}));
  ASSERT_EQ(heard.size(), 120u);
  EXPECT_GT(heard.back().id, heard.front().id);
  auto kept = store_->ListEvents(0, 1000);
  EXPECT_EQ(kept.size(), 50u);  // retention_count
  EXPECT_EQ(kept.back().kind, "e119");
  auto after = store_->ListEvents(heard[117].id, 10);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].kind, "e118");
}

TEST_P(StoreConformance, FailedWritesPublishNothing) {
  int heard = 0;
  store_->SetEventListener([&](const std::vector<Event>&) { ++heard; });
  EXPECT_FALSE(store_->RemoveDevice("nosuch", Ev("x")));
  EXPECT_EQ(heard, 0);
  EXPECT_TRUE(store_->ListEvents(0, 10).empty());
}

TEST_P(StoreConformance, InstanceIdAndStateSurviveReopening) {
  if (!GetParam().on_disk) GTEST_SKIP() << "an in-memory database does not outlive its connection";
  const std::string id = store_->InstanceId();
  EXPECT_EQ(id.size(), 8u);
  ASSERT_TRUE(
      store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5070}, {10000, 10099}), Ev("a")));
  Open();
  EXPECT_EQ(store_->InstanceId(), id);
  EXPECT_EQ(store_->SchemaVersion(), 3);
  EXPECT_EQ(Mappings().size(), 122u);
}

TEST_P(StoreConformance, RenewalsDoNotGrowTheDatabase) {
  if (!GetParam().on_disk) GTEST_SKIP() << "file size is only meaningful on disk";
  ASSERT_TRUE(
      store_->AddDevice(MakeDevice("ata1", "192.168.1.20", {5060, 5070}, {10000, 10099}), Ev("a")));
  auto ms = Mappings();
  auto renew_all = [&](int round) {
    for (auto& m : ms) {
      m.state = MappingState::kActive;
      m.protocol = GatewayProtocol::kUpnpIgd;
      m.granted_at = TimePoint(Seconds(1700000000 + round * 1800));
      m.expires_at = m.granted_at + Seconds(3600);
      m.renew_at = m.granted_at + Seconds(1800);
    }
    ASSERT_TRUE(store_->SaveMappings(ms, {}));
  };
  renew_all(0);
  Open();  // checkpoints the WAL into the main file
  const auto size = std::filesystem::file_size(dir_ / "natpilot.db");
  for (int round = 1; round <= 200; ++round) renew_all(round);
  Open();
  EXPECT_EQ(std::filesystem::file_size(dir_ / "natpilot.db"), size);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance,
                         ::testing::Values(Backend{"memory", false}, Backend{"file", true}),
                         [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace natpilot
