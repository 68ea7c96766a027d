#include "core/validate.h"

#include <gtest/gtest.h>

namespace natpilot {
namespace {

TEST(ParseIpv4Unicast, AcceptsLanAddressesAndCanonicalizes) {
  EXPECT_EQ(*ParseIpv4Unicast("192.168.1.20", "a"), "192.168.1.20");
  EXPECT_EQ(*ParseIpv4Unicast("10.0.0.1", "a"), "10.0.0.1");
}

TEST(ParseIpv4Unicast, RefusesWhatIsNotAUnicastIpv4Address) {
  for (const char* bad : {"", "192.168.1", "192.168.1.256", "abc", "1.2.3.4 ", "127.0.0.1",
                          "0.0.0.0", "224.0.0.1", "255.255.255.255", "169.254.1.1"}) {
    auto r = ParseIpv4Unicast(bad, "device address");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, make_error_code(Errc::kInvalidArgument));
    EXPECT_NE(r.error().message.find("device address"), std::string::npos) << r.error().message;
  }
  EXPECT_NE(ParseIpv4Unicast("fd00::1", "a").error().message.find("IPv6"), std::string::npos);
}

// The exact bytes count, not the C string: a NUL is not the end of an address.
TEST(ParseIpv4Unicast, ANulOrAnyOtherByteIsNotTheEndOfTheAddress) {
  using namespace std::string_literals;
  for (const std::string& bad : {"192.168.60.60\0garbage"s, "192.168.60.60\0"s, "192.168.60.60\n"s,
                                 "192.168.60.60\0\nCOMMIT\n"s}) {
    auto r = ParseIpv4Unicast(bad, "device address");
    ASSERT_FALSE(r) << "accepted " << bad.size() << " bytes";
    EXPECT_NE(r.error().message.find("only digits and dots are allowed"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(r.error().message.find('\0'), std::string::npos) << "the message carries the NUL";
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "the message carries the newline";
  }
  EXPECT_NE(ParseIpv4Unicast("192.168.60.60\0garbage"s, "a").error().message.find("\\x00"),
            std::string::npos);
  EXPECT_FALSE(ParseSubnet("192.168.1.0\0/24"s, "policy.device_networks"));
  EXPECT_FALSE(
      CheckDeviceNetwork("192.168.1.20\0x"s, {*ParseSubnet("192.168.1.0/24", "n")}, false));
  EXPECT_TRUE(CheckDeviceNetwork("192.168.1.20", {*ParseSubnet("192.168.1.0/24", "n")}, false));
}

TEST(ParsePortRange, ParsesSinglePortsAndRanges) {
  EXPECT_EQ(*ParsePortRange("5060", "x"), (PortRange{5060, 5060}));
  EXPECT_EQ(*ParsePortRange("10000-10099", "x"), (PortRange{10000, 10099}));
  for (const char* bad : {"", "-", "0", "65536", "10-", "-10", "a-b", "1-2-3", "123456"}) {
    EXPECT_FALSE(ParsePortRange(bad, "x")) << bad;
  }
}

TEST(ValidatePlan, EnforcesPolicyWithMessagesThatSayWhatIsAllowed) {
  Policy policy;
  PortPlan plan;
  EXPECT_TRUE(ValidatePlan(plan, policy));

  plan.rtp = {100, 200};
  auto r = ValidatePlan(plan, policy);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("allowed ports are 1024-65535"), std::string::npos);

  plan.rtp = {20000, 19000};
  EXPECT_NE(ValidatePlan(plan, policy).error().message.find("must not exceed the last"),
            std::string::npos);

  plan.rtp = {20000, 21000};  // 1001 ports
  EXPECT_NE(ValidatePlan(plan, policy).error().message.find("at most 1000"), std::string::npos);

  plan.rtp = {5065, 5100};  // overlaps SIP on UDP
  EXPECT_NE(ValidatePlan(plan, policy).error().message.find("overlaps"), std::string::npos);

  plan.rtp = {10000, 10099};
  plan.sip_udp = plan.sip_tcp = false;
  EXPECT_FALSE(ValidatePlan(plan, policy));
}

TEST(ValidateDeviceName, AllowsASafeAlphabetOnly) {
  EXPECT_TRUE(ValidateDeviceName("ata-1.office_2"));
  for (const char* bad :
       {"", "a b", "a'b", "a\"b", "a;b", "a/b", "x123456789012345678901234567890123"}) {
    EXPECT_FALSE(ValidateDeviceName(bad)) << bad;
  }
}

TEST(ExpandPlan, DefaultPlanIs22SipAnd100RtpMappingsAllPortPreserving) {
  Device d;
  d.id = 7;
  d.name = "ata1";
  d.address = "192.168.1.20";
  auto ms = ExpandPlan(d);
  ASSERT_EQ(ms.size(), 122u);
  int sip_udp = 0, sip_tcp = 0, rtp = 0;
  for (const auto& m : ms) {
    EXPECT_EQ(m.internal_port, m.external_port);
    EXPECT_EQ(m.device_id, 7);
    if (m.purpose == Purpose::kRtp) {
      ++rtp;
      EXPECT_EQ(m.transport, Transport::kUdp);
      EXPECT_TRUE(d.plan.rtp.contains(m.internal_port));
    } else {
      (m.transport == Transport::kUdp ? sip_udp : sip_tcp)++;
    }
  }
  EXPECT_EQ(sip_udp, 11);
  EXPECT_EQ(sip_tcp, 11);
  EXPECT_EQ(rtp, 100);
}

TEST(PlanPurpose, SaysWhatAPortIsWantedFor) {
  PortPlan plan;
  plan.sip_tcp = false;
  EXPECT_EQ(PlanPurpose(plan, Transport::kUdp, 5060), Purpose::kSip);
  EXPECT_EQ(PlanPurpose(plan, Transport::kTcp, 5060), std::nullopt);
  EXPECT_EQ(PlanPurpose(plan, Transport::kUdp, 10099), Purpose::kRtp);
  EXPECT_EQ(PlanPurpose(plan, Transport::kTcp, 10000), std::nullopt);
  EXPECT_EQ(PlanPurpose(plan, Transport::kUdp, 10100), std::nullopt);
}

}  // namespace
}  // namespace natpilot
