// Golden-file tests of the rule generators. NATPILOT_UPDATE_GOLDEN=1 rewrites the files (review
// the diff before committing). The same files are checked by nft and iptables-restore in the lab.
#include "rules.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "golden.h"

namespace natpilot::rules {
namespace {

const std::string kDataDir = NATPILOT_TEST_DATA_DIR "/rules/";

RulesInput Registry() {
  RulesInput in;
  in.registry_version = 7;
  in.generated_at = TimePoint(Seconds(1764100000));
  Device ata;
  ata.name = "ata1";
  ata.address = "192.168.50.10";
  in.devices.push_back(ata);
  Device pbx;
  pbx.name = "pbx-1.office";
  pbx.address = "192.168.50.2";
  pbx.plan.sip = {5080, 5081};
  pbx.plan.sip_tcp = false;
  pbx.plan.rtp = {12000, 12009};
  in.devices.push_back(pbx);
  return in;
}

RouterParams Lab(bool hairpin) {
  RouterParams p;
  p.wan_interface = "wan0";
  p.lan_interface = "br0";
  p.forward_chain = "inet filter forward";
  p.hairpin = hairpin;
  if (hairpin) p.wan_address = "203.0.113.1";
  return p;
}

void ExpectGolden(const std::string& text, const std::string& file) {
  testing::ExpectGolden(text, kDataDir + file);
}

struct Case {
  Format format;
  bool hairpin;
  std::string file;
};

class RulesGolden : public ::testing::TestWithParam<Case> {};

TEST_P(RulesGolden, MatchesTheGoldenFile) {
  auto text = Generate(GetParam().format, Registry(), Lab(GetParam().hairpin));
  ASSERT_TRUE(text) << text.error().message;
  ExpectGolden(*text, GetParam().file);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, RulesGolden,
    ::testing::Values(Case{Format::kNftables, false, "lab.nft"},
                      Case{Format::kNftables, true, "lab-hairpin.nft"},
                      Case{Format::kIptables, false, "lab.iptables"},
                      Case{Format::kIptables, true, "lab-hairpin.iptables"},
                      Case{Format::kOpenwrt, false, "lab.uci"},
                      Case{Format::kOpenwrt, true, "lab-hairpin.uci"}),
    [](const auto& p) {
      return p.param.file.substr(0, p.param.file.find('.')).replace(3, 1, "_") + "_" +
             std::string(ToString(p.param.format));
    });

TEST(Rules, OneRulePerDeviceAndTransportNotPerPort) {
  auto text = *Generate(Format::kNftables, Registry(), Lab(false));
  size_t dnat = 0;
  for (size_t at = text.find(" dnat to "); at != std::string::npos;
       at = text.find(" dnat to ", at + 1))
    ++dnat;
  EXPECT_EQ(dnat, 3u);  // ata1 udp, ata1 tcp, pbx udp
  EXPECT_NE(text.find("udp dport { 5060-5070, 10000-10099 } dnat to 192.168.50.10"),
            std::string::npos);
}

TEST(Rules, RouterParametersAreCheckedBeforeAnythingIsWritten) {
  auto params = Lab(false);
  for (const char* bad : {"", "wan 0", "wan\"0", "wan'0", "eth0;drop", "a/b", "sixteen_chars_xx"}) {
    params.wan_interface = bad;
    auto r = Generate(Format::kNftables, Registry(), params);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("WAN interface"), std::string::npos);
  }
  params = Lab(false);
  params.lan_interface = "br 0";
  EXPECT_NE(Generate(Format::kIptables, Registry(), params).error().message.find("LAN interface"),
            std::string::npos);
  params = Lab(false);
  params.wan_address = "203.0.113.300";
  EXPECT_NE(Generate(Format::kOpenwrt, Registry(), params).error().message.find("WAN address"),
            std::string::npos);
  params = Lab(false);
  params.forward_chain = "inet fw4 forward; flush ruleset";
  EXPECT_NE(Generate(Format::kNftables, Registry(), params).error().message.find("forward chain"),
            std::string::npos);
  // Exact bytes: a NUL or a newline inside a value is refused, not cut short or written out.
  using namespace std::string_literals;
  params = Lab(true);
  params.wan_address = "203.0.113.7\0\nCOMMIT\n*filter\n-I INPUT 1 -j ACCEPT\n"s;
  for (Format f : {Format::kIptables, Format::kNftables, Format::kOpenwrt}) {
    auto r = Generate(f, Registry(), params);
    ASSERT_FALSE(r) << "a WAN address with a NUL and rules after it was accepted";
    EXPECT_NE(r.error().message.find("WAN address"), std::string::npos) << r.error().message;
  }
  params = Lab(false);
  for (const std::string& bad : {"inet\nfw4\nforward"s, "inet fw4 forward\n"s, "inet  fw4 forward"s,
                                 "inet fw4\tforward"s, "inet fw4 forward\0\nflush ruleset"s}) {
    params.forward_chain = bad;
    auto r = Generate(Format::kNftables, Registry(), params);
    ASSERT_FALSE(r) << "forward chain of " << bad.size() << " bytes accepted";
    EXPECT_NE(r.error().message.find("forward chain"), std::string::npos);
  }
  params.forward_chain = "inet fw4 forward";
  EXPECT_TRUE(Generate(Format::kNftables, Registry(), params));
}

TEST(Rules, DevicesAreCheckedToo) {
  auto in = Registry();
  in.devices[0].name = "ata\"1";
  EXPECT_FALSE(Generate(Format::kNftables, in, Lab(false)));
  in = Registry();
  in.devices[0].address = "192.168.50.10 }";
  EXPECT_FALSE(Generate(Format::kNftables, in, Lab(false)));
  in = Registry();
  in.devices[0].plan.rtp = {20000, 10000};
  EXPECT_FALSE(Generate(Format::kIptables, in, Lab(false)));
  EXPECT_EQ(FormatFromString("pf").error().code, make_error_code(Errc::kInvalidArgument));
}

TEST(Rules, AnEmptyRegistryStillGivesAValidEmptyTable) {
  RulesInput in;
  auto text = Generate(Format::kNftables, in, Lab(false));
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("0 devices"), std::string::npos);
  EXPECT_NE(text->find("table ip natpilot {"), std::string::npos);
}

// Device names that differ only in '-', '_' or '.' get UCI sections of their own: one must not
// overwrite another's redirect when the file is imported.
TEST(Rules, OpenwrtSectionNamesDoNotCollide) {
  RulesInput in;
  in.generated_at = TimePoint(Seconds(1764100000));
  int n = 0;
  for (const char* name : {"ata-1", "ata_1", "ata.1", "ata1", "ata_h1"}) {
    Device d;
    d.name = name;
    d.address = "192.168.50." + std::to_string(10 + n++);
    in.devices.push_back(d);
  }
  auto text = Generate(Format::kOpenwrt, in, Lab(false));
  ASSERT_TRUE(text) << text.error().message;
  std::set<std::string> sections;
  size_t count = 0;
  for (size_t at = 0; (at = text->find("config redirect '", at)) != std::string::npos; ++count) {
    at += 17;
    sections.insert(text->substr(at, text->find('\'', at) - at));
  }
  EXPECT_EQ(count, 15u);  // five devices: UDP (SIP and RTP, two ranges) and TCP each
  EXPECT_EQ(sections.size(), count) << *text;
  EXPECT_EQ(sections.count("natpilot_ata1_tcp"), 1u) << "a plain name reads as it is";
}

}  // namespace
}  // namespace natpilot::rules
