#include "app/registry.h"

#include <gtest/gtest.h>

#include "app/tokens.h"
#include "core/validate.h"
#include "store/sqlite_store.h"

namespace natpilot {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest()
      : store_(StoreOptions{":memory:", 1000, Seconds(86400)}),
        registry_(
            store_, Policy{}, PortPlan{}, [] { return TimePoint(Seconds(1700000000)); },
            [this] { ++wakes_; }) {}
  SqliteStore store_;
  Registry registry_;
  int wakes_ = 0;
};

TEST_F(RegistryTest, RegisterAppliesDefaultsRecordsTheCallerAndWakesTheReconciler) {
  DeviceInput in;
  in.name = "ata1";
  in.address = "192.168.1.20";
  in.kind = DeviceKind::kAta;
  auto r = registry_.Register(in, "admin via unix socket");
  ASSERT_TRUE(r) << r.error().message;
  const Device* d = &r->device;
  EXPECT_EQ(d->plan, PortPlan{});
  EXPECT_EQ(d->mappings_total, 122u);
  // The token is returned once; only its hash is kept, and it finds the device.
  EXPECT_EQ(r->token.rfind("npd_", 0), 0u);
  EXPECT_EQ(r->token.size(), 4u + 64u);
  EXPECT_EQ(store_.GetDevice("ata1")->token_hash, HashToken(r->token));
  EXPECT_NE(store_.GetDevice("ata1")->token_hash, r->token);
  EXPECT_EQ(store_.FindDeviceByTokenHash(HashToken(r->token))->name, "ata1");
  EXPECT_EQ(wakes_, 1);
  auto events = store_.ListEvents(0, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "device.registered");
  EXPECT_EQ(events[0].caller, "admin via unix socket");
  EXPECT_EQ(events[0].device, "ata1");
}

TEST_F(RegistryTest, InvalidRequestsChangeNothingAndDoNotWake) {
  DeviceInput in;
  in.name = "ata1";
  EXPECT_NE(registry_.Register(in, "t").error().message.find("address is required"),
            std::string::npos);
  in.address = "300.1.1.1";
  EXPECT_FALSE(registry_.Register(in, "t"));
  in.address = "192.168.1.20";
  in.rtp = PortRange{500, 600};
  auto refused = registry_.Register(in, "t");
  EXPECT_EQ(refused.error().code, make_error_code(Errc::kPermissionDenied));
  EXPECT_NE(refused.error().message.find("policy.internal_ports"), std::string::npos)
      << refused.error().message;
  in.rtp = PortRange{600, 500};
  EXPECT_EQ(registry_.Register(in, "t").error().code, make_error_code(Errc::kInvalidArgument));
  in.rtp.reset();
  in.description = std::string("line\nbreak");
  EXPECT_EQ(registry_.Register(in, "t").error().code, make_error_code(Errc::kInvalidArgument));
  in.description = std::string(201, 'x');
  EXPECT_EQ(registry_.Register(in, "t").error().code, make_error_code(Errc::kInvalidArgument));
  in.description = std::string("\xc3\x28");  // broken UTF-8
  EXPECT_EQ(registry_.Register(in, "t").error().code, make_error_code(Errc::kInvalidArgument));
  in.description.reset();
  in.sip_transports = std::vector<Transport>{};
  EXPECT_FALSE(registry_.Register(in, "t"));
  EXPECT_TRUE(store_.ListDevices().empty());
  EXPECT_TRUE(store_.ListEvents(0, 10).empty());
  EXPECT_EQ(wakes_, 0);
}

TEST_F(RegistryTest, UpdateKeepsWhatIsNotGiven) {
  DeviceInput in;
  in.name = "pbx1";
  in.address = "192.168.1.2";
  in.kind = DeviceKind::kPbx;
  ASSERT_TRUE(registry_.Register(in, "t"));
  DeviceInput up;
  up.name = "pbx1";
  up.rtp = PortRange{16384, 16393};
  up.sip_transports = std::vector<Transport>{Transport::kUdp};
  auto d = registry_.Update(up, "t");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->address, "192.168.1.2");
  EXPECT_EQ(d->kind, DeviceKind::kPbx);
  EXPECT_EQ(d->plan.rtp, (PortRange{16384, 16393}));
  EXPECT_FALSE(d->plan.sip_tcp);
  EXPECT_EQ(d->mappings_total, 11u + 10u);
  up.name = "nosuch";
  EXPECT_EQ(registry_.Update(up, "t").error().code, make_error_code(Errc::kNotFound));
}

TEST_F(RegistryTest, DescriptionsAreStoredVerbatimWhateverTheyContain) {
  DeviceInput in;
  in.name = "ata1";
  in.address = "192.168.1.20";
  in.description = std::string("Robert'); DROP TABLE devices; -- \"hall\" ATA — 2nd floor");
  auto r = registry_.Register(in, "t");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(store_.GetDevice("ata1")->description, *in.description);
  EXPECT_EQ(store_.ListDevices().size(), 1u);
}

TEST_F(RegistryTest, ResetTokenReplacesTheOldOne) {
  DeviceInput in;
  in.name = "ata1";
  in.address = "192.168.1.20";
  auto r = registry_.Register(in, "t");
  ASSERT_TRUE(r);
  auto fresh = registry_.ResetToken("ata1", "admin via unix socket");
  ASSERT_TRUE(fresh);
  EXPECT_NE(*fresh, r->token);
  EXPECT_FALSE(store_.FindDeviceByTokenHash(HashToken(r->token)));
  EXPECT_EQ(store_.FindDeviceByTokenHash(HashToken(*fresh))->name, "ata1");
  EXPECT_EQ(registry_.ResetToken("nosuch", "t").error().code, make_error_code(Errc::kNotFound));
  EXPECT_EQ(store_.ListEvents(0, 10).back().kind, "device.token-reset");
}

TEST(RegistryPolicy, MaxDevicesAndDeviceNetworksNameTheRule) {
  SqliteStore store(StoreOptions{":memory:", 1000, Seconds(86400)});
  Policy policy;
  policy.max_devices = 1;
  Registry registry(
      store, policy, PortPlan{}, [] { return TimePoint(Seconds(1700000000)); }, {},
      [] { return std::vector<Subnet>{*ParseSubnet("192.168.1.0/24", "t")}; });
  DeviceInput in;
  in.name = "ata1";
  in.address = "10.0.0.5";
  auto outside = registry.Register(in, "t");
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, make_error_code(Errc::kPermissionDenied));
  EXPECT_NE(outside.error().message.find("policy.device_networks"), std::string::npos);
  EXPECT_NE(outside.error().message.find("192.168.1.0/24"), std::string::npos)
      << outside.error().message;
  in.address = "192.168.1.20";
  ASSERT_TRUE(registry.Register(in, "t"));
  in.name = "ata2";
  in.address = "192.168.1.21";
  in.sip = PortRange{5080, 5090};
  in.rtp = PortRange{12000, 12099};
  auto full = registry.Register(in, "t");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, make_error_code(Errc::kPermissionDenied));
  EXPECT_NE(full.error().message.find("policy.max_devices"), std::string::npos);
  EXPECT_EQ(store.ListDevices().size(), 1u);
}

TEST(RegistryPolicy, PortsPerDeviceAndExternalRangeNameTheRule) {
  SqliteStore store(StoreOptions{":memory:", 1000, Seconds(86400)});
  Policy policy;
  policy.max_ports_per_device = 50;
  policy.external_ports = PortRange{5000, 20000};
  Registry registry(store, policy, PortPlan{}, [] { return TimePoint(Seconds(1700000000)); }, {});
  DeviceInput in;
  in.name = "pbx";
  in.address = "192.168.1.2";
  auto many = registry.Register(in, "t");  // 11*2 + 100 = 122 ports
  ASSERT_FALSE(many);
  EXPECT_NE(many.error().message.find("policy.max_ports_per_device allows at most 50"),
            std::string::npos)
      << many.error().message;
  in.rtp = PortRange{30000, 30009};
  auto ext = registry.Register(in, "t");
  ASSERT_FALSE(ext);
  EXPECT_NE(ext.error().message.find("policy.external_ports"), std::string::npos)
      << ext.error().message;
  in.rtp = PortRange{10000, 10009};
  EXPECT_TRUE(registry.Register(in, "t"));
}

}  // namespace
}  // namespace natpilot
