// natpilot's reader of UPnP root descriptions and its URL and text helpers (pure functions).
#include "portmap/upnp_description.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace natpilot::upnp {
namespace {

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(NATPILOT_TEST_DATA_DIR) + "/upnp/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(UpnpDescription, ReadsEveryWanConnectionOfARouterWithTwo) {
  auto d = ParseRootDescription(Fixture("synthetic-igd1-two-wan-connections.xml"));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->device_type, "urn:schemas-upnp-org:device:InternetGatewayDevice:1");
  EXPECT_EQ(d->friendly_name, "Box & Co A");
  EXPECT_EQ(d->manufacturer, "AVM-like");
  EXPECT_EQ(d->model_name, "Two WAN");
  EXPECT_EQ(d->udn, "uuid:0000-two-wan");
  const auto wan = d->WanConnections();
  ASSERT_EQ(wan.size(), 2u);
  EXPECT_EQ(wan[0].service_type, "urn:schemas-upnp-org:service:WANPPPConnection:1");
  EXPECT_EQ(wan[0].control_url, "upnp/control/wanpppconn1");
  EXPECT_EQ(wan[1].service_type, "urn:schemas-upnp-org:service:WANIPConnection:2");
  EXPECT_EQ(wan[1].device_type, "urn:schemas-upnp-org:device:WANConnectionDevice:2");
  EXPECT_EQ(GatewayLabel(d->device_type, wan[1].service_type),
            "UPnP InternetGatewayDevice:1 with WANIPConnection:2")
      << "the IPv6 firewall service does not make it IGD:2";
}

TEST(UpnpDescription, AHostileDescriptionYieldsOnlySafeText) {
  auto d = ParseRootDescription(Fixture("synthetic-hostile.xml"));
  ASSERT_TRUE(d) << d.error().message;
  for (char c : d->friendly_name + d->device_type) EXPECT_TRUE(c >= 0x20 && c < 0x7f);
  EXPECT_LE(d->friendly_name.size(), 64u);
  const auto wan = d->WanConnections();
  ASSERT_EQ(wan.size(), 1u) << "a control URL with a space or a binary byte is left out";
  EXPECT_EQ(wan[0].control_url,
            "http://127.0.0.1:22/ctl");  // parsed; the IGD choice refuses the host
}

TEST(UpnpDescription, NotADescriptionIsAnError) {
  EXPECT_FALSE(ParseRootDescription(""));
  EXPECT_FALSE(ParseRootDescription("<html><body>hello</body></html>"));
  EXPECT_FALSE(ParseRootDescription("<root><device></root>"));
  EXPECT_FALSE(ParseRootDescription("<root><device>"));
  EXPECT_FALSE(ParseRootDescription("<root><!-- unterminated"));
  EXPECT_FALSE(ParseRootDescription(std::string(kMaxDescriptionBytes + 1, ' ')));
  std::string deep = "<root>";
  for (int i = 0; i < 100; ++i) deep += "<a>";
  EXPECT_FALSE(ParseRootDescription(deep));
}

TEST(UpnpDescription, ParsesOnlyPlainHttpUrls) {
  auto u = ParseHttpUrl("http://192.168.1.1:5000/rootDesc.xml");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "192.168.1.1");
  EXPECT_EQ(u->port, 5000);
  EXPECT_EQ(u->path, "/rootDesc.xml");
  EXPECT_EQ(ParseHttpUrl("http://10.0.0.1")->path, "/");
  EXPECT_EQ(ParseHttpUrl("http://[fe80::1]:80/x")->host, "[fe80::1]");
  EXPECT_FALSE(ParseHttpUrl("https://192.168.1.1/"));
  EXPECT_FALSE(ParseHttpUrl("http://user@127.0.0.1/"));
  EXPECT_FALSE(ParseHttpUrl("http://192.168.1.1:99999/"));
  EXPECT_FALSE(ParseHttpUrl("http://192.168.1.1:/"));
  EXPECT_FALSE(ParseHttpUrl("http:///x"));
  EXPECT_FALSE(ParseHttpUrl("http://a b/"));
}

TEST(UpnpDescription, ResolvesControlUrlsAgainstTheBase) {
  const std::string desc = "http://192.168.1.1:5000/igd/rootDesc.xml";
  EXPECT_EQ(ResolveUrl(desc, "/ctl/IPConn"), "http://192.168.1.1:5000/ctl/IPConn");
  EXPECT_EQ(ResolveUrl(desc, "ctl/IPConn"), "http://192.168.1.1:5000/igd/ctl/IPConn");
  EXPECT_EQ(ResolveUrl("http://192.168.1.1:5000", "ctl"), "http://192.168.1.1:5000/ctl");
  EXPECT_EQ(ResolveUrl(desc, "http://10.0.0.9:80/x"), "http://10.0.0.9:80/x");
  EXPECT_EQ(ResolveUrl(desc, "//10.0.0.9/x"), "http://192.168.1.1:5000//10.0.0.9/x")
      << "a scheme-relative path stays on the description's host";
  EXPECT_EQ(ResolveUrl(desc, "file:///etc/passwd"), "");
  EXPECT_EQ(ResolveUrl("ftp://x/", "ctl"), "");
}

TEST(UpnpDescription, LabelsAndTextHelpers) {
  EXPECT_EQ(TypeAndVersion("urn:schemas-upnp-org:device:InternetGatewayDevice:2"),
            "InternetGatewayDevice:2");
  EXPECT_EQ(TypeAndVersion("garbage"), "");
  EXPECT_EQ(GatewayLabel("", "urn:schemas-upnp-org:service:WANIPConnection:1"),
            "UPnP device of unknown type with WANIPConnection:1");
  EXPECT_EQ(Sanitize("a\nb\xff", 10), "a?b?");
  EXPECT_EQ(Sanitize("abcdef", 3), "abc");
  EXPECT_TRUE(IsReservedIpv4("192.168.1.2"));
  EXPECT_TRUE(IsReservedIpv4("100.64.0.1"));
  EXPECT_TRUE(IsReservedIpv4("198.51.100.7"));
  EXPECT_TRUE(IsReservedIpv4("not an address"));
  EXPECT_FALSE(IsReservedIpv4("203.0.114.9"));
  EXPECT_FALSE(IsReservedIpv4("8.8.8.8"));
}

}  // namespace
}  // namespace natpilot::upnp
