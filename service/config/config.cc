#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

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

const toml::table& Section(const toml::table& root, const char* name) {
  static const toml::table kEmpty;
  const auto* node = root.get(name);
  if (!node) return kEmpty;
  if (!node->is_table()) Bad(name, "must be a [section]");
  return *node->as_table();
}

PortRange Range(const toml::table& t, const char* key, PortRange value) {
  std::string text;
  Get(t, "defaults", key, text);
  if (text.empty()) return value;
  auto r = ParsePortRange(text, std::string("defaults.") + key);
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

}  // namespace

void LoadConfigFile(const std::string& path, Config& c) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << "config file '" << path << "' line " << e.source().begin.line << ": " << e.description();
    throw std::runtime_error(os.str());
  }
  try {
    CheckKeys(root, "", {"database", "api", "gateway", "policy", "defaults", "events", "log",
                         "release_on_shutdown", "rules"});
    Get(root, "", "database", c.store.path);
    Get(root, "", "release_on_shutdown", c.release_on_shutdown);

    const auto& api = Section(root, "api");
    CheckKeys(api, "api.", {"unix_socket", "unix_socket_mode", "listen"});
    Get(api, "api", "unix_socket", c.unix_socket);
    Get(api, "api", "listen", c.listen);
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
                               "pcp_third_party", "preference_window_ms", "verify_interval_s"});
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
      c.pcp.gateway = c.natpmp.gateway = *a;
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

    const auto& pol = Section(root, "policy");
    CheckKeys(pol, "policy.", {"min_port", "max_port", "max_rtp_ports", "max_sip_ports"});
    c.policy.min_port = static_cast<uint16_t>(GetInt(pol, "policy", "min_port", c.policy.min_port, 1, 65535));
    c.policy.max_port = static_cast<uint16_t>(GetInt(pol, "policy", "max_port", c.policy.max_port, 1, 65535));
    c.policy.max_rtp_ports = static_cast<uint32_t>(GetInt(pol, "policy", "max_rtp_ports", c.policy.max_rtp_ports, 1, 65535));
    c.policy.max_sip_ports = static_cast<uint32_t>(GetInt(pol, "policy", "max_sip_ports", c.policy.max_sip_ports, 1, 65535));

    const auto& def = Section(root, "defaults");
    CheckKeys(def, "defaults.", {"sip", "rtp", "sip_transports"});
    c.default_plan.sip = Range(def, "sip", c.default_plan.sip);
    c.default_plan.rtp = Range(def, "rtp", c.default_plan.rtp);
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

    const auto& log = Section(root, "log");
    CheckKeys(log, "log.", {"level"});
    Get(log, "log", "level", c.log_level);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("config file '" + path + "': " + e.what());
  }
}

void ValidateConfig(const Config& c) {
  if (c.policy.min_port > c.policy.max_port) {
    throw std::runtime_error("policy.min_port " + std::to_string(c.policy.min_port) +
                             " is above policy.max_port " + std::to_string(c.policy.max_port));
  }
  if (auto r = ValidatePlan(c.default_plan, c.policy); !r) {
    throw std::runtime_error("defaults: " + r.error().message);
  }
  if (!c.listen.empty()) {
    const auto colon = c.listen.rfind(':');
    const std::string host = colon == std::string::npos ? "" : c.listen.substr(0, colon);
    const bool loopback = host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
    if (!loopback || colon + 1 >= c.listen.size()) {
      throw std::runtime_error(
          "api.listen '" + c.listen +
          "' is not allowed: until token authentication exists, the TCP API listens only on "
          "loopback (127.0.0.1:PORT, localhost:PORT or [::1]:PORT); use the unix socket or an "
          "empty value to turn TCP off");
    }
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
listen = "127.0.0.1:50551"      # TCP, loopback only until token authentication exists; "" = off

[gateway]
protocols = ["pcp", "nat-pmp", "upnp-igd"]  # probed at once; most preferred first
preference_window_ms = 50       # after a first answer, how long a more preferred one may take
address = ""                    # PCP/NAT-PMP server; "" = the default route's gateway
pcp_third_party = true          # ask PCP THIRD_PARTY mappings for other LAN hosts
lease_lifetime_s = 3600         # lease asked of the gateway; renewed at half of it
discovery_timeout_ms = 1000     # how long SSDP discovery waits for answers
interface = ""                  # LAN interface (name or address) for SSDP; "" = default route's
root_desc_url = ""              # skip discovery: the IGD's root description URL
probe_interval_s = 300          # re-check a working gateway (external address, identity)
verify_interval_s = 60          # check that the gateway still has our mappings (reboot, purge)

[policy]
min_port = 1024
max_port = 65535
max_rtp_ports = 1000
max_sip_ports = 100

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

[log]
level = "info"                  # trace, debug, info, warn, error, critical, off
)toml";
}

}  // namespace natpilot
