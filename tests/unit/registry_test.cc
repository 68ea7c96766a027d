#include "api/registry.h"

#include <gtest/gtest.h>

#include "store/sqlite_store.h"

namespace natpilot {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest()
      : store_(StoreOptions{":memory:", 1000, Seconds(86400)}),
        registry_(store_, Policy{}, PortPlan{}, [] { return TimePoint(Seconds(1700000000)); },
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
  auto d = registry_.Register(in, "admin via unix socket");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->plan, PortPlan{});
  EXPECT_EQ(d->mappings_total, 122u);
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
  EXPECT_NE(registry_.Register(in, "t").error().message.find("address is required"), std::string::npos);
  in.address = "300.1.1.1";
  EXPECT_FALSE(registry_.Register(in, "t"));
  in.address = "192.168.1.20";
  in.rtp = PortRange{500, 600};
  EXPECT_EQ(registry_.Register(in, "t").error().code, make_error_code(Errc::kInvalidArgument));
  in.rtp.reset();
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

}  // namespace
}  // namespace natpilot
