// Golden files of the PBX configuration renderers (Debian packages neither Asterisk nor
// FreeSWITCH; the sipp lab test checks the behaviour). NATPILOT_UPDATE_GOLDEN=1 rewrites them.
#include "pbx_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "golden.h"

namespace natpilot::pbx {
namespace {

const std::string kDataDir = std::string(NATPILOT_TEST_DATA_DIR) + "/pbx/";

void ExpectGolden(const std::string& text, const std::string& file) {
  testing::ExpectGolden(text, kDataDir + file);
}

// A PBX at 192.168.50.2 with SIP 5080 on UDP and TCP (UDP's external port moved to 5090 by the
// gateway) and RTP 12000-12009, mapped.
v1::NatView Pbx() {
  v1::NatView v;
  v.set_device("pbx1");
  v.set_internal_address("192.168.50.2");
  v.set_external_address("203.0.113.1");
  v.set_complete(true);
  v.set_sip_port(5080);
  v.set_sip_external_port(5090);
  v.add_sip_transports(v1::TRANSPORT_UDP);
  v.add_sip_transports(v1::TRANSPORT_TCP);
  v.mutable_rtp()->set_first(12000);
  v.mutable_rtp()->set_last(12009);
  v.add_local_nets("192.168.50.0/24");
  v.add_local_nets("10.8.0.0/16");
  for (auto [t, ext] : {std::pair{v1::TRANSPORT_UDP, 5090u}, std::pair{v1::TRANSPORT_TCP, 5080u}}) {
    auto* p = v.add_ports();
    p->set_purpose(v1::MAPPING_PURPOSE_SIP);
    p->set_transport(t);
    p->set_internal_port(5080);
    p->set_external_port(ext);
    p->set_state(v1::MAPPING_STATE_ACTIVE);
    p->set_provision(v1::PROVISION_LEASE);
  }
  return v;
}

TEST(PbxConfig, Asterisk) { ExpectGolden(Render(Flavor::kAsterisk, Pbx()), "asterisk.conf"); }
TEST(PbxConfig, Freeswitch) { ExpectGolden(Render(Flavor::kFreeswitch, Pbx()), "freeswitch.xml"); }
TEST(PbxConfig, Json) { ExpectGolden(Render(Flavor::kJson, Pbx()), "pbx.json"); }

TEST(PbxConfig, IncompleteViewsSaySoAndKeepTheLanAddressUntilTheExternalOneIsKnown) {
  v1::NatView v = Pbx();
  v.set_external_address("");
  v.set_complete(false);
  v.set_detail("22 of 32 ports are not provided (22 pending)");
  ExpectGolden(Render(Flavor::kAsterisk, v), "asterisk-incomplete.conf");
  const std::string fs = Render(Flavor::kFreeswitch, v);
  EXPECT_NE(fs.find("natpilot_ext_ip=192.168.50.2"), std::string::npos);
  EXPECT_EQ(fs.find("--", 4), fs.find("-->"));  // nothing breaks the header comment early
}

TEST(PbxConfig, TheAsteriskRtpRangeIsExactlyTheMappedOne) {
  const std::string rtp = AsteriskRtp(Pbx());
  EXPECT_NE(rtp.find("rtpstart = 12000\nrtpend = 12009\n"), std::string::npos) << rtp;
}

TEST(PbxConfig, FlavorNames) {
  Flavor f;
  EXPECT_TRUE(ParseFlavor("asterisk", &f));
  EXPECT_EQ(f, Flavor::kAsterisk);
  EXPECT_TRUE(ParseFlavor("freeswitch", &f));
  EXPECT_TRUE(ParseFlavor("json", &f));
  EXPECT_FALSE(ParseFlavor("kamailio", &f));
}

}  // namespace
}  // namespace natpilot::pbx
