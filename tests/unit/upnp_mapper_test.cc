// UpnpMapper against a scripted IGD on loopback: the quirks of routers that miniupnpd never shows.
#include "portmap/upnp_mapper.h"

#include <gtest/gtest.h>

#include <memory>

#include "core/text.h"
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
  return MapRequest{Transport::kUdp, "192.168.1.20",    port, port,
                    Seconds(3600),   "natpilot t ata1", ""};
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

// Any LAN host writes the description of its own entry (AddPortMapping), and a router writes the
// internal client: what the table says is made safe where it enters, so a conflict message, an
// event or the status page never carries ESC sequences, newlines or invalid UTF-8.
TEST(UpnpMapper, TextFromTheGatewaysTableIsMadeSafeWhereItEnters) {
  FakeIgd igd;
  const std::string hostile =
      "evil\x1b[2J\x1b]0;owned\x07\n[transport-udp]\xff\xfe\xc0\xaf\xe2\x80\xae";
  igd.answers["GetSpecificPortMappingEntry"] =
      "<NewInternalPort>5060</NewInternalPort><NewInternalClient>192.168.1.66</NewInternalClient>"
      "<NewEnabled>1</NewEnabled><NewPortMappingDescription>" +
      hostile + "</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration>";
  igd.answers["GetGenericPortMappingEntry"] =
      "<NewRemoteHost></NewRemoteHost><NewExternalPort>5060</NewExternalPort><NewProtocol>UDP</"
      "NewProtocol>"
      "<NewInternalPort>5060</NewInternalPort><NewInternalClient>192.168.1.66\r\nX</"
      "NewInternalClient>"
      "<NewEnabled>1</NewEnabled><NewPortMappingDescription>" +
      hostile + "</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration>";
  auto mapper = ReadyMapper(igd);
  auto entry = mapper->GetEntry(Transport::kUdp, 5060);
  ASSERT_TRUE(entry && entry->has_value());
  EXPECT_EQ((*entry)->internal_address, "192.168.1.66");
  EXPECT_EQ(UnsafeTextReason((*entry)->description), "") << (*entry)->description;
  EXPECT_EQ((*entry)->description.find('\x1b'), std::string::npos);
  EXPECT_EQ((*entry)->description.rfind("evil", 0), 0u);
  // The listing: the same, and an internal client that is not an address stays no address.
  igd.errors["GetGenericPortMappingEntry"] = {0, 713};  // one entry, then the end of the table
  auto list = mapper->ListEntries();
  ASSERT_TRUE(list);
  ASSERT_FALSE(list->empty());
  for (const GatewayEntry& e : *list) {
    EXPECT_EQ(UnsafeTextReason(e.description), "");
    EXPECT_EQ(UnsafeTextReason(e.internal_address), "");
    EXPECT_NE(e.internal_address, "192.168.1.66");
  }
}

}  // namespace
}  // namespace natpilot
