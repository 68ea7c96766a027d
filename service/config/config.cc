#include "config/config.h"

#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "config/config_internal.h"
#include "core/text.h"
#include "core/validate.h"

namespace natpilot {
namespace config_internal {

[[noreturn]] void Bad(const std::string& key, const std::string& what) {
  throw std::runtime_error("config key '" + key + "': " + what);
}

void CheckKeys(const toml::table& table, const std::string& prefix,
               const std::set<std::string>& allowed) {
  for (const auto& [k, v] : table) {
    const std::string key(k.str());
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      Bad(prefix + key, "unknown key; allowed here: " + list);
    }
  }
}

int64_t GetInt(const toml::table& t, const std::string& section, const char* key, int64_t value,
               int64_t min, int64_t max) {
  Get(t, section, key, value);
  if (value < min || value > max) {
    Bad(section + "." + key, std::to_string(value) + " is out of range; allowed " +
                                 std::to_string(min) + "-" + std::to_string(max));
  }
  return value;
}

const toml::table& Section(const toml::table& root, const char* name) {
  static const toml::table kEmpty;
  const auto* node = root.get(name);
  if (!node) return kEmpty;
  if (!node->is_table()) Bad(name, "must be a [section]");
  return *node->as_table();
}

PortRange Range(const toml::table& t, const std::string& section, const char* key,
                PortRange value) {
  std::string text;
  Get(t, section, key, text);
  if (text.empty()) return value;
  auto r = ParsePortRange(text, section + "." + key);
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

}  // namespace config_internal

namespace {

// Every string anywhere in the file (paths, addresses, names, hook commands and arguments) is
// checked on its exact bytes before any is used: TOML escapes can put a NUL, a newline or an ESC
// in one, and none of these values has a use for them.
void CheckStrings(const toml::node& node, const std::string& key) {
  if (const auto* t = node.as_table()) {
    for (const auto& [k, v] : *t) {
      CheckStrings(v, key.empty() ? std::string(k.str()) : key + "." + std::string(k.str()));
    }
  } else if (const auto* a = node.as_array()) {
    for (size_t i = 0; i < a->size(); ++i) {
      CheckStrings(*a->get(i), key + "[" + std::to_string(i) + "]");
    }
  } else if (const auto* str = node.as_string()) {
    if (const std::string why = UnsafeTextReason(str->get()); !why.empty()) {
      config_internal::Bad(
          key,
          "the value " + why + "; control characters and invalid UTF-8 are allowed in no value");
    }
  }
}

using SectionLoader = void (*)(const toml::table& root, Config& c);

// The first error found is the one reported, so this order is part of the behaviour: keep it.
constexpr SectionLoader kSectionLoaders[] = {
    config_internal::LoadTopLevel, config_internal::LoadApi,      config_internal::LoadGateway,
    config_internal::LoadPolicy,   config_internal::LoadDefaults, config_internal::LoadEvents,
    config_internal::LoadRules,    config_internal::LoadIdentity, config_internal::LoadWeb,
    config_internal::LoadDoctor,   config_internal::LoadPbx,      config_internal::LoadLog,
};

// What --print-config prints; service/packaging/natpilot.toml is a copy (a ctest test compares
// them). Data rather than a function body, to keep functions short.
constexpr char kDefaultConfigToml[] =
    R"toml(# natpilotd configuration; every key is optional and shows its default.
database = "natpilot.db"        # SQLite file, relative to the working directory
release_on_shutdown = false     # leave leases on the gateway at exit; they are re-adopted at start

[api]
unix_socket = "natpilot.sock"   # admin door; its owner and group may change everything
unix_socket_mode = "0660"
unix_socket_group = ""          # group given the socket; "" = the daemon's
listen = "127.0.0.1:50551"      # TCP; every call needs a token; "" = off
admin_token_file = "natpilot-admin.token"  # made (0600) at first start unless admin_token is set
admin_token = ""                # the admin token itself, instead of the file (16+ characters)
device_calls_from_own_address = false  # a device token works only from the device's address
tls_cert_file = ""              # PEM; TLS on the TCP listener when set (with tls_key_file)
tls_key_file = ""
tls_client_ca_file = ""         # PEM; when set, clients need a certificate signed by it
allow_insecure_tcp = false      # listen on a non-loopback address without TLS (trusted networks)
write_rate_per_s = 20           # changes per caller per second; 0 = no limit
write_burst = 40

[gateway]
protocols = ["pcp", "nat-pmp", "upnp-igd"]  # probed at once; most preferred first
preference_window_ms = 50       # after a first answer, how long a more preferred one may take
address = ""                    # the gateway (PCP, NAT-PMP, UPnP); "" = the default route's
pcp_third_party = true          # ask PCP THIRD_PARTY mappings for other LAN hosts
lease_lifetime_s = 3600         # lease asked of the gateway; renewed at half of it
discovery_timeout_ms = 1000     # how long SSDP discovery waits for answers
interface = ""                  # LAN interface (name or address) for SSDP; "" = default route's
root_desc_url = ""              # skip discovery: the IGD's root description URL
upnp_events = true              # subscribe to the IGD's events (a new external address at once)
probe_interval_s = 300          # re-check a working gateway (external address, identity)
verify_interval_s = 60          # check that the gateway still has our mappings (reboot, purge)

[policy]                        # requests outside it are refused, naming the rule
internal_ports = "1024-65535"   # device ports that may be forwarded
external_ports = "1024-65535"   # gateway ports that may be opened (mappings are same-port)
max_sip_ports = 100
max_rtp_ports = 1000
max_ports_per_device = 1200     # SIP on each transport plus RTP
max_devices = 100
device_networks = []            # e.g. ["192.168.1.0/24"]; [] = this host's LAN subnets

[identity]                      # addresses get reused: know devices by MAC too
enabled = true
check_interval_s = 30           # probe each device and read the neighbour table
absent_after_s = 900            # silent this long: suspend its mappings; 0 = never

[defaults]                      # a device's port plan when it states none
sip = "5060-5070"
sip_transports = ["udp", "tcp"]
rtp = "10000-10099"

[events]
retention_count = 10000
retention_days = 30

[rules]                         # static forwarding rules for gateways that cannot or will not map
folder = "natpilot-rules"       # kept current: natpilot.nft, natpilot.iptables, natpilot.uci; "" = off
wan_interface = "wan"           # the router's WAN interface (OpenWrt: zone name)
lan_interface = "lan"
wan_address = ""                # optional; hairpin then matches it exactly
hairpin = false                 # LAN clients reach devices through the external address
forward_chain = "inet fw4 forward"  # the router's own forward chain, for the wiring rule
force_static = []               # device names always served by static rules; ["*"] = all

[web]
listen = "127.0.0.1:8080"       # status page, its JSON and /metrics; "" = off. Another address
                                # shows the LAN's layout to that network, and the admin token
                                # for changes travels unencrypted: put a TLS proxy in front.
host_names = []                 # names the page is opened by besides IP addresses and localhost

[doctor]
stun_server = ""                # HOST:PORT of a STUN server the doctor asks; "" = none

# [[pbx]]                       # one per device whose PBX configuration natpilotd keeps current
# device = "pbx1"
# flavor = "asterisk"           # asterisk, freeswitch, json
# file = "/etc/asterisk/pjsip_natpilot.conf"   # written atomically on every change
# rtp_file = "/etc/asterisk/rtp_natpilot.conf" # asterisk: rtp.conf's rtpstart/rtpend
# on_change = ["/usr/sbin/asterisk", "-rx", "core reload"]  # run after a change; no shell
# hook_timeout_s = 30

[log]
level = "info"                  # trace, debug, info, warn, error, critical, off
)toml";

}  // namespace

void LoadConfigFile(const std::string& path, Config& c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("config file '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > 1024 * 1024) {
    throw std::runtime_error("config file '" + path + "' is over 1 MiB");
  }
  LoadConfigText(ss.str(), path, c);
}

void LoadConfigText(std::string_view text, const std::string& path, Config& c) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "config file '" << path << "' line " << e.source().begin.line << ": " << e.description();
    throw std::runtime_error(os.str());
  }
  try {
    CheckStrings(root, "");
    for (const SectionLoader load : kSectionLoaders) load(root, c);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("config file '" + path + "': " + e.what());
  }
}

bool IsLoopbackListen(const std::string& listen) {
  const auto colon = listen.rfind(':');
  const std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

void ValidateConfig(const Config& c) {
  if (auto r = ValidatePlan(c.default_plan, c.policy); !r) {
    throw std::runtime_error("defaults: " + r.error().message);
  }
  if (!c.listen.empty()) {
    const auto colon = c.listen.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 >= c.listen.size()) {
      throw std::runtime_error("api.listen '" + c.listen +
                               "' is not HOST:PORT, e.g. 127.0.0.1:50551");
    }
    if (!IsLoopbackListen(c.listen) && c.tls_cert_file.empty() && !c.allow_insecure_tcp) {
      throw std::runtime_error(
          "api.listen '" + c.listen +
          "' is not loopback: tokens would cross the network in clear; set api.tls_cert_file and "
          "api.tls_key_file, or api.allow_insecure_tcp = true if the network is trusted");
    }
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    throw std::runtime_error(
        "api.tls_cert_file and api.tls_key_file go together; set both or neither");
  }
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty()) {
    throw std::runtime_error(
        "api.tls_client_ca_file needs TLS: set api.tls_cert_file and api.tls_key_file");
  }
  static const std::set<std::string> kLevels{"trace", "debug",    "info", "warn",
                                             "error", "critical", "off"};
  if (!kLevels.count(c.log_level)) {
    throw std::runtime_error(
        "log.level '" + c.log_level +
        "' is unknown; allowed: trace, debug, info, warn, error, critical, off");
  }
  if (c.store.path.empty()) throw std::runtime_error("database path is empty");
  if (auto r = rules::ValidateRouterParams(c.static_rules.params); !r) {
    throw std::runtime_error("rules: " + r.error().message);
  }
}

std::string DefaultConfigToml() { return kDefaultConfigToml; }

}  // namespace natpilot
