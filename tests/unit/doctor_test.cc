#include "api/doctor.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace natpilot {
namespace {

using L = v1::Finding;

DoctorInputs Ready(const std::string& external) {
  DoctorInputs in;
  in.gateway.info.status = GatewayInfo::Status::kReady;
  in.gateway.info.protocol = GatewayProtocol::kPcp;
  in.gateway.info.address = "192.168.1.1";
  in.gateway.info.external_address = external;
  ProtocolReport pcp;
  pcp.protocol = GatewayProtocol::kPcp;
  pcp.done = true;
  pcp.info = in.gateway.info;
  pcp.took = std::chrono::milliseconds(3);
  ProtocolReport upnp;
  upnp.protocol = GatewayProtocol::kUpnpIgd;
  upnp.done = true;
  upnp.info.status = GatewayInfo::Status::kNotFound;
  upnp.took = std::chrono::milliseconds(1000);
  in.gateway.protocols = {pcp, upnp};
  return in;
}

const v1::Finding& Topic(const std::vector<v1::Finding>& fs, const std::string& topic) {
  for (const auto& f : fs) {
    if (f.topic() == topic) return f;
  }
  static v1::Finding none;
  ADD_FAILURE() << "no finding about " << topic;
  return none;
}

// The last external address change: when, from what to what, how it was noticed, and how long the
// [[pbx]] configuration lagged it (or that nothing followed it).
TEST(Doctor, TellsTheLastAddressChangeAndHowLongThePbxLagged) {
  auto in = Ready("8.8.4.4");
  const auto before = Diagnose(in);
  EXPECT_TRUE(std::none_of(before.begin(), before.end(),
                           [](const v1::Finding& f) { return f.topic() == "address-change"; }));
  const TimePoint at = TimePoint(Seconds(1795000000));  // 2026-11-18 11:06:40 UTC
  in.gateway.last_address_change =
      AddressChange{at, "8.8.8.8", "8.8.4.4", "a NAT-PMP announcement"};
  auto f = Topic(Diagnose(in), "address-change");
  EXPECT_EQ(f.level(), L::LEVEL_WARNING);
  EXPECT_EQ(f.text(),
            "the external address changed from 8.8.8.8 to 8.8.4.4 at 2026-11-18 11:06:40 UTC, "
            "noticed by a NAT-PMP announcement; no [[pbx]] file or hook followed it");
  in.pbx_followed_at = at + Seconds(2);
  f = Topic(Diagnose(in), "address-change");
  EXPECT_EQ(f.level(), L::LEVEL_OK);
  EXPECT_NE(f.text().find("the [[pbx]] configuration followed 2 s later"), std::string::npos)
      << f.text();
}

// The UPnP event subscription, when UPnP is in use and events are on.
TEST(Doctor, SaysWhetherUpnpEventsAreSubscribed) {
  auto in = Ready("8.8.4.4");
  in.upnp_events = "subscribed to http://192.168.1.1:5000/evt (granted 1800 s)";
  auto none = Diagnose(in);  // PCP in use: not a topic
  EXPECT_TRUE(std::none_of(none.begin(), none.end(),
                           [](const v1::Finding& f) { return f.topic() == "upnp-events"; }));
  in.gateway.info.protocol = GatewayProtocol::kUpnpIgd;
  auto f = Topic(Diagnose(in), "upnp-events");
  EXPECT_EQ(f.level(), L::LEVEL_OK);
  in.upnp_events =
      "not subscribed to http://192.168.1.1:5000/evt: the IGD answered HTTP 501 (next try in 300 "
      "s)";
  f = Topic(Diagnose(in), "upnp-events");
  EXPECT_EQ(f.level(), L::LEVEL_INFO);
  EXPECT_NE(f.advice().find("gateway.verify_interval_s"), std::string::npos) << f.advice();
}

TEST(Doctor, APublicAddressConfirmedByStunIsFine) {
  auto in = Ready("8.8.4.4");
  in.stun_server = "stun.example:3478";
  in.stun = Result<stun::Mapped>(stun::Mapped{"8.8.4.4", 40000});
  Mapping m;
  m.device = "ata1";
  m.state = MappingState::kActive;
  m.purpose = Purpose::kSip;
  in.mappings = {m};
  const auto fs = Diagnose(in);
  EXPECT_EQ(Topic(fs, "gateway").level(), L::LEVEL_OK);
  EXPECT_NE(Topic(fs, "gateway").text().find("pcp in 3 ms"), std::string::npos)
      << Topic(fs, "gateway").text();
  EXPECT_NE(Topic(fs, "gateway").text().find("no answer: upnp-igd in 1000 ms"), std::string::npos);
  EXPECT_EQ(Topic(fs, "external-address").level(), L::LEVEL_OK);
  EXPECT_EQ(Topic(fs, "stun").level(), L::LEVEL_OK);
  EXPECT_EQ(Topic(fs, "mappings").level(), L::LEVEL_OK);
  EXPECT_EQ(Topic(fs, "sip-alg").level(), L::LEVEL_INFO);
}

TEST(Doctor, NamesDoubleNatCarrierGradeNatAndReservedRanges) {
  auto fs = Diagnose(Ready("192.168.0.10"));
  EXPECT_EQ(Topic(fs, "external-address").level(), L::LEVEL_PROBLEM);
  EXPECT_NE(Topic(fs, "external-address").text().find("double NAT"), std::string::npos);
  EXPECT_NE(Topic(fs, "external-address").text().find("RFC 1918"), std::string::npos);
  fs = Diagnose(Ready("100.64.3.4"));
  EXPECT_NE(Topic(fs, "external-address").text().find("carrier-grade NAT"), std::string::npos);
  EXPECT_FALSE(Topic(fs, "external-address").advice().empty());
  fs = Diagnose(Ready("203.0.113.1"));
  EXPECT_EQ(Topic(fs, "external-address").level(), L::LEVEL_WARNING);
  EXPECT_NE(Topic(fs, "external-address").text().find("documentation (203.0.113.0/24"),
            std::string::npos);
  EXPECT_EQ(ReservedRange("172.31.255.255"), "private (172.16.0.0/12, RFC 1918)");
  EXPECT_EQ(ReservedRange("172.32.0.1"), "");
  EXPECT_EQ(ReservedRange("100.127.255.255"), "carrier-grade NAT (100.64.0.0/10, RFC 6598)");
  EXPECT_EQ(ReservedRange("100.128.0.1"), "");
}

TEST(Doctor, AStunAddressOtherThanTheGatewaysIsAnotherNat) {
  auto in = Ready("8.8.4.4");
  in.stun_server = "stun.example:3478";
  in.stun = Result<stun::Mapped>(stun::Mapped{"9.9.9.9", 1});
  auto fs = Diagnose(in);
  EXPECT_EQ(Topic(fs, "stun").level(), L::LEVEL_PROBLEM);
  EXPECT_NE(Topic(fs, "stun").text().find("sees 9.9.9.9, but the gateway says 8.8.4.4"),
            std::string::npos);
  in.stun =
      Result<stun::Mapped>(tl::unexpected(Error{make_error_code(Errc::kUnavailable), "no answer"}));
  fs = Diagnose(in);
  EXPECT_EQ(Topic(fs, "stun").level(), L::LEVEL_WARNING);
  in.stun_server.clear();
  in.stun.reset();
  EXPECT_EQ(Topic(Diagnose(in), "stun").level(), L::LEVEL_INFO);
}

TEST(Doctor, SaysWhichMappingsAreMissingAndThatNoGatewayAnswered) {
  DoctorInputs in;
  in.gateway.info.status = GatewayInfo::Status::kNotFound;
  Mapping ok, failed, unmapped;
  ok.device = failed.device = "ata1";
  unmapped.device = "pbx";
  ok.state = MappingState::kStaticRule;
  failed.state = MappingState::kFailed;
  unmapped.state = MappingState::kUnmapped;
  in.mappings = {ok, failed, unmapped};
  auto fs = Diagnose(in);
  EXPECT_EQ(Topic(fs, "gateway").level(), L::LEVEL_PROBLEM);
  EXPECT_EQ(Topic(fs, "mappings").level(), L::LEVEL_PROBLEM);
  EXPECT_NE(Topic(fs, "mappings").text().find("2 of 3"), std::string::npos)
      << Topic(fs, "mappings").text();
  EXPECT_NE(Topic(fs, "mappings").text().find("ata1: 1 failed; pbx: 1 unmapped"),
            std::string::npos);
}

TEST(Doctor, APrivateOrSharedRouterAfterTheGatewayIsAnotherNat) {
  auto in = Ready("");  // a gateway that keeps its WAN address to itself
  in.stun_server = "stun.example:3478";
  in.stun = Result<stun::Mapped>(stun::Mapped{"8.8.4.4", 1});
  in.path = Result<std::vector<std::string>>(
      std::vector<std::string>{"192.168.1.1", "100.64.7.1", "8.8.8.1"});
  auto fs = Diagnose(in);
  EXPECT_EQ(Topic(fs, "upstream-nat").level(), L::LEVEL_PROBLEM);
  EXPECT_NE(Topic(fs, "upstream-nat")
                .text()
                .find("router 2 on the way to the internet, 100.64.7.1, is carrier-grade NAT"),
            std::string::npos)
      << Topic(fs, "upstream-nat").text();
  EXPECT_EQ(Topic(fs, "external-address").level(), L::LEVEL_WARNING);
  EXPECT_EQ(Topic(fs, "stun").level(), L::LEVEL_INFO);
  in.path =
      Result<std::vector<std::string>>(std::vector<std::string>{"192.168.1.1", "", "10.0.0.1"});
  EXPECT_NE(Topic(Diagnose(in), "upstream-nat")
                .text()
                .find("router 3 on the way to the internet, 10.0.0.1, is private"),
            std::string::npos);
  in.path = Result<std::vector<std::string>>(std::vector<std::string>{"192.168.1.1", "8.8.8.1"});
  EXPECT_EQ(Topic(Diagnose(in), "upstream-nat").level(), L::LEVEL_OK);
  in.path = Result<std::vector<std::string>>(std::vector<std::string>{"192.168.1.1"});
  EXPECT_EQ(Topic(Diagnose(in), "upstream-nat").level(), L::LEVEL_OK);
}

}  // namespace
}  // namespace natpilot
