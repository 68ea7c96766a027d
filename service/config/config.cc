#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/text.h"
#include "core/validate.h"

namespace natpilot {
namespace {

[[noreturn]] void Bad(const std::string& key, const std::string& what) {
  throw std::runtime_error("config key '" + key + "': " + what);
}

void CheckKeys(const toml::table& table, const std::string& prefix, const std::set<std::string>& allowed) {
  for (const auto& [k, v] : table) {
    const std::string key(k.str());
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      Bad(prefix + key, "unknown key; allowed here: " + list);
    }
  }
}

template <typename T>
void Get(const toml::table& t, const std::string& section, const char* key, T& out) {
  const auto* node = t.get(key);
  if (!node) return;
  const std::string name = section.empty() ? key : section + "." + key;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!node->is_string()) Bad(name, "must be a string");
    out = *node->value<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!node->is_boolean()) Bad(name, "must be true or false");
    out = *node->value<bool>();
  } else {
    if (!node->is_integer()) Bad(name, "must be an integer");
    out = static_cast<T>(*node->value<int64_t>());
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

// Every string anywhere in the file (paths, addresses, names, hook commands and arguments) is
// checked on its exact bytes before any is used: TOML escapes can put a NUL, a newline or an ESC
// in one, and none of these values has a use for them.
void CheckStrings(const toml::node& node, const std::string& key) {
  if (const auto* t = node.as_table()) {
    for (const auto& [k, v] : *t) CheckStrings(v, key.empty() ? std::string(k.str()) : key + "." + std::string(k.str()));
  } else if (const auto* a = node.as_array()) {
    for (size_t i = 0; i < a->size(); ++i) CheckStrings(*a->get(i), key + "[" + std::to_string(i) + "]");
  } else if (const auto* str = node.as_string()) {
    if (const std::string why = UnsafeTextReason(str->get()); !why.empty()) {
      Bad(key, "the value " + why + "; control characters and invalid UTF-8 are allowed in no value");
    }
  }
}

const toml::table& Section(const toml::table& root, const char* name) {
  static const toml::table kEmpty;
  const auto* node = root.get(name);
  if (!node) return kEmpty;
  if (!node->is_table()) Bad(name, "must be a [section]");
  return *node->as_table();
}

PortRange Range(const toml::table& t, const std::string& section, const char* key, PortRange value) {
  std::string text;
  Get(t, section, key, text);
  if (text.empty()) return value;
  auto r = ParsePortRange(text, section + "." + key);
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

}  // namespace

void LoadConfigFile(const std::string& path, Config& c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("config file '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > 1024 * 1024) throw std::runtime_error("config file '" + path + "' is over 1 MiB");
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
    CheckKeys(root, "", {"database", "api", "gateway", "policy", "defaults", "events", "log",
                         "release_on_shutdown", "rules", "identity", "doctor", "pbx", "web"});
    Get(root, "", "database", c.store.path);
    Get(root, "", "release_on_shutdown", c.release_on_shutdown);

    const auto& api = Section(root, "api");
    CheckKeys(api, "api.", {"unix_socket", "unix_socket_mode", "unix_socket_group", "listen",
                            "admin_token", "admin_token_file", "device_calls_from_own_address",
                            "tls_cert_file", "tls_key_file", "tls_client_ca_file",
                            "allow_insecure_tcp", "write_rate_per_s", "write_burst"});
    Get(api, "api", "unix_socket", c.unix_socket);
    Get(api, "api", "unix_socket_group", c.unix_socket_group);
    Get(api, "api", "listen", c.listen);
    Get(api, "api", "admin_token", c.admin_token);
    if (!c.admin_token.empty() && c.admin_token.size() < 16) {
      Bad("api.admin_token", "is too short; use at least 16 characters, or leave it out and let "
                             "natpilotd make one in api.admin_token_file");
    }
    Get(api, "api", "admin_token_file", c.admin_token_file);
    Get(api, "api", "device_calls_from_own_address", c.device_calls_from_own_address);
    Get(api, "api", "tls_cert_file", c.tls_cert_file);
    Get(api, "api", "tls_key_file", c.tls_key_file);
    Get(api, "api", "tls_client_ca_file", c.tls_client_ca_file);
    Get(api, "api", "allow_insecure_tcp", c.allow_insecure_tcp);
    c.write_rate_per_s = static_cast<uint32_t>(GetInt(api, "api", "write_rate_per_s", c.write_rate_per_s, 0, 100000));
    c.write_burst = static_cast<uint32_t>(GetInt(api, "api", "write_burst", c.write_burst, 1, 100000));
    std::string mode;
    Get(api, "api", "unix_socket_mode", mode);
    if (!mode.empty()) {
      size_t used = 0;
      unsigned long m = 010000;
      try { m = std::stoul(mode, &used, 8); } catch (const std::exception&) { used = 0; }
      if (used != mode.size() || m > 0777) Bad("api.unix_socket_mode", "'" + mode + "' is not an octal mode such as \"0660\"");
      c.unix_socket_mode = static_cast<unsigned>(m);
    }

    const auto& gw = Section(root, "gateway");
    CheckKeys(gw, "gateway.", {"lease_lifetime_s", "discovery_timeout_ms", "interface",
                               "root_desc_url", "probe_interval_s", "protocols", "address",
                               "pcp_third_party", "preference_window_ms", "verify_interval_s",
                               "upnp_events"});
    c.reconciler.verify_interval =
        Seconds(GetInt(gw, "gateway", "verify_interval_s", c.reconciler.verify_interval.count(), 5, 86400));
    if (const auto* node = gw.get("protocols")) {
      const auto* arr = node->as_array();
      const std::string allowed = "a list from \"pcp\", \"nat-pmp\", \"upnp-igd\", most preferred first";
      if (!arr || arr->empty()) Bad("gateway.protocols", "must be " + allowed);
      c.protocols.clear();
      for (const auto& v : *arr) {
        const auto name = v.value<std::string>();
        const auto p = name ? GatewayProtocolFromString(*name) : std::nullopt;
        if (!p || *p == GatewayProtocol::kNone) Bad("gateway.protocols", "must be " + allowed);
        if (std::find(c.protocols.begin(), c.protocols.end(), *p) != c.protocols.end()) {
          Bad("gateway.protocols", "names " + *name + " twice");
        }
        c.protocols.push_back(*p);
      }
    }
    std::string gw_address;
    Get(gw, "gateway", "address", gw_address);
    if (!gw_address.empty()) {
      auto a = ParseIpv4Unicast(gw_address, "gateway.address");
      if (!a) Bad("gateway.address", a.error().message);
      // Every protocol talks to this gateway: PCP and NAT-PMP send to it; UPnP prefers the IGD
      // there and sends SOAP nowhere else.
      c.pcp.gateway = c.natpmp.gateway = c.upnp.gateway = *a;
    }
    Get(gw, "gateway", "pcp_third_party", c.pcp.third_party);
    c.reconciler.preference_window = std::chrono::milliseconds(
        GetInt(gw, "gateway", "preference_window_ms", c.reconciler.preference_window.count(), 0, 5000));
    c.reconciler.lease_lifetime =
        Seconds(GetInt(gw, "gateway", "lease_lifetime_s", c.reconciler.lease_lifetime.count(), 30, 604800));
    c.upnp.discovery_timeout = std::chrono::milliseconds(
        GetInt(gw, "gateway", "discovery_timeout_ms", c.upnp.discovery_timeout.count(), 100, 10000));
    c.pcp.probe_timeout = c.natpmp.probe_timeout = c.upnp.discovery_timeout;
    c.reconciler.probe_interval =
        Seconds(GetInt(gw, "gateway", "probe_interval_s", c.reconciler.probe_interval.count(), 10, 86400));
    Get(gw, "gateway", "interface", c.upnp.multicast_interface);
    Get(gw, "gateway", "root_desc_url", c.upnp.root_desc_url);
    Get(gw, "gateway", "upnp_events", c.upnp.events);

    const auto& pol = Section(root, "policy");
    CheckKeys(pol, "policy.", {"internal_ports", "external_ports", "max_rtp_ports", "max_sip_ports",
                               "max_ports_per_device", "max_devices", "device_networks"});
    c.policy.internal_ports = Range(pol, "policy", "internal_ports", c.policy.internal_ports);
    c.policy.external_ports = Range(pol, "policy", "external_ports", c.policy.external_ports);
    c.policy.max_ports_per_device = static_cast<uint32_t>(
        GetInt(pol, "policy", "max_ports_per_device", c.policy.max_ports_per_device, 1, 131070));
    c.policy.max_devices = static_cast<uint32_t>(GetInt(pol, "policy", "max_devices", c.policy.max_devices, 1, 100000));
    if (const auto* node = pol.get("device_networks")) {
      const auto* arr = node->as_array();
      const std::string allowed = "must be a list of IPv4 networks such as [\"192.168.1.0/24\"]; [] = "
                                  "the LAN subnets of this host's interfaces";
      if (!arr) Bad("policy.device_networks", allowed);
      c.policy.device_networks.clear();
      for (const auto& v : *arr) {
        const auto net_text = v.value<std::string>();
        if (!net_text) Bad("policy.device_networks", allowed);
        auto net = ParseSubnet(*net_text, "network");
        if (!net) Bad("policy.device_networks", net.error().message);
        c.policy.device_networks.push_back(*net);
      }
    }
    c.policy.max_rtp_ports = static_cast<uint32_t>(GetInt(pol, "policy", "max_rtp_ports", c.policy.max_rtp_ports, 1, 65535));
    c.policy.max_sip_ports = static_cast<uint32_t>(GetInt(pol, "policy", "max_sip_ports", c.policy.max_sip_ports, 1, 65535));

    const auto& def = Section(root, "defaults");
    CheckKeys(def, "defaults.", {"sip", "rtp", "sip_transports"});
    c.default_plan.sip = Range(def, "defaults", "sip", c.default_plan.sip);
    c.default_plan.rtp = Range(def, "defaults", "rtp", c.default_plan.rtp);
    if (const auto* arr = def.get_as<toml::array>("sip_transports")) {
      c.default_plan.sip_udp = c.default_plan.sip_tcp = false;
      for (const auto& v : *arr) {
        const auto s = v.value<std::string>();
        if (s == "udp") c.default_plan.sip_udp = true;
        else if (s == "tcp") c.default_plan.sip_tcp = true;
        else Bad("defaults.sip_transports", "allowed values are \"udp\" and \"tcp\"");
      }
    }

    const auto& ev = Section(root, "events");
    CheckKeys(ev, "events.", {"retention_count", "retention_days"});
    c.store.event_retention_count = static_cast<uint32_t>(
        GetInt(ev, "events", "retention_count", c.store.event_retention_count, 10, 10000000));
    c.store.event_retention_age = Seconds(
        86400 * GetInt(ev, "events", "retention_days", c.store.event_retention_age.count() / 86400, 1, 3650));

    const auto& ru = Section(root, "rules");
    CheckKeys(ru, "rules.", {"folder", "wan_interface", "lan_interface", "wan_address", "hairpin",
                             "forward_chain", "force_static"});
    auto& rp = c.static_rules.params;
    Get(ru, "rules", "folder", c.static_rules.folder);
    Get(ru, "rules", "wan_interface", rp.wan_interface);
    Get(ru, "rules", "lan_interface", rp.lan_interface);
    Get(ru, "rules", "wan_address", rp.wan_address);
    Get(ru, "rules", "hairpin", rp.hairpin);
    Get(ru, "rules", "forward_chain", rp.forward_chain);
    if (const auto* node = ru.get("force_static")) {
      const auto* arr = node->as_array();
      if (!arr) Bad("rules.force_static", "must be a list of device names, or [\"*\"] for all");
      for (const auto& v : *arr) {
        const auto name = v.value<std::string>();
        if (!name) Bad("rules.force_static", "must be a list of device names, or [\"*\"] for all");
        if (*name == "*") {
          c.reconciler.force_static_all = true;
        } else if (auto ok = ValidateDeviceName(*name); !ok) {
          Bad("rules.force_static", ok.error().message);
        } else {
          c.reconciler.force_static_devices.insert(*name);
        }
      }
    }

    const auto& id = Section(root, "identity");
    CheckKeys(id, "identity.", {"enabled", "check_interval_s", "absent_after_s"});
    Get(id, "identity", "enabled", c.identity.enabled);
    c.identity.check_interval =
        Seconds(GetInt(id, "identity", "check_interval_s", c.identity.check_interval.count(), 1, 86400));
    c.identity.absent_after =
        Seconds(GetInt(id, "identity", "absent_after_s", c.identity.absent_after.count(), 0, 30 * 86400));

    const auto& web = Section(root, "web");
    CheckKeys(web, "web.", {"listen", "host_names"});
    Get(web, "web", "listen", c.web_listen);
    if (const auto* node = web.get("host_names")) {
      const auto* arr = node->as_array();
      const std::string allowed = "must be a list of host names such as [\"natpilot.lan\"] (letters, digits, '-', '.')";
      if (!arr) Bad("web.host_names", allowed);
      for (const auto& v : *arr) {
        const auto name = v.value<std::string>();
        if (!name || name->empty() || name->size() > 253 ||
            name->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != std::string::npos) {
          Bad("web.host_names", allowed);
        }
        c.web_host_names.push_back(*name);
      }
    }
    if (!c.web_listen.empty() && c.web_listen.rfind(':') == std::string::npos) {
      Bad("web.listen", "'" + c.web_listen + "' is not HOST:PORT, e.g. 127.0.0.1:8080; \"\" turns the page off");
    }

    const auto& doc = Section(root, "doctor");
    CheckKeys(doc, "doctor.", {"stun_server"});
    Get(doc, "doctor", "stun_server", c.stun_server);
    if (!c.stun_server.empty() && c.stun_server.rfind(':') == std::string::npos) {
      Bad("doctor.stun_server", "'" + c.stun_server + "' is not HOST:PORT, e.g. stun.example.net:3478");
    }

    if (const auto* node = root.get("pbx")) {
      const auto* arr = node->as_array();
      if (!arr) Bad("pbx", "must be [[pbx]] tables, one per device");
      c.pbx.clear();
      for (const auto& item : *arr) {
        const auto* t = item.as_table();
        if (!t) Bad("pbx", "must be [[pbx]] tables, one per device");
        CheckKeys(*t, "pbx.", {"device", "flavor", "file", "rtp_file", "on_change", "hook_timeout_s"});
        PbxConfig p;
        Get(*t, "pbx", "device", p.device);
        if (auto ok = ValidateDeviceName(p.device); !ok) Bad("pbx.device", ok.error().message);
        Get(*t, "pbx", "flavor", p.flavor);
        if (p.flavor != "asterisk" && p.flavor != "freeswitch" && p.flavor != "json") {
          Bad("pbx.flavor", "'" + p.flavor + "' is unknown; allowed: asterisk, freeswitch, json");
        }
        Get(*t, "pbx", "file", p.file);
        Get(*t, "pbx", "rtp_file", p.rtp_file);
        if (!p.rtp_file.empty() && p.flavor != "asterisk") Bad("pbx.rtp_file", "is for flavor asterisk only");
        if (const auto* hook = t->get("on_change")) {
          const auto* argv = hook->as_array();
          const std::string allowed = "must be a command as a list, e.g. [\"/usr/sbin/asterisk\", \"-rx\", "
                                      "\"core reload\"] (no shell: arguments are passed as they are)";
          if (!argv) Bad("pbx.on_change", allowed);
          for (const auto& a : *argv) {
            const auto arg = a.value<std::string>();
            if (!arg) Bad("pbx.on_change", allowed);
            p.on_change.push_back(*arg);
          }
          if (!p.on_change.empty() && p.on_change[0].empty()) Bad("pbx.on_change", allowed);
        }
        p.hook_timeout = Seconds(GetInt(*t, "pbx", "hook_timeout_s", p.hook_timeout.count(), 1, 3600));
        if (p.file.empty() && p.on_change.empty()) {
          Bad("pbx", "device '" + p.device + "' has neither a file nor on_change; give at least one");
        }
        c.pbx.push_back(std::move(p));
      }
    }

    const auto& log = Section(root, "log");
    CheckKeys(log, "log.", {"level"});
    Get(log, "log", "level", c.log_level);
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
      throw std::runtime_error("api.listen '" + c.listen + "' is not HOST:PORT, e.g. 127.0.0.1:50551");
    }
    if (!IsLoopbackListen(c.listen) && c.tls_cert_file.empty() && !c.allow_insecure_tcp) {
      throw std::runtime_error(
          "api.listen '" + c.listen +
          "' is not loopback: tokens would cross the network in clear; set api.tls_cert_file and "
          "api.tls_key_file, or api.allow_insecure_tcp = true if the network is trusted");
    }
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    throw std::runtime_error("api.tls_cert_file and api.tls_key_file go together; set both or neither");
  }
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty()) {
    throw std::runtime_error("api.tls_client_ca_file needs TLS: set api.tls_cert_file and api.tls_key_file");
  }
  static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!kLevels.count(c.log_level)) {
    throw std::runtime_error("log.level '" + c.log_level +
                             "' is unknown; allowed: trace, debug, info, warn, error, critical, off");
  }
  if (c.store.path.empty()) throw std::runtime_error("database path is empty");
  if (auto r = rules::ValidateRouterParams(c.static_rules.params); !r) {
    throw std::runtime_error("rules: " + r.error().message);
  }
}

std::string DefaultConfigToml() {
  return R"toml(# natpilotd configuration; every key is optional and shows its default.
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
}

}  // namespace natpilot
