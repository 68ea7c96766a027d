// UpnpMapper against a scripted IGD on loopback: the quirks of routers that miniupnpd never shows.
#include "portmap/upnp_mapper.h"

#include <gtest/gtest.h>

#include <memory>

#include "fake_igd.h"

namespace natpilot {
namespace {

using testing::FakeIgd;

// A mapper that has probed `igd` (by its root description URL, as gateway.root_desc_url does).
std::unique_ptr<UpnpMapper> ReadyMapper(FakeIgd& igd) {
  UpnpOptions o;
  o.root_desc_url = igd.url();
  auto mapper = std::make_unique<UpnpMapper>(o);
  const GatewayInfo info = mapper->Probe();
  EXPECT_EQ(info.status, GatewayInfo::Status::kReady) << info.detail;
  return mapper;
}

MapRequest Req(uint16_t port) {
  return MapRequest{Transport::kUdp, "192.168.1.20", port, port, Seconds(3600), "natpilot t ata1", ""};
}

TEST(UpnpMapper, MapsThroughARealHttpExchange) {
  FakeIgd igd;
  UpnpOptions o;
  o.root_desc_url = igd.url();
  UpnpMapper mapper(o);
  const GatewayInfo info = mapper.Probe();
  ASSERT_EQ(info.status, GatewayInfo::Status::kReady) << info.detail;
  EXPECT_EQ(info.external_address, "198.51.100.7");
  auto lease = mapper.Map(Req(5060));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->lifetime, Seconds(3600));
  const auto call = igd.calls().back();
  EXPECT_EQ(call.action, "AddPortMapping");
  EXPECT_EQ(call.args.at("NewInternalClient"), "192.168.1.20");
  EXPECT_EQ(call.args.at("NewExternalPort"), "5060");
  EXPECT_EQ(call.args.at("NewInternalPort"), "5060");
  EXPECT_EQ(call.args.at("NewLeaseDuration"), "3600");
}

TEST(UpnpMapper, OnlyPermanentLeases725IsRetriedWithLeaseZero) {
  FakeIgd igd;
  igd.errors["AddPortMapping"] = {725};
  auto mapper = ReadyMapper(igd);
  auto lease = mapper->Map(Req(5060));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->lifetime, Seconds(0)) << "permanent, renewed by re-adding";
  EXPECT_EQ(igd.calls().back().args.at("NewLeaseDuration"), "0");
}

TEST(UpnpMapper, InvalidArgs402OnALeaseIsRetriedWithLeaseZero) {
  FakeIgd igd;
  igd.errors["AddPortMapping"] = {402};
  auto mapper = ReadyMapper(igd);
  auto lease = mapper->Map(Req(5060));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->lifetime, Seconds(0));
}

TEST(UpnpMapper, ATableFull728IsAnErrorNamedAsSuch) {
  FakeIgd igd;
  igd.errors["AddPortMapping"] = {728};
  auto mapper = ReadyMapper(igd);
  auto lease = mapper->Map(Req(5060));
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().code, MakeUpnpError(728));
  EXPECT_NE(lease.error().message.find("table is full"), std::string::npos);
  int adds = 0;
  for (const auto& call : igd.calls()) adds += call.action == "AddPortMapping";
  EXPECT_EQ(adds, 1) << "one add: no retry";
}

TEST(UpnpMapper, Igd2UsesAddAnyPortMappingAndKeepsThePort) {
  FakeIgd igd(2);
  auto mapper = ReadyMapper(igd);
  auto lease = mapper->Map(Req(5060));
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->external_port, 5060);
  EXPECT_EQ(igd.calls().back().action, "AddAnyPortMapping");
}

TEST(UpnpMapper, Igd2OfferingAnotherPortIsGivenBackAsAConflict) {
  FakeIgd igd(2);
  igd.table["UDP 5060"] = "192.168.1.99";  // another host holds it
  auto mapper = ReadyMapper(igd);
  auto lease = mapper->Map(Req(5060));
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().code, MakeUpnpError(upnp::kConflictInMappingEntry));
  EXPECT_NE(lease.error().message.find("reserved port 5061"), std::string::npos);
  const auto calls = igd.calls();
  EXPECT_EQ(calls.back().action, "DeletePortMapping");
  EXPECT_EQ(calls.back().args.at("NewExternalPort"), "5061");
  EXPECT_EQ(igd.table.count("UDP 5061"), 0u);
  EXPECT_EQ(igd.table.at("UDP 5060"), "192.168.1.99");
}

TEST(UpnpMapper, DeletingWhatIsAlreadyGoneSucceeds) {
  FakeIgd igd;
  igd.errors["DeletePortMapping"] = {714};
  auto mapper = ReadyMapper(igd);
  EXPECT_TRUE(mapper->Unmap(Req(5060)));
}

TEST(UpnpMapper, AGatewayThatStopsAnsweringIsUnreachable) {
  UpnpOptions o;
  std::string url;
  {
    FakeIgd igd;
    o.root_desc_url = igd.url();
    UpnpMapper mapper(o);
    ASSERT_EQ(mapper.Probe().status, GatewayInfo::Status::kReady);
  }
  UpnpMapper mapper(o);  // the same URL, nobody listening any more
  EXPECT_EQ(mapper.Probe().status, GatewayInfo::Status::kNotFound);
  EXPECT_FALSE(mapper.Map(Req(5060)));
}

}  // namespace
}  // namespace natpilot
