#include "mapping/reconciler.h"

#include <gtest/gtest.h>

#include <thread>

#include "fake_gateway.h"
#include "store/sqlite_store.h"

namespace natpilot {
namespace {

using testing::FakeGateway;

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() : store_(StoreOptions{":memory:", 1000, Seconds(86400)}) {
    options_.lease_lifetime = Seconds(3600);
    options_.jitter_fraction = 0.0;            // deterministic renewal times
    options_.probe_interval = Seconds(86400);  // keep re-probing out of the timing checks
    options_.verify_interval =
        Seconds(86400);  // and the periodic check too, unless a test wants it
    reconciler_ = std::make_unique<Reconciler>(
        store_, gateway_, options_, [this] { return now_; }, [] { return 0.0; });
  }
  void AddDevice(const std::string& name, const std::string& address, PortRange sip,
                 PortRange rtp) {
    Device d;
    d.name = name;
    d.address = address;
    d.plan.sip = sip;
    d.plan.rtp = rtp;
    ASSERT_TRUE(store_.AddDevice(d, Event{0, now_, "device.registered", name, "test", ""}));
  }
  std::vector<Mapping> Mappings() { return *store_.ListMappings(""); }
  int Count(MappingState s) {
    int n = 0;
    for (const auto& m : Mappings()) n += m.state == s;
    return n;
  }
  // Passes until every protocol's probe has finished (they run on threads of their own).
  static void RunUntilProbed(Reconciler& r) {
    r.RunOnce();
    for (int i = 0; i < 5000; ++i) {
      bool pending = false;
      for (const auto& p : r.Gateway().protocols) pending = pending || !p.done;
      if (!pending) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    r.RunOnce();
  }
  bool HasEvent(const std::string& kind) {
    for (const auto& e : store_.ListEvents(0, 1000)) {
      if (e.kind == kind) return true;
    }
    return false;
  }

  TimePoint now_{Seconds(1700000000)};
  SqliteStore store_;
  FakeGateway gateway_;
  ReconcilerOptions options_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerTest, MapsAPlanAndSchedulesRenewalAtHalfTheLifetime) {
  AddDevice("ata1", "192.168.1.20", {5060, 5061}, {10000, 10003});
  const TimePoint next = reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 8);
  EXPECT_EQ(Count(MappingState::kActive), 8);
  for (const auto& m : Mappings()) {
    EXPECT_EQ(m.protocol, GatewayProtocol::kUpnpIgd);
    EXPECT_EQ(m.external_address, "198.51.100.7");
    EXPECT_EQ(m.granted_at, now_);
    EXPECT_EQ(m.expires_at, now_ + Seconds(3600));
    EXPECT_EQ(m.renew_at, now_ + Seconds(1800));
  }
  EXPECT_EQ(next, now_ + Seconds(1800));
  const auto& entry = gateway_.table.at({Transport::kUdp, 5060});
  EXPECT_EQ(entry.description, "natpilot " + store_.InstanceId() + " ata1");
  EXPECT_TRUE(HasEvent("mapping.active"));
}

TEST_F(ReconcilerTest, RenewsOnlyWhenDueAndMovesTheExpiry) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 3);
  now_ += Seconds(1799);
  reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 3) << "renewed before it was due";
  now_ += Seconds(1);
  const TimePoint next = reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 6);
  for (const auto& m : Mappings()) EXPECT_EQ(m.expires_at, now_ + Seconds(3600));
  EXPECT_EQ(next, now_ + Seconds(1800));
}

TEST_F(ReconcilerTest, JitterRenewsEarlierButNeverLater) {
  options_.jitter_fraction = 0.1;
  Reconciler r(
      store_, gateway_, options_, [this] { return now_; }, [] { return 0.999; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  r.RunOnce();
  for (const auto& m : Mappings()) {
    EXPECT_LT(m.renew_at, now_ + Seconds(1800));
    EXPECT_GE(m.renew_at, now_ + Seconds(1440));
  }
}

TEST_F(ReconcilerTest, AFailedRenewalKeepsTheLeaseAndBacksOff) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  gateway_.refuse_with = 501;
  now_ += Seconds(1800);
  TimePoint next = reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kRenewing), 3);
  EXPECT_EQ(next, now_ + Seconds(5));
  now_ += Seconds(5);
  next = reconciler_->RunOnce();
  EXPECT_EQ(next, now_ + Seconds(10)) << "backoff doubles";
  // Past the expiry the lease is gone: the mapping is failed, still retried.
  now_ += Seconds(3600);
  reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kFailed), 3);
  for (const auto& m : Mappings()) EXPECT_NE(m.detail.find("refused"), std::string::npos);
  EXPECT_TRUE(HasEvent("mapping.failed"));
  gateway_.refuse_with.reset();
  now_ += Seconds(600);
  reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kActive), 3);
}

TEST_F(ReconcilerTest, BackoffIsCapped) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  gateway_.refuse_with = 501;
  TimePoint next{};
  for (int i = 0; i < 20; ++i) {
    next = reconciler_->RunOnce();
    now_ = next;
  }
  next = reconciler_->RunOnce();
  EXPECT_LE(next - now_, options_.retry_max);
  EXPECT_EQ(Count(MappingState::kFailed), 3);
}

TEST_F(ReconcilerTest, NoGatewayMarksMappingsUnmappedAndRetriesWithBackoff) {
  gateway_.reachable = false;
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  TimePoint next = reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kUnmapped), 3);
  EXPECT_EQ(next, now_ + Seconds(5));
  now_ = next;
  next = reconciler_->RunOnce();
  EXPECT_EQ(next, now_ + Seconds(10));
  EXPECT_EQ(gateway_.probes, 2);
  EXPECT_TRUE(HasEvent("gateway.not-found"));
  gateway_.reachable = true;
  now_ = next;
  reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kActive), 3);
  EXPECT_EQ(reconciler_->Gateway().info.external_address, "198.51.100.7");
}

TEST_F(ReconcilerTest, AGatewayThatStopsAnsweringLeavesNothingActive) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  ASSERT_EQ(Count(MappingState::kActive), 3);
  gateway_.reachable = false;
  now_ += Seconds(1800);
  reconciler_->RunOnce();  // the first renewal fails and the pass stops: no hammering
  EXPECT_EQ(gateway_.probes, 1);
  reconciler_->RunOnce();  // the probe finds no gateway: nobody can vouch for the leases
  EXPECT_EQ(Count(MappingState::kUnmapped), 3);
  for (const auto& m : Mappings()) EXPECT_EQ(m.protocol, GatewayProtocol::kNone);
  EXPECT_TRUE(HasEvent("mapping.unconfirmed"));
}

TEST_F(ReconcilerTest, AnUnreadableGatewayTableIsRetriedWithBackoffNotInALoop) {
  gateway_.list_fails = true;
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  TimePoint next = reconciler_->RunOnce();
  EXPECT_EQ(gateway_.lists, 1);
  EXPECT_EQ(Count(MappingState::kActive), 3) << "mapping goes on without the table";
  EXPECT_EQ(next, now_ + Seconds(5));
  now_ = next;
  next = reconciler_->RunOnce();
  EXPECT_EQ(gateway_.lists, 2);
  EXPECT_EQ(next, now_ + Seconds(10));
  gateway_.list_fails = false;
  now_ = next;
  next = reconciler_->RunOnce();
  EXPECT_EQ(gateway_.lists, 3);
  EXPECT_EQ(next, now_ + Seconds(1800)) << "once read, the table is not read again";
}

TEST_F(ReconcilerTest, AThirdPartyRefusalFallsBackToStaticRules) {
  gateway_.refuse_with = 718;  // miniupnpd in secure mode: not the asking host's address
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  const TimePoint next = reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kStaticRule), 3);
  for (const auto& m : Mappings()) {
    EXPECT_NE(m.detail.find("third-party mapping refused"), std::string::npos) << m.detail;
    EXPECT_EQ(m.protocol, GatewayProtocol::kNone);
  }
  EXPECT_TRUE(HasEvent("mapping.static-rule"));
  EXPECT_EQ(next, now_ + options_.retry_max) << "a refusal is asked again only now and then";
  gateway_.refuse_with = 606;
  now_ = next;
  reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kStaticRule), 3);
}

TEST_F(ReconcilerTest, AFullGatewayTableFallsBackToStaticRules) {
  gateway_.refuse_with = 728;  // NoPortMapsAvailable
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kStaticRule), 3);
  for (const auto& m : Mappings()) EXPECT_NE(m.detail.find("table is full"), std::string::npos);
}

TEST_F(ReconcilerTest, AConflictWithAnotherHostIsFailedNotStatic) {
  gateway_.table[{Transport::kUdp, 5060}] =
      GatewayEntry{Transport::kUdp, 5060, "192.168.1.99", 5060, "someone's phone", Seconds(0)};
  gateway_.refuse_with = 718;
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  for (const auto& m : Mappings()) {
    if (m.transport == Transport::kUdp && m.internal_port == 5060) {
      EXPECT_EQ(m.state, MappingState::kFailed);
      EXPECT_NE(m.detail.find("held on the gateway by 192.168.1.99:5060"), std::string::npos)
          << m.detail;
    } else {
      EXPECT_EQ(m.state, MappingState::kStaticRule);
    }
  }
}

TEST_F(ReconcilerTest, ATakenRtpPortMovesTheWholeRtpBlockToAFreeOne) {
  // Another phone holds 10002/udp on the gateway; the gateway answers 718 for it.
  gateway_.table[{Transport::kUdp, 10002}] =
      GatewayEntry{Transport::kUdp, 10002, "192.168.1.99", 10002, "someone's phone", Seconds(0)};
  gateway_.conflict_on_taken = true;
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10003});
  TimePoint next = reconciler_->RunOnce();
  EXPECT_EQ(next, now_) << "the plan changed: run again at once";
  auto device = *store_.GetDevice("ata1");
  EXPECT_EQ(device.plan.rtp, (PortRange{10004, 10007}));
  EXPECT_TRUE(HasEvent("device.rtp-moved"));
  reconciler_->RunOnce();
  reconciler_->RunOnce();
  EXPECT_EQ(Count(MappingState::kActive), 6);
  for (uint16_t p = 10000; p <= 10001; ++p) {
    EXPECT_FALSE(gateway_.table.count({Transport::kUdp, p}))
        << p << " of the old block was released";
  }
  EXPECT_EQ(gateway_.table.at({Transport::kUdp, 10002}).internal_address, "192.168.1.99");
  for (uint16_t p = 10004; p <= 10007; ++p) EXPECT_TRUE(gateway_.table.count({Transport::kUdp, p}));
}

TEST_F(ReconcilerTest, ForcedStaticDevicesNeverAskTheGateway) {
  options_.force_static_devices = {"pbx1"};
  Reconciler r(
      store_, gateway_, options_, [this] { return now_; }, [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  AddDevice("pbx1", "192.168.1.2", {5080, 5080}, {12000, 12000});
  r.RunOnce();
  EXPECT_EQ(gateway_.maps, 3);
  for (const auto& m : Mappings()) {
    EXPECT_EQ(m.state, m.device == "pbx1" ? MappingState::kStaticRule : MappingState::kActive);
    if (m.device == "pbx1") {
      EXPECT_EQ(m.detail, "static rules forced by config");
    }
  }
  now_ += Seconds(1800);
  r.RunOnce();
  EXPECT_EQ(gateway_.maps, 6) << "only ata1 renewed";
}

TEST_F(ReconcilerTest, TheAfterPassHookRunsEveryPass) {
  int passes = 0;
  reconciler_->SetAfterPass([&] { ++passes; });
  reconciler_->RunOnce();
  gateway_.reachable = false;
  reconciler_->RequestProbe();
  reconciler_->RunOnce();
  EXPECT_EQ(passes, 2);
}

TEST_F(ReconcilerTest, EachMappingGetsAProtocolThatCanServeItsAddress) {
  FakeGateway natpmp;  // preferred, but maps only to natpilotd's own host
  natpmp.kind = GatewayProtocol::kNatPmp;
  natpmp.third_party = false;
  natpmp.local = "192.168.1.2";
  Reconciler r(
      store_, std::vector<PortMapper*>{&natpmp, &gateway_}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("pbx1", "192.168.1.2", {5080, 5080}, {12000, 12000});
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  RunUntilProbed(r);
  for (const auto& m : Mappings()) {
    EXPECT_EQ(m.state, MappingState::kActive);
    EXPECT_EQ(m.protocol,
              m.device == "pbx1" ? GatewayProtocol::kNatPmp : GatewayProtocol::kUpnpIgd);
  }
  EXPECT_EQ(natpmp.maps, 3);
  EXPECT_EQ(gateway_.maps, 3);
}

TEST_F(ReconcilerTest, ARefusalIsTriedOnTheNextProtocolBeforeStaticRules) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  pcp.refuse_with = 718;  // stands in for a third-party refusal of the preferred protocol
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp, &gateway_}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  RunUntilProbed(r);
  now_ += Seconds(1);  // a refusal while a probe was still running is asked again a second later
  r.RunOnce();
  EXPECT_EQ(Count(MappingState::kActive), 3);
  for (const auto& m : Mappings()) EXPECT_EQ(m.protocol, GatewayProtocol::kUpnpIgd);
}

TEST_F(ReconcilerTest, AGatewayThatLostItsStateGetsEveryMappingBack) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  r.RunOnce();
  EXPECT_EQ(pcp.maps, 3);
  pcp.table.clear();      // the router rebooted
  pcp.state_lost = true;  // and its epoch said so
  now_ += Seconds(10);
  r.RunOnce();
  EXPECT_EQ(pcp.maps, 6);
  EXPECT_EQ(pcp.table.size(), 3u);
  EXPECT_TRUE(HasEvent("gateway.state-lost"));
}

TEST_F(ReconcilerTest, ThePeriodicCheckRestoresEntriesTheGatewayForgot) {
  options_.verify_interval = Seconds(60);
  Reconciler r(
      store_, gateway_, options_, [this] { return now_; }, [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  EXPECT_EQ(r.RunOnce(), now_ + Seconds(60)) << "the next check is the next thing due";
  EXPECT_EQ(gateway_.maps, 3);
  gateway_.table.clear();  // a reboot, or miniupnpd's idle purge
  now_ += Seconds(60);
  r.RunOnce();
  EXPECT_EQ(gateway_.table.size(), 3u);
  EXPECT_EQ(gateway_.maps, 6);
  EXPECT_TRUE(HasEvent("gateway.entries-missing"));
  now_ += Seconds(60);
  r.RunOnce();
  EXPECT_EQ(gateway_.maps, 6) << "nothing missing: nothing added";
}

TEST_F(ReconcilerTest, ANewRouterGetsEveryMappingAndTheOldLeasesAreForgotten) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  gateway_.address = "192.168.1.1";
  reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 3);
  FakeGateway& new_router = gateway_;  // the same object answers for another router now
  new_router.table.clear();
  new_router.address = "192.168.1.254";
  reconciler_->RequestProbe();
  reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 6);
  EXPECT_EQ(Count(MappingState::kActive), 3);
  EXPECT_TRUE(HasEvent("gateway.changed"));
}

TEST_F(ReconcilerTest, StartUpAdoptsLiveEntriesReAddsLostOnesAndDeletesTaggedOrphans) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10001});
  const std::string tag = "natpilot " + store_.InstanceId() + " ";
  // As left by a natpilotd killed with -9: three of four entries live, one lost, one orphan of a
  // removed device, and an entry of another program.
  auto entry = [&](Transport t, uint16_t p, const std::string& client, const std::string& desc) {
    gateway_.table[{t, p}] = GatewayEntry{t, p, client, p, desc, Seconds(3000)};
  };
  entry(Transport::kUdp, 5060, "192.168.1.20", tag + "ata1");
  entry(Transport::kTcp, 5060, "192.168.1.20", tag + "ata1");
  entry(Transport::kUdp, 10000, "192.168.1.20", tag + "ata1");
  entry(Transport::kUdp, 7000, "192.168.1.30", tag + "gone");
  entry(Transport::kUdp, 7001, "192.168.1.31", "someone else");
  entry(Transport::kUdp, 7002, "192.168.1.32", "natpilot 00000000 other-instance");

  reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 1) << "only the lost entry 10001/udp is added again";
  EXPECT_EQ(Count(MappingState::kActive), 4);
  EXPECT_FALSE(gateway_.table.count({Transport::kUdp, 7000})) << "tagged orphan deleted";
  EXPECT_TRUE(gateway_.table.count({Transport::kUdp, 7001})) << "foreign entry untouched";
  EXPECT_TRUE(gateway_.table.count({Transport::kUdp, 7002}))
      << "another instance's entry untouched";
  for (const auto& m : Mappings()) {
    if (m.internal_port == 10001) continue;
    // Adopted with the time the gateway says is left, renewed when half a lifetime is left.
    EXPECT_EQ(m.expires_at, now_ + Seconds(3000));
    EXPECT_EQ(m.renew_at, now_ + Seconds(1200));
  }
  EXPECT_TRUE(HasEvent("mapping.adopted"));
}

TEST_F(ReconcilerTest, AnAdoptedLeaseWithLessThanHalfItsLifetimeLeftIsRenewedAtOnce) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  const std::string tag = "natpilot " + store_.InstanceId() + " ata1";
  for (auto [t, p] :
       {std::pair{Transport::kUdp, uint16_t{5060}}, std::pair{Transport::kTcp, uint16_t{5060}},
        std::pair{Transport::kUdp, uint16_t{10000}}}) {
    gateway_.table[{t, p}] = GatewayEntry{t, p, "192.168.1.20", p, tag, Seconds(600)};
  }
  reconciler_->RunOnce();
  EXPECT_EQ(gateway_.maps, 3);
  for (const auto& m : Mappings()) EXPECT_EQ(m.expires_at, now_ + Seconds(3600));
}

TEST_F(ReconcilerTest, ReleasesSkipEntriesThatNowBelongToAnotherAddress) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  ASSERT_TRUE(store_.RemoveDevice("ata1", Event{0, now_, "device.removed", "ata1", "test", ""}));
  // Someone else took 5060/udp on the gateway meanwhile.
  gateway_.table[{Transport::kUdp, 5060}].internal_address = "192.168.1.99";
  reconciler_->RunOnce();
  EXPECT_TRUE(store_.ListReleases().empty());
  EXPECT_TRUE(gateway_.table.count({Transport::kUdp, 5060}));
  EXPECT_FALSE(gateway_.table.count({Transport::kTcp, 5060}));
  EXPECT_FALSE(gateway_.table.count({Transport::kUdp, 10000}));
  EXPECT_TRUE(HasEvent("mapping.released"));
}

TEST_F(ReconcilerTest, AReleaseWaitsForAnUnreachableGateway) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  gateway_.reachable = false;
  ASSERT_TRUE(store_.RemoveDevice("ata1", Event{0, now_, "device.removed", "ata1", "test", ""}));
  reconciler_->RunOnce();
  EXPECT_EQ(store_.ListReleases().size(), 3u);
  gateway_.reachable = true;
  for (int i = 0; i < 5 && !store_.ListReleases().empty(); ++i) {
    now_ += Seconds(60);
    reconciler_->RequestProbe();
    reconciler_->RunOnce();
  }
  EXPECT_TRUE(store_.ListReleases().empty());
  EXPECT_TRUE(gateway_.table.empty());
}

TEST_F(ReconcilerTest, LeasesOfAProtocolThatStopsAnsweringLeaveActiveAtOnce) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp, &gateway_}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  RunUntilProbed(r);
  for (const auto& m : Mappings()) ASSERT_EQ(m.protocol, GatewayProtocol::kPcp);
  pcp.reachable = false;  // a re-probe finds only UPnP; the PCP leases are 59 minutes from due
  now_ += Seconds(60);
  r.RequestProbe();
  RunUntilProbed(r);
  for (const auto& m : Mappings()) {
    EXPECT_EQ(m.state, MappingState::kActive);
    EXPECT_EQ(m.protocol, GatewayProtocol::kUpnpIgd);
  }
  EXPECT_EQ(gateway_.table.size(), 3u);
  EXPECT_TRUE(HasEvent("mapping.lost"));
  now_ += options_.retry_min;
  r.RunOnce();
  // The old entries' deletions were queued, and dropped: UPnP holds the same forwards now.
  EXPECT_TRUE(store_.ListReleases().empty());
  EXPECT_EQ(gateway_.table.size(), 3u);
}

// The chaos test's lossy minute: a PCP probe timed out, UPnP answered, and the gateway refused the
// UPnP requests for the forwards its PCP side still held (miniupnpd: 501). Nothing announces the
// end of the loss; PCP is probed again within seconds, not at probe_interval, and takes its
// mappings back (renewed with their nonces), leaving no release behind.
TEST_F(ReconcilerTest, AProtocolThatStoppedAnsweringIsProbedAgainSoon) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp, &gateway_}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  RunUntilProbed(r);
  ASSERT_EQ(pcp.table.size(), 3u);
  pcp.reachable = false;
  gateway_.refuse_with = 501;
  now_ += Seconds(60);
  r.RequestProbe();
  RunUntilProbed(r);
  for (const auto& m : Mappings()) EXPECT_NE(m.state, MappingState::kActive) << m.detail;
  pcp.reachable = true;  // the loss is over; nobody says so
  const int probes = pcp.probes;
  const TimePoint deadline = now_ + options_.probe_retry_min * 2;
  while (now_ < deadline && pcp.probes == probes) {
    const TimePoint wake = r.RunOnce();
    ASSERT_GT(wake, now_ - Seconds(1));
    now_ = std::min(std::max(wake, now_ + Seconds(1)), deadline);
  }
  ASSERT_GT(pcp.probes, probes) << "PCP was not probed again within "
                                << (options_.probe_retry_min * 2).count() << " s";
  RunUntilProbed(r);
  r.RunOnce();
  for (const auto& m : Mappings()) {
    EXPECT_EQ(m.state, MappingState::kActive) << m.detail;
    EXPECT_EQ(m.protocol, GatewayProtocol::kPcp);
  }
  EXPECT_EQ(pcp.table.size(), 3u);
  EXPECT_TRUE(gateway_.table.empty());
  now_ += options_.retry_min;
  r.RunOnce();
  EXPECT_TRUE(store_.ListReleases().empty());
}

// The chaos test's other lossy minute: only NAT-PMP answered a probe, so a device at another host
// fell back to static rules ("no usable protocol can map to it"). When PCP answers again, that is
// not left to the refusal's long schedule (retry_max): it is mapped with PCP at once.
TEST_F(ReconcilerTest, WhatFellBackWhileAProtocolWasSilentIsMappedWhenItAnswersAgain) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  FakeGateway natpmp;
  natpmp.kind = GatewayProtocol::kNatPmp;
  natpmp.third_party = false;  // maps only to natpilotd's own host
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp, &natpmp}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  RunUntilProbed(r);
  ASSERT_EQ(pcp.table.size(), 3u);
  pcp.reachable = false;
  now_ += Seconds(60);
  r.RequestProbe();
  RunUntilProbed(r);
  ASSERT_EQ(Count(MappingState::kStaticRule), 3)
      << "only NAT-PMP answers, and it cannot map for ata1";
  pcp.reachable = true;
  const TimePoint deadline = now_ + options_.probe_retry_min * 2;
  while (now_ < deadline && Count(MappingState::kActive) < 3) {
    const TimePoint wake = r.RunOnce();
    now_ = std::min(std::max(wake, now_ + Seconds(1)), deadline);
    RunUntilProbed(r);
  }
  EXPECT_EQ(Count(MappingState::kActive), 3) << "still waiting for the refusal's schedule";
  for (const auto& m : Mappings()) EXPECT_EQ(m.protocol, GatewayProtocol::kPcp);
}

TEST_F(ReconcilerTest, AnAnnounceRenewsEveryPcpLeaseAtOnceAndAFloodCostsTwoChecks) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  pcp.address = "192.168.1.1";
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  r.RunOnce();
  ASSERT_EQ(pcp.maps, 3);
  pcp.table.clear();  // restarted so soon after the last answer that the epoch cannot tell
  r.AnnounceFrom("192.168.1.99");  // not the gateway
  r.RunOnce();
  EXPECT_EQ(pcp.maps, 3);
  r.AnnounceFrom("192.168.1.1");
  for (int i = 0; i < 100; ++i) r.AnnounceFrom("192.168.1.1");  // a flood
  r.RunOnce();
  EXPECT_EQ(pcp.maps, 6);
  EXPECT_EQ(pcp.table.size(), 3u);
  EXPECT_EQ(r.Stats().announces_coalesced, 100u);
  // The flood's last one is acted on once more at the end of the interval (it may be the real
  // restart), and that is all.
  EXPECT_EQ(r.RunOnce(), now_ + options_.announce_min_interval);
  EXPECT_EQ(pcp.maps, 6);
  now_ += options_.announce_min_interval;
  r.RunOnce();
  EXPECT_EQ(pcp.maps, 9);
  now_ += options_.announce_min_interval;
  r.RunOnce();
  EXPECT_EQ(pcp.maps, 9);
}

TEST_F(ReconcilerTest, TheReturnOfALostGatewayIsNoticedWithinTheOutageCheck) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  r.RunOnce();
  pcp.reachable = false;
  r.RequestProbe();
  // A long outage: the full probes back off to minutes apart.
  for (int i = 0; i < 40; ++i) now_ = std::max(now_, r.RunOnce());
  EXPECT_GE(pcp.probes, 5);
  const int probes = pcp.probes;
  EXPECT_EQ(Count(MappingState::kUnmapped), 3);
  pcp.reachable = true;
  const TimePoint back = now_;
  while (now_ < back + Seconds(60)) {
    const TimePoint next = r.RunOnce();
    if (Count(MappingState::kActive) == 3) break;
    now_ = std::max(now_, next);
  }
  EXPECT_EQ(Count(MappingState::kActive), 3);
  EXPECT_LE(now_ - back, options_.outage_check_interval);
  EXPECT_EQ(pcp.probes, probes + 1);  // the heartbeat answered, then one probe
}

TEST_F(ReconcilerTest, OneReleaseTheGatewayKeepsRefusingDoesNotHoldUpTheOthers) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10001});
  reconciler_->RunOnce();
  ASSERT_EQ(gateway_.table.size(), 4u);
  gateway_.refuse_unmap = {5060};
  ASSERT_TRUE(store_.RemoveDevice("ata1", Event{0, now_, "device.removed", "ata1", "test", ""}));
  reconciler_->RunOnce();
  EXPECT_EQ(gateway_.table.size(), 2u);  // both 5060 entries refused, both RTP entries deleted
  EXPECT_EQ(store_.ListReleases().size(), 2u);
  gateway_.refuse_unmap.clear();
  now_ += options_.retry_min;
  reconciler_->RunOnce();
  EXPECT_TRUE(gateway_.table.empty());
  EXPECT_TRUE(store_.ListReleases().empty());
}

TEST_F(ReconcilerTest, ADeviceRemovedWhileItsPlanIsMappedLeavesNothingOnTheGateway) {
  AddDevice("big", "192.168.1.20", {5060, 5061}, {10000, 10099});
  int calls = 0;
  gateway_.on_map = [&] {
    if (++calls == 30) {
      ASSERT_TRUE(store_.RemoveDevice("big", Event{0, now_, "device.removed", "big", "test", ""}));
    }
  };
  reconciler_->RunOnce();  // the pass goes on with its copy of the plan
  gateway_.on_map = nullptr;
  EXPECT_FALSE(gateway_.table.empty());
  reconciler_->RunOnce();
  EXPECT_TRUE(gateway_.table.empty()) << gateway_.table.size() << " entries left";
  EXPECT_TRUE(store_.ListReleases().empty());
}

TEST_F(ReconcilerTest, ADeviceMovedWhileItsPlanIsMappedLeavesOnlyTheNewAddress) {
  AddDevice("big", "192.168.1.20", {5060, 5061}, {10000, 10049});
  int calls = 0;
  gateway_.on_map = [&] {
    if (++calls != 20) return;
    Device d = *store_.GetDevice("big");
    d.address = "192.168.1.21";
    ASSERT_TRUE(store_.UpdateDevice(d, Event{0, now_, "device.updated", "big", "test", ""},
                                    Store::Released::kRearm));
  };
  reconciler_->RunOnce();
  gateway_.on_map = nullptr;
  for (int i = 0; i < 3; ++i) reconciler_->RunOnce();
  EXPECT_EQ(gateway_.table.size(), 54u);
  for (const auto& [key, e] : gateway_.table) EXPECT_EQ(e.internal_address, "192.168.1.21");
  EXPECT_EQ(Count(MappingState::kActive), 54);
}

TEST_F(ReconcilerTest, NoPcpRequestLeavesForAMappingRemovedBeforeItsNonceIsKept) {
  FakeGateway pcp;
  pcp.kind = GatewayProtocol::kPcp;
  Reconciler r(
      store_, std::vector<PortMapper*>{&pcp}, options_, [this] { return now_; },
      [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10009});
  pcp.on_map = [&] {
    if (pcp.maps == 0) {
      ASSERT_TRUE(
          store_.RemoveDevice("ata1", Event{0, now_, "device.removed", "ata1", "test", ""}));
    }
  };
  r.RunOnce();
  pcp.on_map = nullptr;
  EXPECT_EQ(pcp.maps, 1);  // the one already under way; none after the removal
  r.RunOnce();
  EXPECT_TRUE(pcp.table.empty());
  EXPECT_TRUE(store_.ListReleases().empty());
}

// A new external address is one fact: told by an announcement from the gateway (checked with the
// gateway, not taken from the datagram) or by the periodic check, it moves every lease's external
// address at once (the NAT views and [[pbx]] files follow), with one event saying how it was
// noticed, and the gateway snapshot keeps it for the doctor.
TEST_F(ReconcilerTest, ANewExternalAddressMovesEveryLeaseAtOnce) {
  gateway_.address = "192.168.1.1";
  options_.verify_interval = Seconds(60);
  Reconciler r(
      store_, gateway_, options_, [this] { return now_; }, [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10001});
  r.RunOnce();
  ASSERT_EQ(gateway_.maps, 4);
  gateway_.external_address = "198.51.100.8";
  r.AnnounceFrom("192.168.1.77", "NAT-PMP announcement");  // another host: ignored
  r.RunOnce();
  EXPECT_EQ(r.Gateway().info.external_address, "198.51.100.7");
  now_ += options_.announce_min_interval;
  r.AnnounceFrom("192.168.1.1", "NAT-PMP announcement");
  r.RunOnce();
  EXPECT_EQ(r.Gateway().info.external_address, "198.51.100.8");
  for (const auto& m : Mappings()) {
    EXPECT_EQ(m.external_address, "198.51.100.8");
    EXPECT_EQ(m.state, MappingState::kActive);
  }
  EXPECT_EQ(gateway_.maps, 4);  // nothing had to be mapped again for it
  const auto change = r.Gateway().last_address_change;
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->from, "198.51.100.7");
  EXPECT_EQ(change->to, "198.51.100.8");
  EXPECT_EQ(change->noticed_by, "the check after a NAT-PMP announcement (upnp-igd)");
  size_t changes = 0;
  for (const Event& e : store_.ListEvents(0, 100)) {
    if (e.kind != "gateway.external-address-changed") continue;
    ++changes;
    EXPECT_EQ(e.message,
              "198.51.100.7 -> 198.51.100.8 (noticed by the check after a NAT-PMP "
              "announcement (upnp-igd); 4 leases updated)");
  }
  EXPECT_EQ(changes, 1u);
  // Without an announcement: the periodic check (verify_interval) reads it. (The announcement
  // also asked for a probe, as no PCP was in use: that pass first.)
  r.RunOnce();
  gateway_.external_address = "198.51.100.9";
  now_ += options_.verify_interval;
  r.RunOnce();  // the probe is not due for hours: the periodic check notices
  EXPECT_EQ(r.Gateway().last_address_change->noticed_by, "the periodic check (upnp-igd)");
  for (const auto& m : Mappings()) EXPECT_EQ(m.external_address, "198.51.100.9");
  // 0.0.0.0 (miniupnpd with no WAN address during a re-dial) is no address, not a change.
  gateway_.external_address = "0.0.0.0";
  now_ += options_.verify_interval;
  r.RunOnce();
  EXPECT_EQ(r.Gateway().info.external_address, "198.51.100.9");
  for (const auto& m : Mappings()) EXPECT_EQ(m.external_address, "198.51.100.9");
  // A router that comes back from an outage with a new address: a change, not just "found".
  gateway_.reachable = false;
  r.RequestProbe();
  r.RunOnce();
  gateway_.reachable = true;
  gateway_.external_address = "198.51.100.10";
  r.RequestProbe();
  r.RunOnce();
  ASSERT_TRUE(r.Gateway().last_address_change.has_value());
  EXPECT_EQ(r.Gateway().last_address_change->from, "198.51.100.9");
  EXPECT_EQ(r.Gateway().last_address_change->to, "198.51.100.10");
  EXPECT_EQ(r.Gateway().info.external_address, "198.51.100.10");
}

// Sources that only hint (a UPnP event's value, the doctor's STUN answer) make the reconciler ask
// the gateway at once; the address counts only when the gateway says it, and the event names the
// hint. Hints share the announcements' rate limit.
TEST_F(ReconcilerTest, AHintOfANewAddressIsCheckedWithTheGatewayAtOnce) {
  gateway_.address = "192.168.1.1";
  options_.verify_interval = Seconds(3600);
  Reconciler r(
      store_, gateway_, options_, [this] { return now_; }, [] { return 0.0; });
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10001});
  r.RunOnce();
  r.RunOnce();
  const int probes = gateway_.probes, maps = gateway_.maps;
  // The STUN server sees another address but the gateway still says the old one: nothing moves.
  r.CheckExternalAddress("the doctor's STUN answer (203.0.113.50)");
  r.RunOnce();
  EXPECT_EQ(r.ExternalAddress(), "198.51.100.7");
  EXPECT_FALSE(r.Gateway().last_address_change.has_value());
  // The gateway has a new address: the next hint finds it, without waiting for the periodic check.
  gateway_.external_address = "198.51.100.8";
  now_ += Seconds(1);
  r.CheckExternalAddress(
      "the doctor's STUN answer (198.51.100.8)");  // within the interval: deferred
  r.RunOnce();
  EXPECT_EQ(r.ExternalAddress(), "198.51.100.7");
  now_ += options_.announce_min_interval;
  r.RunOnce();  // the deferred one, at the interval's end
  EXPECT_EQ(r.ExternalAddress(), "198.51.100.8");
  ASSERT_TRUE(r.Gateway().last_address_change.has_value());
  EXPECT_EQ(r.Gateway().last_address_change->noticed_by,
            "the check after the doctor's STUN answer (198.51.100.8) (upnp-igd)");
  for (const auto& m : Mappings()) EXPECT_EQ(m.external_address, "198.51.100.8");
  // A hint costs the heartbeat only: no probe, no new lease.
  EXPECT_EQ(gateway_.probes, probes);
  EXPECT_EQ(gateway_.maps, maps);
  // An announcement asks for a probe (no PCP in use) once; a hint deferred after it does not
  // inherit that.
  now_ += options_.announce_min_interval;
  r.AnnounceFrom("192.168.1.1", "PCP ANNOUNCE");
  r.RunOnce();
  r.RunOnce();
  const int after_announce = gateway_.probes;
  EXPECT_GT(after_announce, probes);
  now_ += Seconds(1);
  r.CheckExternalAddress("a UPnP event (ExternalIPAddress 198.51.100.8)");
  now_ += options_.announce_min_interval;
  r.RunOnce();
  r.RunOnce();
  EXPECT_EQ(gateway_.probes, after_announce);
}

TEST_F(ReconcilerTest, AnExternalAddressChangeIsAnEvent) {
  AddDevice("ata1", "192.168.1.20", {5060, 5060}, {10000, 10000});
  reconciler_->RunOnce();
  gateway_.external_address = "198.51.100.8";
  reconciler_->RequestProbe();
  reconciler_->RunOnce();
  EXPECT_TRUE(HasEvent("gateway.external-address-changed"));
  EXPECT_EQ(reconciler_->Gateway().info.external_address, "198.51.100.8");
}

}  // namespace
}  // namespace natpilot
