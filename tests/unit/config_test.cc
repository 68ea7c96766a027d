#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace natpilot {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    path_ = std::filesystem::temp_directory_path() /
            ("natpilot-config-" + std::to_string(::getpid()) + ".toml");
    std::ofstream(path_) << text;
    return path_.string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string LoadError(const std::string& text) {
    Config c;
    try {
      LoadConfigFile(Write(text), c);
      ValidateConfig(c);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }
  std::filesystem::path path_;
};

TEST_F(ConfigTest, DefaultsAreValidAndThePrintedDefaultParsesToTheSame) {
  Config defaults;
  EXPECT_NO_THROW(ValidateConfig(defaults));
  Config c;
  LoadConfigFile(Write(DefaultConfigToml()), c);
  EXPECT_EQ(c.store.path, defaults.store.path);
  EXPECT_EQ(c.listen, defaults.listen);
  EXPECT_EQ(c.unix_socket_mode, 0660u);
  EXPECT_EQ(c.reconciler.lease_lifetime, defaults.reconciler.lease_lifetime);
  EXPECT_EQ(c.default_plan, defaults.default_plan);
  EXPECT_EQ(c.policy.max_rtp_ports, defaults.policy.max_rtp_ports);
}

TEST_F(ConfigTest, ReadsEveryKindOfValue) {
  Config c;
  LoadConfigFile(Write(R"(database = "x.db"
[api]
listen = "127.0.0.1:6000"
unix_socket_mode = "0600"
[gateway]
lease_lifetime_s = 120
root_desc_url = "http://192.168.1.1:5000/rootDesc.xml"
[defaults]
rtp = "16384-16483"
sip_transports = ["udp"]
)"),
                 c);
  EXPECT_EQ(c.store.path, "x.db");
  EXPECT_EQ(c.listen, "127.0.0.1:6000");
  EXPECT_EQ(c.unix_socket_mode, 0600u);
  EXPECT_EQ(c.reconciler.lease_lifetime, Seconds(120));
  EXPECT_EQ(c.upnp.root_desc_url, "http://192.168.1.1:5000/rootDesc.xml");
  EXPECT_EQ(c.default_plan.rtp, (PortRange{16384, 16483}));
  EXPECT_TRUE(c.default_plan.sip_udp);
  EXPECT_FALSE(c.default_plan.sip_tcp);
}

TEST_F(ConfigTest, ReadsTheStaticRulesSection) {
  Config c;
  LoadConfigFile(Write(R"([rules]
folder = "/var/lib/natpilot/rules"
wan_interface = "eth1"
lan_interface = "br-lan"
hairpin = true
force_static = ["pbx1", "ata-2"]
)"),
                 c);
  EXPECT_NO_THROW(ValidateConfig(c));
  EXPECT_EQ(c.static_rules.folder, "/var/lib/natpilot/rules");
  EXPECT_EQ(c.static_rules.params.wan_interface, "eth1");
  EXPECT_EQ(c.static_rules.params.lan_interface, "br-lan");
  EXPECT_TRUE(c.static_rules.params.hairpin);
  EXPECT_EQ(c.reconciler.force_static_devices, (std::set<std::string>{"pbx1", "ata-2"}));
  EXPECT_FALSE(c.reconciler.force_static_all);
  Config all;
  LoadConfigFile(Write("[rules]\nforce_static = [\"*\"]"), all);
  EXPECT_TRUE(all.reconciler.force_static_all);
}

TEST_F(ConfigTest, BadValuesSayWhichKeyAndWhatIsAllowed) {
  EXPECT_NE(LoadError("lease = 3").find("unknown key"), std::string::npos);
  EXPECT_NE(LoadError("[gateway]\nlease_lifetime = 3").find("gateway.lease_lifetime"),
            std::string::npos);
  EXPECT_NE(LoadError("[gateway]\nlease_lifetime_s = 5").find("allowed 30-604800"),
            std::string::npos);
  EXPECT_NE(LoadError("[gateway]\nlease_lifetime_s = \"x\"").find("must be an integer"),
            std::string::npos);
  EXPECT_NE(LoadError("[api]\nlisten = \"0.0.0.0:50551\"").find("not loopback"), std::string::npos);
  EXPECT_NE(LoadError("[api]\nunix_socket_mode = \"rw\"").find("octal"), std::string::npos);
  EXPECT_NE(LoadError("[defaults]\nrtp = \"100-200\"").find("1024-65535"), std::string::npos);
  EXPECT_NE(LoadError("[defaults]\nsip_transports = [\"sctp\"]").find("udp"), std::string::npos);
  EXPECT_NE(LoadError("[log]\nlevel = \"loud\"").find("allowed"), std::string::npos);
  EXPECT_NE(LoadError("database = ").find("line 1"), std::string::npos);
  EXPECT_NE(LoadError("[rules]\nwan_interface = \"eth0 ; drop\"").find("WAN interface"),
            std::string::npos);
  EXPECT_NE(LoadError("[rules]\nwan_address = \"x\"").find("WAN address"), std::string::npos);
  EXPECT_NE(LoadError("[rules]\nforce_static = \"pbx1\"").find("list of device names"),
            std::string::npos);
  EXPECT_NE(LoadError("[rules]\nforce_static = [\"a b\"]").find("rules.force_static"),
            std::string::npos);
  EXPECT_EQ(LoadError("[api]\nlisten = \"\""), "");  // TCP off is fine
}

// TOML escapes can put any byte in a string: every value is checked on its exact bytes, wherever
// it is (a path, a chain name, a list of names, a hook's arguments), and the error names the key.
TEST_F(ConfigTest, NoValueMayCarryControlCharactersOrInvalidUtf8) {
  const std::pair<const char*, const char*> cases[] = {
      {"database = \"natpilot.db\\u0000.evil\"", "'database'"},
      {"[rules]\nforward_chain = \"inet fw4 forward\\nflush ruleset\"", "'rules.forward_chain'"},
      {"[web]\nhost_names = [\"natpilot.lan\", \"x\\u001b[2J\"]", "'web.host_names[1]'"},
      {"[[pbx]]\ndevice = \"pbx\"\non_change = [\"asterisk\", \"-rx\", \"core reload\\r\\nrm -rf "
       "/\"]",
       "'pbx[0].on_change[2]'"},
      {"[doctor]\nstun_server = \"198.51.100.1:3478\\u0085\"", "'doctor.stun_server'"},
      {"[api]\nunix_socket = \"/run/natpilot\\u202e.sock\"", "'api.unix_socket'"},
  };
  for (const auto& [text, key] : cases) {
    const std::string error = LoadError(text);
    EXPECT_NE(error.find(key), std::string::npos) << text << " -> " << error;
    EXPECT_NE(error.find("control characters and invalid UTF-8 are allowed in no value"),
              std::string::npos)
        << error;
  }
  EXPECT_EQ(
      LoadError("[[pbx]]\ndevice = \"pbx\"\non_change = [\"asterisk\", \"-rx\", \"core reload\"]"),
      "");
}

TEST_F(ConfigTest, SecurityPolicyAndPbxKeys) {
  // A LAN listener needs TLS, or an explicit statement that the network is trusted.
  EXPECT_NE(LoadError("[api]\nlisten = \"192.168.1.2:50551\"").find("api.tls_cert_file"),
            std::string::npos);
  EXPECT_EQ(LoadError("[api]\nlisten = \"192.168.1.2:50551\"\nallow_insecure_tcp = true"), "");
  EXPECT_EQ(LoadError("[api]\nlisten = \"192.168.1.2:50551\"\ntls_cert_file = "
                      "\"c.pem\"\ntls_key_file = \"k.pem\""),
            "");
  EXPECT_NE(LoadError("[api]\ntls_cert_file = \"c.pem\"").find("go together"), std::string::npos);
  EXPECT_NE(LoadError("[api]\ntls_client_ca_file = \"ca.pem\"").find("needs TLS"),
            std::string::npos);
  EXPECT_NE(LoadError("[api]\nadmin_token = \"short\"").find("at least 16"), std::string::npos);
  EXPECT_NE(LoadError("[api]\nwrite_rate_per_s = -1").find("api.write_rate_per_s"),
            std::string::npos);
  EXPECT_NE(LoadError("[policy]\ndevice_networks = [\"192.168.1.0\"]").find("no prefix length"),
            std::string::npos);
  EXPECT_NE(
      LoadError("[policy]\ndevice_networks = \"192.168.1.0/24\"").find("list of IPv4 networks"),
      std::string::npos);
  EXPECT_NE(LoadError("[policy]\ninternal_ports = \"80-90\"\n[defaults]\nsip = \"5060\"")
                .find("policy.internal_ports"),
            std::string::npos);
  EXPECT_NE(LoadError("[policy]\nmin_port = 1").find("unknown key"), std::string::npos);
  EXPECT_NE(LoadError("[identity]\ncheck_interval_s = 0").find("identity.check_interval_s"),
            std::string::npos);
  EXPECT_NE(LoadError("[doctor]\nstun_server = \"stun.example\"").find("HOST:PORT"),
            std::string::npos);
  EXPECT_NE(LoadError("[[pbx]]\ndevice = \"pbx\"\nflavor = \"kamailio\"\nfile = \"x\"")
                .find("allowed: asterisk"),
            std::string::npos);
  EXPECT_NE(
      LoadError("[[pbx]]\ndevice = \"pbx\"\non_change = \"asterisk -rx reload\"").find("as a list"),
      std::string::npos);
  EXPECT_NE(LoadError("[[pbx]]\ndevice = \"pbx\"").find("neither a file nor on_change"),
            std::string::npos);
  EXPECT_NE(
      LoadError("[[pbx]]\ndevice = \"pbx\"\nflavor = \"json\"\nfile = \"x\"\nrtp_file = \"y\"")
          .find("asterisk only"),
      std::string::npos);
  Config c;
  LoadConfigFile(
      Write("[policy]\ndevice_networks = [\"192.168.1.7/24\", \"10.0.0.0/8\"]\nmax_devices = 3\n"
            "[[pbx]]\ndevice = \"pbx\"\nflavor = \"asterisk\"\nfile = \"/tmp/p.conf\"\n"
            "on_change = [\"/usr/sbin/asterisk\", \"-rx\", \"core reload\"]\nhook_timeout_s = 5\n"),
      c);
  ASSERT_EQ(c.policy.device_networks.size(), 2u);
  EXPECT_EQ(ToString(c.policy.device_networks[0]), "192.168.1.0/24");  // host bits cleared
  EXPECT_EQ(c.policy.max_devices, 3u);
  ASSERT_EQ(c.pbx.size(), 1u);
  EXPECT_EQ(c.pbx[0].on_change,
            (std::vector<std::string>{"/usr/sbin/asterisk", "-rx", "core reload"}));
  EXPECT_EQ(c.pbx[0].hook_timeout, Seconds(5));
}

// The first error found is the one reported, and the checks run in a fixed order, not the file's.
TEST_F(ConfigTest, TheFirstErrorInCheckOrderIsReported) {
  constexpr auto npos = std::string::npos;
  // Strings everywhere, before any key.
  EXPECT_NE(LoadError("bogus = 1\n[log]\nlevel = \"x\\u0000\"").find("'log.level'"), npos);
  // Unknown keys of a section before its values.
  EXPECT_NE(LoadError("[api]\nwrite_burst = 0\nnope = 1").find("'api.nope'"), npos);
  // [gateway] before [policy] and [log], wherever they are in the file.
  const std::string error =
      LoadError("[log]\nlevel = 1\n[policy]\nmax_devices = 0\n[gateway]\nlease_lifetime_s = 5");
  EXPECT_NE(error.find("'gateway.lease_lifetime_s'"), npos) << error;
  // Within [gateway], verify_interval_s before lease_lifetime_s.
  EXPECT_NE(LoadError("[gateway]\nlease_lifetime_s = 5\nverify_interval_s = 1")
                .find("'gateway.verify_interval_s'"),
            npos);
}

TEST_F(ConfigTest, TheGatewayAddressAppliesToEveryProtocol) {
  Config c;
  LoadConfigFile(Write("[gateway]\naddress = \"192.168.7.1\"\n"), c);
  EXPECT_EQ(c.pcp.gateway, "192.168.7.1");
  EXPECT_EQ(c.natpmp.gateway, "192.168.7.1");
  EXPECT_EQ(c.upnp.gateway, "192.168.7.1");
}

}  // namespace
}  // namespace natpilot
