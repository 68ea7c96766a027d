// Which UPnP IGD natpilot uses, against scripted IGDs on loopback addresses (127.0.0.x stands for
// LAN hosts): the gateway's own IGD wins over another host's, SOAP never goes to a host that is not
// the gateway, a router with two WAN connections is used through the connected one, and the label
// names what the device really speaks.
#include <gtest/gtest.h>

#include "fake_igd.h"
#include "portmap/upnp_discovery.h"
#include "portmap/upnp_mapper.h"

namespace natpilot {
namespace {

using testing::FakeIgd;

MapRequest Req(uint16_t port) {
  return MapRequest{Transport::kUdp, "192.168.1.20",    port, port,
                    Seconds(3600),   "natpilot t ata1", ""};
}

upnp::IgdPolicy Policy(const std::string& gateway, bool loopback_is_lan) {
  upnp::IgdPolicy p;
  p.gateway = gateway;
  if (loopback_is_lan) p.lan.push_back(Subnet{0x7f000000, 8});
  return p;
}

TEST(UpnpIgdChoice, ARouterWithTwoWanConnectionsIsUsedThroughTheConnectedOne) {
  FakeIgd igd;
  igd.first_status = "Disconnected";
  igd.more_connections = {{"WANPPPConnection:1", "Connected"}};
  UpnpOptions o;
  o.root_desc_url = igd.url();
  UpnpMapper mapper(o);
  const GatewayInfo info = mapper.Probe();
  ASSERT_EQ(info.status, GatewayInfo::Status::kReady) << info.detail;
  EXPECT_EQ(info.control_url, igd.origin() + "/ctl/Conn1");
  EXPECT_NE(info.detail.find("with WANPPPConnection:1"), std::string::npos) << info.detail;
  ASSERT_TRUE(mapper.Map(Req(5060)));
  EXPECT_EQ(igd.calls().back().path, "/ctl/Conn1");
}

TEST(UpnpIgdChoice, NoConnectedConnectionMeansNotConnected) {
  FakeIgd igd;
  igd.first_status = "Disconnected";
  igd.more_connections = {{"WANIPConnection:1", "Connecting"}};
  UpnpOptions o;
  o.root_desc_url = igd.url();
  UpnpMapper mapper(o);
  const GatewayInfo info = mapper.Probe();
  EXPECT_EQ(info.status, GatewayInfo::Status::kNotConnected) << info.detail;
  EXPECT_NE(info.detail.find("Disconnected"), std::string::npos) << info.detail;
  EXPECT_NE(info.detail.find("Connecting"), std::string::npos) << info.detail;
  EXPECT_TRUE(info.other_igds.empty()) << "the gateway's own IGD is explained in the detail";
  EXPECT_FALSE(mapper.Map(Req(5060)));
}

TEST(UpnpIgdChoice, TheLabelNamesTheDeviceAndServiceVersions) {
  FakeIgd igd(2);  // InternetGatewayDevice:1 with WANIPConnection:2 (a FRITZ!Box-like mix)
  UpnpOptions o;
  o.root_desc_url = igd.url();
  UpnpMapper mapper(o);
  GatewayInfo info = mapper.Probe();
  ASSERT_EQ(info.status, GatewayInfo::Status::kReady) << info.detail;
  EXPECT_EQ(info.detail.rfind("UPnP InternetGatewayDevice:1 with WANIPConnection:2 at ", 0), 0u)
      << info.detail;
  igd.device_type = "urn:schemas-upnp-org:device:InternetGatewayDevice:2";
  igd.version = 1;
  info = mapper.Probe();
  EXPECT_EQ(info.detail.rfind("UPnP InternetGatewayDevice:2 with WANIPConnection:1 at ", 0), 0u)
      << info.detail;
}

TEST(UpnpIgdChoice, TheGatewaysIgdWinsOverAnotherHostClaimingAPublicAddress) {
  FakeIgd other(1, "127.0.0.2");  // another LAN host: a public address, but not our gateway
  other.external_address = "203.0.114.9";
  other.friendly_name = "Upstairs\x01router\xc3\xa9";
  FakeIgd gateway(1, "127.0.0.3");  // the real router, behind another NAT
  gateway.external_address = "192.168.100.7";
  const auto choice = upnp::ChooseIgd({other.url(), gateway.url()}, Policy("127.0.0.3", true));
  ASSERT_TRUE(choice.igd);
  EXPECT_EQ(choice.info.status, GatewayInfo::Status::kReady) << choice.info.detail;
  EXPECT_EQ(choice.info.external_address, "192.168.100.7");
  EXPECT_EQ(choice.info.address, "127.0.0.3");
  EXPECT_NE(choice.info.detail.find("double NAT"), std::string::npos) << choice.info.detail;
  ASSERT_EQ(choice.info.other_igds.size(), 1u);
  const IgdFound& f = choice.info.other_igds[0];
  EXPECT_EQ(f.address, "127.0.0.2");
  EXPECT_TRUE(f.skipped);
  EXPECT_EQ(f.friendly_name, "Upstairs?router??") << "sanitized: printable ASCII only";
  EXPECT_EQ(f.device_type, "InternetGatewayDevice:1");
  EXPECT_NE(f.reason.find("not the gateway"), std::string::npos) << f.reason;
  EXPECT_TRUE(other.calls().empty()) << "no SOAP to another host";
}

TEST(UpnpIgdChoice, NoSoapToAControlUrlOffTheGateway) {
  FakeIgd elsewhere(1, "127.0.0.4");
  FakeIgd gateway(1, "127.0.0.5");
  gateway.control_base = elsewhere.origin();  // its description points control elsewhere
  const auto choice = upnp::ChooseIgd({gateway.url()}, Policy("127.0.0.5", true));
  EXPECT_FALSE(choice.igd);
  EXPECT_NE(choice.info.status, GatewayInfo::Status::kReady);
  EXPECT_NE(choice.info.detail.find("never contacted"), std::string::npos) << choice.info.detail;
  EXPECT_TRUE(elsewhere.calls().empty());
  EXPECT_TRUE(gateway.calls().empty());
}

TEST(UpnpIgdChoice, AnAnswerNamingAHostOffTheLanIsNeverContacted) {
  FakeIgd rogue(1, "127.0.0.6");  // loopback is not on the LAN here
  const auto choice = upnp::ChooseIgd({rogue.url()}, Policy("192.0.2.1", false));
  EXPECT_FALSE(choice.igd);
  EXPECT_EQ(choice.info.status, GatewayInfo::Status::kNotFound);
  EXPECT_EQ(rogue.description_gets, 0) << "not even its description is read";
  ASSERT_EQ(choice.info.other_igds.size(), 1u);
  EXPECT_TRUE(choice.info.other_igds[0].skipped);
  EXPECT_NE(choice.info.detail.find("found on other hosts"), std::string::npos)
      << choice.info.detail;
}

TEST(UpnpIgdChoice, OnlyAnotherHostsIgdIsNotUsedUnlessConfigured) {
  FakeIgd other(1, "127.0.0.7");
  auto policy = Policy("127.0.0.1", true);
  auto choice = upnp::ChooseIgd({other.url()}, policy);
  EXPECT_FALSE(choice.igd);
  EXPECT_TRUE(other.calls().empty());
  policy.configured_url = other.url();  // gateway.root_desc_url names it: followed
  choice = upnp::ChooseIgd({other.url()}, policy);
  ASSERT_TRUE(choice.igd) << choice.info.detail;
  EXPECT_TRUE(choice.info.other_igds.empty());
}

TEST(UpnpIgdChoice, AHostileDescriptionNeverCrashesAndIsNotUsed) {
  FakeIgd gateway(1, "127.0.0.8");
  gateway.root_desc =
      "<root><device><deviceType>urn:x:device:InternetGatewayDevice:1</deviceType>"
      "<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1"
      "</serviceType><controlURL>http://127.0.0.8:1/\x01\xff</controlURL></service>";
  const auto choice = upnp::ChooseIgd({gateway.url()}, Policy("127.0.0.8", true));
  EXPECT_FALSE(choice.igd);
  EXPECT_EQ(choice.info.status, GatewayInfo::Status::kNotFound) << choice.info.detail;
  for (char c : choice.info.detail) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << choice.info.detail;
}

TEST(UpnpIgdChoice, AnOverlongControlUrlIsNotUsed) {
  FakeIgd gateway(1, "127.0.0.9");
  gateway.root_desc =
      "<root><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>"
      "<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1"
      "</serviceType><controlURL>/" +
      std::string(300, 'a') + "</controlURL></service></serviceList></device></root>";
  const auto choice = upnp::ChooseIgd({gateway.url()}, Policy("127.0.0.9", true));
  EXPECT_FALSE(choice.igd);
  EXPECT_NE(choice.info.detail.find("control URL longer than 256 bytes"), std::string::npos)
      << choice.info.detail;
  EXPECT_TRUE(gateway.calls().empty());
}

}  // namespace
}  // namespace natpilot
