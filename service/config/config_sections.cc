// One loader per section of natpilot.toml. Within each, the checks run in the order they always
// have: the first error found is the one reported.
#include <toml++/toml.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config_internal.h"
#include "core/validate.h"

namespace natpilot::config_internal {
namespace {

// api.unix_socket_mode: octal text such as "0660".
unsigned ParseSocketMode(const std::string& mode) {
  size_t used = 0;
  unsigned long m = 010000;
  try {
    m = std::stoul(mode, &used, 8);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != mode.size() || m > 0777) {
    Bad("api.unix_socket_mode", "'" + mode + "' is not an octal mode such as \"0660\"");
  }
  return static_cast<unsigned>(m);
}

// gateway.protocols; `protocols` is replaced in place, as it is read.
void ReadProtocols(const toml::node& node, std::vector<GatewayProtocol>& protocols) {
  const auto* arr = node.as_array();
  const std::string allowed =
      "a list from \"pcp\", \"nat-pmp\", \"upnp-igd\", most preferred first";
  if (!arr || arr->empty()) Bad("gateway.protocols", "must be " + allowed);
  protocols.clear();
  for (const auto& v : *arr) {
    const auto name = v.value<std::string>();
    const auto p = name ? GatewayProtocolFromString(*name) : std::nullopt;
    if (!p || *p == GatewayProtocol::kNone) Bad("gateway.protocols", "must be " + allowed);
    if (std::find(protocols.begin(), protocols.end(), *p) != protocols.end()) {
      Bad("gateway.protocols", "names " + *name + " twice");
    }
    protocols.push_back(*p);
  }
}

// policy.device_networks; `networks` is replaced in place, as it is read.
void ReadDeviceNetworks(const toml::node& node, std::vector<Subnet>& networks) {
  const auto* arr = node.as_array();
  const std::string allowed =
      "must be a list of IPv4 networks such as [\"192.168.1.0/24\"]; [] = "
      "the LAN subnets of this host's interfaces";
  if (!arr) Bad("policy.device_networks", allowed);
  networks.clear();
  for (const auto& v : *arr) {
    const auto net_text = v.value<std::string>();
    if (!net_text) Bad("policy.device_networks", allowed);
    auto net = ParseSubnet(*net_text, "network");
    if (!net) Bad("policy.device_networks", net.error().message);
    networks.push_back(*net);
  }
}

// rules.force_static; adds to what is there.
void ReadForceStatic(const toml::node& node, ReconcilerOptions& r) {
  const auto* arr = node.as_array();
  if (!arr) Bad("rules.force_static", "must be a list of device names, or [\"*\"] for all");
  for (const auto& v : *arr) {
    const auto name = v.value<std::string>();
    if (!name) Bad("rules.force_static", "must be a list of device names, or [\"*\"] for all");
    if (*name == "*") {
      r.force_static_all = true;
    } else if (auto ok = ValidateDeviceName(*name); !ok) {
      Bad("rules.force_static", ok.error().message);
    } else {
      r.force_static_devices.insert(*name);
    }
  }
}

// web.host_names; adds to what is there.
void ReadHostNames(const toml::node& node, std::vector<std::string>& names) {
  const auto* arr = node.as_array();
  const std::string allowed =
      "must be a list of host names such as [\"natpilot.lan\"] (letters, digits, '-', '.')";
  if (!arr) Bad("web.host_names", allowed);
  for (const auto& v : *arr) {
    const auto name = v.value<std::string>();
    if (!name || name->empty() || name->size() > 253 ||
        name->find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") !=
            std::string::npos) {
      Bad("web.host_names", allowed);
    }
    names.push_back(*name);
  }
}

// pbx.on_change: the hook's argv, added to `argv`.
void ReadHook(const toml::node& hook, std::vector<std::string>& argv) {
  const auto* arr = hook.as_array();
  const std::string allowed =
      "must be a command as a list, e.g. [\"/usr/sbin/asterisk\", \"-rx\", "
      "\"core reload\"] (no shell: arguments are passed as they are)";
  if (!arr) Bad("pbx.on_change", allowed);
  for (const auto& a : *arr) {
    const auto arg = a.value<std::string>();
    if (!arg) Bad("pbx.on_change", allowed);
    argv.push_back(*arg);
  }
  if (!argv.empty() && argv[0].empty()) Bad("pbx.on_change", allowed);
}

// One [[pbx]] table.
PbxConfig ReadPbx(const toml::table& t) {
  CheckKeys(t, "pbx.", {"device", "flavor", "file", "rtp_file", "on_change", "hook_timeout_s"});
  PbxConfig p;
  Get(t, "pbx", "device", p.device);
  if (auto ok = ValidateDeviceName(p.device); !ok) Bad("pbx.device", ok.error().message);
  Get(t, "pbx", "flavor", p.flavor);
  if (p.flavor != "asterisk" && p.flavor != "freeswitch" && p.flavor != "json") {
    Bad("pbx.flavor", "'" + p.flavor + "' is unknown; allowed: asterisk, freeswitch, json");
  }
  Get(t, "pbx", "file", p.file);
  Get(t, "pbx", "rtp_file", p.rtp_file);
  if (!p.rtp_file.empty() && p.flavor != "asterisk") {
    Bad("pbx.rtp_file", "is for flavor asterisk only");
  }
  if (const auto* hook = t.get("on_change")) ReadHook(*hook, p.on_change);
  p.hook_timeout = Seconds(GetInt(t, "pbx", "hook_timeout_s", p.hook_timeout.count(), 1, 3600));
  if (p.file.empty() && p.on_change.empty()) {
    Bad("pbx", "device '" + p.device + "' has neither a file nor on_change; give at least one");
  }
  return p;
}

}  // namespace

void LoadTopLevel(const toml::table& root, Config& c) {
  CheckKeys(root, "",
            {"database", "api", "gateway", "policy", "defaults", "events", "log",
             "release_on_shutdown", "rules", "identity", "doctor", "pbx", "web"});
  Get(root, "", "database", c.store.path);
  Get(root, "", "release_on_shutdown", c.release_on_shutdown);
}

void LoadApi(const toml::table& root, Config& c) {
  const auto& api = Section(root, "api");
  CheckKeys(api, "api.",
            {"unix_socket", "unix_socket_mode", "unix_socket_group", "listen", "admin_token",
             "admin_token_file", "device_calls_from_own_address", "tls_cert_file", "tls_key_file",
             "tls_client_ca_file", "allow_insecure_tcp", "write_rate_per_s", "write_burst"});
  Get(api, "api", "unix_socket", c.unix_socket);
  Get(api, "api", "unix_socket_group", c.unix_socket_group);
  Get(api, "api", "listen", c.listen);
  Get(api, "api", "admin_token", c.admin_token);
  if (!c.admin_token.empty() && c.admin_token.size() < 16) {
    Bad("api.admin_token",
        "is too short; use at least 16 characters, or leave it out and let "
        "natpilotd make one in api.admin_token_file");
  }
  Get(api, "api", "admin_token_file", c.admin_token_file);
  Get(api, "api", "device_calls_from_own_address", c.device_calls_from_own_address);
  Get(api, "api", "tls_cert_file", c.tls_cert_file);
  Get(api, "api", "tls_key_file", c.tls_key_file);
  Get(api, "api", "tls_client_ca_file", c.tls_client_ca_file);
  Get(api, "api", "allow_insecure_tcp", c.allow_insecure_tcp);
  c.write_rate_per_s =
      static_cast<uint32_t>(GetInt(api, "api", "write_rate_per_s", c.write_rate_per_s, 0, 100000));
  c.write_burst =
      static_cast<uint32_t>(GetInt(api, "api", "write_burst", c.write_burst, 1, 100000));
  std::string mode;
  Get(api, "api", "unix_socket_mode", mode);
  if (!mode.empty()) c.unix_socket_mode = ParseSocketMode(mode);
}

void LoadGateway(const toml::table& root, Config& c) {
  const auto& gw = Section(root, "gateway");
  CheckKeys(gw, "gateway.",
            {"lease_lifetime_s", "discovery_timeout_ms", "interface", "root_desc_url",
             "probe_interval_s", "protocols", "address", "pcp_third_party", "preference_window_ms",
             "verify_interval_s", "upnp_events"});
  c.reconciler.verify_interval = Seconds(
      GetInt(gw, "gateway", "verify_interval_s", c.reconciler.verify_interval.count(), 5, 86400));
  if (const auto* node = gw.get("protocols")) ReadProtocols(*node, c.protocols);
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
  c.reconciler.preference_window = std::chrono::milliseconds(GetInt(
      gw, "gateway", "preference_window_ms", c.reconciler.preference_window.count(), 0, 5000));
  c.reconciler.lease_lifetime = Seconds(
      GetInt(gw, "gateway", "lease_lifetime_s", c.reconciler.lease_lifetime.count(), 30, 604800));
  c.upnp.discovery_timeout = std::chrono::milliseconds(
      GetInt(gw, "gateway", "discovery_timeout_ms", c.upnp.discovery_timeout.count(), 100, 10000));
  c.pcp.probe_timeout = c.natpmp.probe_timeout = c.upnp.discovery_timeout;
  c.reconciler.probe_interval = Seconds(
      GetInt(gw, "gateway", "probe_interval_s", c.reconciler.probe_interval.count(), 10, 86400));
  Get(gw, "gateway", "interface", c.upnp.multicast_interface);
  Get(gw, "gateway", "root_desc_url", c.upnp.root_desc_url);
  Get(gw, "gateway", "upnp_events", c.upnp.events);
}

void LoadPolicy(const toml::table& root, Config& c) {
  const auto& pol = Section(root, "policy");
  CheckKeys(pol, "policy.",
            {"internal_ports", "external_ports", "max_rtp_ports", "max_sip_ports",
             "max_ports_per_device", "max_devices", "device_networks"});
  c.policy.internal_ports = Range(pol, "policy", "internal_ports", c.policy.internal_ports);
  c.policy.external_ports = Range(pol, "policy", "external_ports", c.policy.external_ports);
  c.policy.max_ports_per_device = static_cast<uint32_t>(
      GetInt(pol, "policy", "max_ports_per_device", c.policy.max_ports_per_device, 1, 131070));
  c.policy.max_devices =
      static_cast<uint32_t>(GetInt(pol, "policy", "max_devices", c.policy.max_devices, 1, 100000));
  if (const auto* node = pol.get("device_networks")) {
    ReadDeviceNetworks(*node, c.policy.device_networks);
  }
  c.policy.max_rtp_ports = static_cast<uint32_t>(
      GetInt(pol, "policy", "max_rtp_ports", c.policy.max_rtp_ports, 1, 65535));
  c.policy.max_sip_ports = static_cast<uint32_t>(
      GetInt(pol, "policy", "max_sip_ports", c.policy.max_sip_ports, 1, 65535));
}

void LoadDefaults(const toml::table& root, Config& c) {
  const auto& def = Section(root, "defaults");
  CheckKeys(def, "defaults.", {"sip", "rtp", "sip_transports"});
  c.default_plan.sip = Range(def, "defaults", "sip", c.default_plan.sip);
  c.default_plan.rtp = Range(def, "defaults", "rtp", c.default_plan.rtp);
  if (const auto* arr = def.get_as<toml::array>("sip_transports")) {
    c.default_plan.sip_udp = c.default_plan.sip_tcp = false;
    for (const auto& v : *arr) {
      const auto s = v.value<std::string>();
      if (s == "udp") {
        c.default_plan.sip_udp = true;
      } else if (s == "tcp") {
        c.default_plan.sip_tcp = true;
      } else {
        Bad("defaults.sip_transports", "allowed values are \"udp\" and \"tcp\"");
      }
    }
  }
}

void LoadEvents(const toml::table& root, Config& c) {
  const auto& ev = Section(root, "events");
  CheckKeys(ev, "events.", {"retention_count", "retention_days"});
  c.store.event_retention_count = static_cast<uint32_t>(
      GetInt(ev, "events", "retention_count", c.store.event_retention_count, 10, 10000000));
  c.store.event_retention_age =
      Seconds(86400 * GetInt(ev, "events", "retention_days",
                             c.store.event_retention_age.count() / 86400, 1, 3650));
}

void LoadRules(const toml::table& root, Config& c) {
  const auto& ru = Section(root, "rules");
  CheckKeys(ru, "rules.",
            {"folder", "wan_interface", "lan_interface", "wan_address", "hairpin", "forward_chain",
             "force_static"});
  auto& rp = c.static_rules.params;
  Get(ru, "rules", "folder", c.static_rules.folder);
  Get(ru, "rules", "wan_interface", rp.wan_interface);
  Get(ru, "rules", "lan_interface", rp.lan_interface);
  Get(ru, "rules", "wan_address", rp.wan_address);
  Get(ru, "rules", "hairpin", rp.hairpin);
  Get(ru, "rules", "forward_chain", rp.forward_chain);
  if (const auto* node = ru.get("force_static")) ReadForceStatic(*node, c.reconciler);
}

void LoadIdentity(const toml::table& root, Config& c) {
  const auto& id = Section(root, "identity");
  CheckKeys(id, "identity.", {"enabled", "check_interval_s", "absent_after_s"});
  Get(id, "identity", "enabled", c.identity.enabled);
  c.identity.check_interval = Seconds(
      GetInt(id, "identity", "check_interval_s", c.identity.check_interval.count(), 1, 86400));
  c.identity.absent_after = Seconds(
      GetInt(id, "identity", "absent_after_s", c.identity.absent_after.count(), 0, 30 * 86400));
}

void LoadWeb(const toml::table& root, Config& c) {
  const auto& web = Section(root, "web");
  CheckKeys(web, "web.", {"listen", "host_names"});
  Get(web, "web", "listen", c.web_listen);
  if (const auto* node = web.get("host_names")) ReadHostNames(*node, c.web_host_names);
  if (!c.web_listen.empty() && c.web_listen.rfind(':') == std::string::npos) {
    Bad("web.listen",
        "'" + c.web_listen + "' is not HOST:PORT, e.g. 127.0.0.1:8080; \"\" turns the page off");
  }
}

void LoadDoctor(const toml::table& root, Config& c) {
  const auto& doc = Section(root, "doctor");
  CheckKeys(doc, "doctor.", {"stun_server"});
  Get(doc, "doctor", "stun_server", c.stun_server);
  if (!c.stun_server.empty() && c.stun_server.rfind(':') == std::string::npos) {
    Bad("doctor.stun_server",
        "'" + c.stun_server + "' is not HOST:PORT, e.g. stun.example.net:3478");
  }
}

void LoadPbx(const toml::table& root, Config& c) {
  const auto* node = root.get("pbx");
  if (!node) return;
  const auto* arr = node->as_array();
  if (!arr) Bad("pbx", "must be [[pbx]] tables, one per device");
  c.pbx.clear();
  for (const auto& item : *arr) {
    const auto* t = item.as_table();
    if (!t) Bad("pbx", "must be [[pbx]] tables, one per device");
    c.pbx.push_back(ReadPbx(*t));
  }
}

void LoadLog(const toml::table& root, Config& c) {
  const auto& log = Section(root, "log");
  CheckKeys(log, "log.", {"level"});
  Get(log, "log", "level", c.log_level);
}

}  // namespace natpilot::config_internal
